/** Structured logging: one JSON object per line, written through a sink the runtime provides. */

export type LogLevel = 'debug' | 'info' | 'warn' | 'error';
export type LogFields = Readonly<Record<string, unknown>>;

export interface Logger {
  debug(msg: string, fields?: LogFields): void;
  info(msg: string, fields?: LogFields): void;
  warn(msg: string, fields?: LogFields): void;
  error(msg: string, fields?: LogFields): void;
}

const ORDER: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40 };

export interface JsonLoggerOptions {
  /** Receives each finished line, newline included. */
  write: (line: string) => void;
  /** @default () => Date.now() */
  now?: () => number;
  /** @default 'info' */
  level?: LogLevel;
}

/** Errors do not serialise with JSON.stringify; log their name and message (and cause chain). */
function plain(value: unknown, depth = 0): unknown {
  if (!(value instanceof Error)) return value;
  const out: Record<string, unknown> = { name: value.name, message: value.message };
  if (value.cause !== undefined && depth < 3) out.cause = plain(value.cause, depth + 1);
  return out;
}

export function createJsonLogger(options: JsonLoggerOptions): Logger {
  const now = options.now ?? (() => Date.now());
  const min = ORDER[options.level ?? 'info'];
  const log = (level: LogLevel) => (msg: string, fields: LogFields = {}) => {
    if (ORDER[level] < min) return;
    const record: Record<string, unknown> = { ts: new Date(now()).toISOString(), level, msg };
    for (const [k, v] of Object.entries(fields)) record[k] = plain(v);
    options.write(`${JSON.stringify(record)}\n`);
  };
  return { debug: log('debug'), info: log('info'), warn: log('warn'), error: log('error') };
}

/** A logger that drops everything, for tests that do not look at logs. */
export const silentLogger: Logger = {
  debug() {},
  info() {},
  warn() {},
  error() {},
};
