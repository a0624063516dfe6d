/**
 * Command-line options described by a Zod object schema plus per-field metadata (flag, env vars,
 * description): one description drives parsing, validation, `--help` and the README table.
 * The frontend (`config.ts`) and the simulated worker (`mocker`) each build one.
 *
 * Precedence is CLI > environment > default. Everything here is pure: argv and env arrive as
 * plain data from the runtime layer.
 */
import { z } from 'zod';

/** How an option is spelled on the command line and in the environment. */
export interface OptionMeta {
  /** Long CLI flag without dashes; absent for env-only knobs. */
  flag?: string;
  /** Environment variables, canonical first; later names are accepted aliases. */
  env: readonly string[];
  /** What the help shows as the value (`<port>`); booleans have none. */
  hint?: string;
  description: string;
  group: string;
  short?: string;
  /** Accepted with this warning. */
  deprecated?: string;
  /** The flag may be given more than once; the values are joined with commas. */
  repeatable?: boolean;
}

/** An option with its key and default, as `--help` and the README show it. */
export interface OptionInfo<K extends string = string> extends OptionMeta {
  key: K;
  boolean: boolean;
  default: unknown;
}

const TRUE = new Set(['1', 'true', 'yes', 'on']);
const FALSE = new Set(['0', 'false', 'no', 'off', '']);

/** Parses a boolean from its env/CLI spelling; leaves anything else for Zod to reject. */
export function toBool(value: unknown): unknown {
  if (typeof value !== 'string') return value;
  const v = value.trim().toLowerCase();
  if (TRUE.has(v)) return true;
  if (FALSE.has(v)) return false;
  return value;
}

function toNumber(value: unknown): unknown {
  if (typeof value !== 'string') return value;
  const v = value.trim();
  return v === '' || Number.isNaN(Number(v)) ? value : Number(v);
}

/** Value schemas that accept the string spellings argv and env deliver. */
export const values = {
  bool: (fallback: boolean) =>
    z.preprocess(toBool, z.boolean({ error: 'must be true or false' })).default(fallback),
  int: (min: number, max: number) =>
    z.preprocess(
      toNumber,
      z.number({ error: 'must be a number' }).int({ error: 'must be a whole number' })
        .min(min, { error: `must be from ${min} to ${max}` })
        .max(max, { error: `must be from ${min} to ${max}` }),
    ),
  num: (min: number, max = Number.POSITIVE_INFINITY) => {
    const range = max === Number.POSITIVE_INFINITY
      ? `must be ${min} or more`
      : `must be from ${min} to ${max}`;
    return z.preprocess(
      toNumber,
      z.number({ error: 'must be a number' }).min(min, { error: range }).max(max, {
        error: range,
      }),
    );
  },
  fraction: () => values.num(0, 1),
  port: () => values.int(1, 65535),
  text: () => z.string().min(1, { error: 'must not be empty' }),
  /** Comma-separated values (blank ones dropped); `[]` when unset. */
  list: () =>
    z.preprocess(
      (value) =>
        typeof value === 'string'
          ? value.split(',').map((v) => v.trim()).filter((v) => v !== '')
          : value,
      z.array(z.string()),
    ).default([]),
  oneOf: <const T extends readonly [string, ...string[]]>(choices: T) =>
    z.enum(choices, { error: `must be one of ${choices.join(', ')}` }),
};

/** Collects metadata while a schema is written: `field: o.opt(schema, meta)`. */
export function createOptionRegistry() {
  const metas = new WeakMap<z.ZodType, OptionMeta>();
  return {
    opt<T extends z.ZodType>(schema: T, meta: OptionMeta): T {
      metas.set(schema, meta);
      return schema;
    },
    /** Every field of `schema` with its metadata and default, in schema order. */
    describe<S extends z.ZodObject>(schema: S): OptionInfo<Extract<keyof S['shape'], string>>[] {
      return Object.entries(schema.shape).map(([key, field]) => {
        const type = field as z.ZodType;
        const meta = metas.get(type);
        if (!meta) throw new Error(`option ${key} has no metadata`);
        const parsedDefault = type.safeParse(undefined);
        return {
          ...meta,
          key: key as Extract<keyof S['shape'], string>,
          boolean: type.safeParse('true').data === true && type.safeParse('false').data === false,
          default: parsedDefault.success ? parsedDefault.data : undefined,
        };
      });
    },
  };
}

/** How the option is named in messages: `--http-port (DYN_HTTP_PORT)`. */
export function optionLabel(option: OptionMeta): string {
  return option.flag ? `--${option.flag} (${option.env[0]})` : option.env[0] ?? '';
}

export interface OptionSources {
  argv: readonly string[];
  env: Readonly<Record<string, string | undefined>>;
}

export type OptionsResult<T> =
  | { ok: true; config: T; warnings: string[] }
  | { ok: false; errors: string[] };

