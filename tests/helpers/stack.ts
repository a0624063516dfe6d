/**
 * An in-process Switchboard stack for e2e tests: the frontend and simulated workers in this
 * process, sharing one in-process discovery bus, talking over a real request plane (tcp, http or
 * nats) and real sockets. Configurations go through the real flag resolvers.
 */
import { resolveConfig } from '../../src/core/config.ts';
import { createJsonLogger, type Logger } from '../../src/core/logger.ts';
import { resolveMockerConfig } from '../../src/mocker/config.ts';
import type { MockWorker, RunningMocker } from '../../src/mocker/worker.ts';
import { type RunningFrontend, startFrontend } from '../../src/commands/frontend.ts';
import { createLocalBus, type LocalBus } from '../../src/runtime/infra.ts';
import { startMockerProcess } from '../../src/commands/mocker.ts';
import { waitFor } from './wait.ts';

export type Plane = 'tcp' | 'http' | 'nats';

export const MODEL_PATH = 'tests/fixtures/model';
/** The served name of the bundled model (its config has no name; the mocker defaults to this). */
export const MODEL = 'Qwen/Qwen3-0.6B';

export interface StackOptions {
  /** @default 'tcp' */
  plane?: Plane;
  /** Extra frontend flags. @default [] */
  frontendArgs?: readonly string[];
  /** Frontend environment (`DYN_*`). @default {} */
  env?: Record<string, string>;
  /** Worker groups to start, each one `startMockerProcess`. @default one worker of `MODEL` */
  mockers?: readonly MockerSpec[];
}

export interface MockerSpec {
  /** @default MODEL */
  name?: string;
  /** @default 1 */
  workers?: number;
  /** @default 100 */
  speedup?: number;
  /** Extra mocker flags. @default [] */
  args?: readonly string[];
}

/** Log lines kept for assertions, and a silent logger that records them. */
export function collectingLogger(): { logger: Logger; lines: Record<string, unknown>[] } {
  const lines: Record<string, unknown>[] = [];
  const logger = createJsonLogger({
    write: (line) => lines.push(JSON.parse(line) as Record<string, unknown>),
    level: 'debug',
  });
  return { logger, lines };
}

export interface Stack {
  url: string;
  frontend: RunningFrontend;
  bus: LocalBus;
  /** Every mocker group, in the order of `options.mockers`. */
  mockers: RunningMocker[];
  /** Every simulated worker, over all groups. */
  workers: MockWorker[];
  logs: Record<string, unknown>[];
  logger: Logger;
  /** Starts another group of workers on the same bus and plane. */
  addMocker(spec: MockerSpec): Promise<RunningMocker>;
  /** POST JSON (or a raw string) to `path`. */
  post(path: string, body: unknown, headers?: Record<string, string>): Promise<Response>;
  metrics(): Promise<string>;
  close(): Promise<void>;
}

export async function startStack(options: StackOptions = {}): Promise<Stack> {
  const plane = options.plane ?? 'tcp';
  const env = options.env ?? {};
  const { logger, lines } = collectingLogger();
  const resolved = resolveConfig({
    argv: [
      '--http-host',
      '127.0.0.1',
      '--discovery-backend',
      'mem',
      '--request-plane',
      plane,
      ...(options.frontendArgs ?? []),
    ],
    env,
  });
  if (!resolved.ok) throw new Error(resolved.errors.join('\n'));
  const bus = createLocalBus();
  // Port 0: the runtime picks a free port and `server.port` says which.
  const frontend = await startFrontend({ ...resolved.config, httpPort: 0 }, {
    env,
    logger,
    local: bus,
  });
  const url = `http://127.0.0.1:${frontend.server.port}`;
  const mockers: RunningMocker[] = [];
  const workers: MockWorker[] = [];

  const addMocker = async (spec: MockerSpec) => {
    // One model per endpoint: a second model gets a component named after it.
    const name = spec.name ?? MODEL;
    const own = name === MODEL || spec.args?.includes('--endpoint')
      ? []
      : ['--endpoint', `dyn://dynamo.${name.toLowerCase().replace(/[^a-z0-9_-]/g, '-')}.generate`];
    const config = resolveMockerConfig({
      argv: [
        '--model-path',
        MODEL_PATH,
        '--model-name',
        name,
        '--num-workers',
        String(spec.workers ?? 1),
        '--speedup-ratio',
        String(spec.speedup ?? 100),
        '--discovery-backend',
        'mem',
        '--request-plane',
        plane,
        ...own,
        ...(spec.args ?? []),
      ],
      env: {},
    });
    if (!config.ok) throw new Error(config.errors.join('\n'));
    const running = await startMockerProcess(config.config, { env: {}, logger, local: bus });
    mockers.push(running);
    workers.push(...running.workers);
    const count = running.workers.length;
    const prefill = config.config.disaggregationMode === 'prefill' || config.config.isPrefillWorker;
    const listed = () =>
      prefill
        ? frontend.core.models.prefillInstances(running.modelName)
        : frontend.core.models.instances(running.modelName);
    // Ready once the frontend's registry sees every worker of the group.
    await waitFor(
      () => listed().length >= count,
      { timeoutMs: 10_000, what: `${count} worker(s) of "${running.modelName}" in discovery` },
    );
    return running;
  };

  const close = async () => {
    await Promise.allSettled(mockers.map((m) => m.close()));
    await frontend.shutdown('test over');
  };

  try {
    await waitFor(() => frontend.core.lifecycle.phase === 'ready', {
      timeoutMs: 10_000,
      what: 'frontend ready',
    });
    for (const spec of options.mockers ?? [{}]) await addMocker(spec);
  } catch (error) {
    await close();
    throw error;
  }

  return {
    url,
    frontend,
    bus,
    mockers,
    workers,
    logs: lines,
    logger,
    addMocker,
    post: (path, body, headers = {}) =>
      fetch(`${url}${path}`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...headers },
        body: typeof body === 'string' ? body : JSON.stringify(body),
      }),
    metrics: async () => await (await fetch(`${url}/metrics`)).text(),
    close,
  };
}

// ------------------------------------------------------------------------------------------
// Reading answers
// ------------------------------------------------------------------------------------------

/** The `data:` payloads of an SSE body, in order (`[DONE]` included as a string). */
export function sseData(text: string): string[] {
  return text.split('\n').filter((l) => l.startsWith('data:')).map((l) => l.slice(5).trim());
}

/** Reads an SSE response to its end: the JSON chunks, and whether it ended with `[DONE]`. */
export async function readSse<T = Record<string, unknown>>(
  res: Response,
): Promise<{ chunks: T[]; done: boolean; raw: string[] }> {
  const raw = sseData(await res.text());
  const done = raw[raw.length - 1] === '[DONE]';
  const chunks = raw.filter((d) => d !== '[DONE]').map((d) => JSON.parse(d) as T);
  return { chunks, done, raw };
}

/** Counts of a Prometheus sample whose name and labels (a subset) match; summed. */
export function metricValue(
  text: string,
  name: string,
  labels: Record<string, string> = {},
): number {
  let sum = 0;
  let found = false;
  for (const line of text.split('\n')) {
    if (line.startsWith('#') || !line.startsWith(name)) continue;
    const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (\S+)$/.exec(line);
    if (!match || match[1] !== name) continue;
    const have: Record<string, string> = {};
    for (const m of (match[3] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)) {
      have[m[1] as string] = m[2] as string;
    }
    if (Object.entries(labels).every(([k, v]) => have[k] === v)) {
      found = true;
      sum += Number(match[4]);
    }
  }
  return found ? sum : Number.NaN;
}

/** The OpenAI error envelope, checked: every field present, no stack trace. */
export interface OpenAIErrorBody {
  error: { message: string; type: string; param: string | null; code: string | null };
}

export async function errorBody(res: Response): Promise<OpenAIErrorBody> {
  const text = await res.text();
  const body = JSON.parse(text) as OpenAIErrorBody;
  const e = body.error;
  if (!e || typeof e.message !== 'string' || typeof e.type !== 'string') {
    throw new Error(`not an OpenAI error body: ${text.slice(0, 500)}`);
  }
  if (!('param' in e) || !('code' in e)) {
    throw new Error(`error body lacks param or code: ${text.slice(0, 500)}`);
  }
  if (/\bat .+:\d+:\d+/.test(text)) throw new Error(`stack trace in error body: ${text}`);
  return body;
}