/** Levenshtein distance, for "did you mean" suggestions. */
function distance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      cur[j] = Math.min((prev[j] ?? 0) + 1, (cur[j - 1] ?? 0) + 1, (prev[j - 1] ?? 0) + cost);
    }
    prev = cur;
  }
  return prev[b.length] ?? 0;
}

function suggest(flag: string, options: readonly OptionInfo[]): string {
  let best: string | undefined;
  let bestDistance = Number.POSITIVE_INFINITY;
  for (const o of options) {
    if (!o.flag) continue;
    for (const candidate of o.boolean ? [o.flag, `no-${o.flag}`] : [o.flag]) {
      const d = distance(flag, candidate);
      if (d < bestDistance) [best, bestDistance] = [candidate, d];
    }
  }
  return best && bestDistance <= Math.max(2, Math.floor(flag.length / 3))
    ? `; did you mean --${best}?`
    : '; see --help for the list of flags';
}

/** Reads flags into raw values (strings, or booleans for `--x` / `--no-x`). */
function parseArgv(argv: readonly string[], options: readonly OptionInfo[]) {
  const byFlag = new Map<string, OptionInfo>();
  for (const o of options) {
    if (o.flag) byFlag.set(o.flag, o);
    if (o.short) byFlag.set(o.short, o);
  }
  const found = new Map<string, unknown>();
  const errors: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const token = argv[i] ?? '';
    const long = /^--([^=]+)(?:=([\s\S]*))?$/.exec(token);
    const short = /^-([a-zA-Z])$/.exec(token);
    if (!long && !short) {
      errors.push(`Unexpected argument "${token}"; options are written as --flag value`);
      continue;
    }
    const name = long ? long[1] ?? '' : short?.[1] ?? '';
    const inline = long?.[2];
    let option = byFlag.get(name);
    let negated = false;
    if (!option && name.startsWith('no-')) {
      const positive = byFlag.get(name.slice(3));
      if (positive?.boolean) [option, negated] = [positive, true];
    }
    if (!option) {
      errors.push(`Unknown flag "${token.split('=')[0]}"${suggest(name, options)}`);
      // Its value, if any, would otherwise be reported as a second, confusing error.
      if (inline === undefined && argv[i + 1] !== undefined && !argv[i + 1]?.startsWith('-')) i++;
      continue;
    }
    if (option.boolean) {
      if (negated && inline !== undefined) {
        errors.push(`${optionLabel(option)}: --no-${option.flag} takes no value`);
      }
      found.set(option.key, negated ? false : inline ?? true);
      continue;
    }
    const value = inline ?? argv[i + 1];
    if (value === undefined || (inline === undefined && value.startsWith('--'))) {
      errors.push(`${optionLabel(option)}: needs a value`);
      continue;
    }
    if (inline === undefined) i++;
    const before = found.get(option.key);
    found.set(option.key, option.repeatable && before !== undefined ? `${before},${value}` : value);
  }
  return { found, errors };
}

export interface ResolveOptions<S extends z.ZodObject> {
  schema: S;
  options: readonly OptionInfo[];
  sources: OptionSources;
  /**
   * Cross-field rules over the raw (unparsed) values, so one run reports every problem; `label`
   * names an option the way messages do.
   */
  check?: (raw: Record<string, unknown>, label: (key: string) => string) => string[];
}

/**
 * Resolves options from argv and env (CLI > env > default) and validates them, collecting every
 * problem rather than stopping at the first.
 */
export function resolveOptions<S extends z.ZodObject>(
  request: ResolveOptions<S>,
): OptionsResult<z.output<S>> {
  const { schema, options, sources } = request;
  const { found: cli, errors } = parseArgv(sources.argv, options);
  const raw: Record<string, unknown> = {};
  const from = new Map<string, string>();
  for (const o of options) {
    if (cli.has(o.key)) {
      raw[o.key] = cli.get(o.key);
      from.set(o.key, `--${o.flag}`);
      continue;
    }
    for (const name of o.env) {
      const value = sources.env[name];
      // An empty variable counts as unset.
      if (value !== undefined && value !== '') {
        raw[o.key] = value;
        from.set(o.key, name);
        break;
      }
    }
  }
  const parsed = schema.safeParse(raw);
  const byKey = new Map(options.map((o) => [o.key, o]));
  const label = (key: string) => {
    const option = byKey.get(key);
    return option ? optionLabel(option) : key;
  };
  if (!parsed.success) {
    for (const issue of parsed.error.issues) {
      const key = String(issue.path[0]);
      const given = raw[key];
      const shown = typeof given === 'string' ? ` (got "${given}" from ${from.get(key)})` : '';
      errors.push(`${label(key)}: ${issue.message}${shown}`);
    }
  }
  errors.push(...(request.check?.(raw, label) ?? []));
  if (errors.length > 0 || !parsed.success) return { ok: false, errors };
  const warnings = options.filter((o) => o.deprecated && from.has(o.key)).map((o) =>
    o.deprecated as string
  );
  return { ok: true, config: parsed.data, warnings };
}
