/**
 * The frontend's configuration: one Zod schema holding every CLI flag and `DYN_*` environment
 * variable of the Dynamo frontend interface, with its default and a one-line description.
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
}

const registry = new Map<string, OptionMeta>();

function opt<T extends z.ZodType>(key: string, schema: T, meta: OptionMeta): T {
  registry.set(key, meta);
  return schema;
}

const TRUE = new Set(['1', 'true', 'yes', 'on']);
const FALSE = new Set(['0', 'false', 'no', 'off', '']);

/** Parses a boolean from its env/CLI spelling; leaves anything else for Zod to reject. */
function toBool(value: unknown): unknown {
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

const bool = (fallback: boolean) =>
  z.preprocess(toBool, z.boolean({ error: 'must be true or false' })).default(fallback);

const int = (min: number, max: number) =>
  z.preprocess(
    toNumber,
    z.number({ error: 'must be a number' }).int({ error: 'must be a whole number' })
      .min(min, { error: `must be from ${min} to ${max}` })
      .max(max, { error: `must be from ${min} to ${max}` }),
  );

const num = (min: number, max = Number.POSITIVE_INFINITY) => {
  const range = max === Number.POSITIVE_INFINITY
    ? `must be ${min} or more`
    : `must be from ${min} to ${max}`;
  return z.preprocess(
    toNumber,
    z.number({ error: 'must be a number' }).min(min, { error: range }).max(max, { error: range }),
  );
};

const fraction = () => num(0, 1);
const port = () => int(1, 65535);
const text = () => z.string().min(1, { error: 'must not be empty' });
const oneOf = <const T extends readonly [string, ...string[]]>(values: T) =>
  z.enum(values, { error: `must be one of ${values.join(', ')}` });

const U32_MAX = 4294967295;

export const ROUTER_MODES = ['round-robin', 'random', 'kv', 'direct'] as const;
export const DISCOVERY_BACKENDS = ['kubernetes', 'etcd', 'file', 'mem'] as const;
export const REQUEST_PLANES = ['tcp', 'nats', 'http'] as const;
export const EVENT_PLANES = ['nats', 'zmq'] as const;
export const CHAT_PROCESSORS = ['dynamo', 'vllm'] as const;

const G_HTTP = 'HTTP & Networking';
const G_ROUTER = 'Router';
const G_FAULT = 'Fault Tolerance';
const G_DISCOVERY = 'Model Discovery';
const G_INFRA = 'Infrastructure';
const G_KSERVE = 'KServe gRPC';
const G_MONITOR = 'Monitoring';
const G_EXP = 'Experimental';
const G_PATHS = 'Endpoint paths';
const G_DEPRECATED = 'Deprecated';

/** Endpoint paths that `DYN_HTTP_SVC_*_PATH` variables may move. */
export const PATH_OVERRIDES = {
  chat: ['CHAT', '/v1/chat/completions'],
  completions: ['CMP', '/v1/completions'],
  embeddings: ['EMB', '/v1/embeddings'],
  responses: ['RESPONSES', '/v1/responses'],
  models: ['MODELS', '/v1/models'],
  anthropic: ['ANTHROPIC', '/v1/messages'],
  health: ['HEALTH', '/health'],
  live: ['LIVE', '/live'],
  metrics: ['METRICS', '/metrics'],
} as const;

export type PathKey = keyof typeof PATH_OVERRIDES;

const pathSchema = z.string().regex(/^\/[^\s?#]*$/, {
  error: 'must be an absolute URL path such as /v1/models',
});

function pathOption(key: PathKey) {
  const [name, fallback] = PATH_OVERRIDES[key];
  // The docs table says `DYN_HTTP_SVC_<X>_PATH_ENV`; Dynamo's code reads `DYN_HTTP_SVC_<X>_PATH`.
  // Both are accepted, the code's name first. `/live` was spelled `LIVE_PATH_PATH_ENV` in the docs.
  const env = [`DYN_HTTP_SVC_${name}_PATH`, `DYN_HTTP_SVC_${name}_PATH_ENV`];
  if (key === 'live') env.push('DYN_HTTP_SVC_LIVE_PATH_PATH_ENV');
  return opt(`${key}Path`, pathSchema.default(fallback), {
    env,
    hint: 'path',
    description: `URL path of the ${fallback} endpoint`,
    group: G_PATHS,
  });
}

export const configSchema = z.object({
  // HTTP & Networking
  httpHost: opt('httpHost', text().default('0.0.0.0'), {
    flag: 'http-host',
    env: ['DYN_HTTP_HOST'],
    hint: 'host',
    description: 'HTTP listen address',
    group: G_HTTP,
  }),
  httpPort: opt('httpPort', port().default(8000), {
    flag: 'http-port',
    env: ['DYN_HTTP_PORT'],
    hint: 'port',
    description: 'HTTP listen port',
    group: G_HTTP,
  }),
  tlsCertPath: opt('tlsCertPath', text().optional(), {
    flag: 'tls-cert-path',
    env: ['DYN_TLS_CERT_PATH'],
    hint: 'file',
    description: 'TLS certificate path (PEM); needs --tls-key-path',
    group: G_HTTP,
  }),
  tlsKeyPath: opt('tlsKeyPath', text().optional(), {
    flag: 'tls-key-path',
    env: ['DYN_TLS_KEY_PATH'],
    hint: 'file',
    description: 'TLS private key path (PEM); needs --tls-cert-path',
    group: G_HTTP,
  }),
  httpBodyLimitMb: opt('httpBodyLimitMb', num(0.000001).default(192), {
    env: ['DYN_HTTP_BODY_LIMIT_MB'],
    hint: 'MB',
    description: 'Maximum request body size in MB (larger bodies get 413)',
    group: G_HTTP,
  }),
  httpGracefulShutdownTimeoutSecs: opt(
    'httpGracefulShutdownTimeoutSecs',
    num(0).default(5),
    {
      env: ['DYN_HTTP_GRACEFUL_SHUTDOWN_TIMEOUT_SECS'],
      hint: 'seconds',
      description: 'How long in-flight requests may run after SIGTERM/SIGINT',
      group: G_HTTP,
    },
  ),
  httpOverloadStatusCode: opt('httpOverloadStatusCode', int(200, 999).default(503), {
    env: ['DYN_HTTP_OVERLOAD_STATUS_CODE'],
    hint: 'status',
    description: 'HTTP status of load-shed rejections (Dynamo uses 529)',
    group: G_HTTP,
  }),
  disableFrontendAdminApi: opt('disableFrontendAdminApi', bool(false), {
    env: ['DYN_DISABLE_FRONTEND_ADMIN_API'],
    description: 'Do not serve /busy_threshold',
    group: G_HTTP,
  }),

  // Router
  routerMode: opt('routerMode', oneOf(ROUTER_MODES).default('round-robin'), {
    flag: 'router-mode',
    env: ['DYN_ROUTER_MODE'],
    hint: ROUTER_MODES.join('|'),
    description: 'Routing strategy',
    group: G_ROUTER,
  }),
  routerKvOverlapScoreWeight: opt('routerKvOverlapScoreWeight', num(0).default(1), {
    flag: 'router-kv-overlap-score-weight',
    env: ['DYN_ROUTER_KV_OVERLAP_SCORE_WEIGHT'],
    hint: 'weight',
    description: 'Weight of KV cache overlap in worker scoring; higher prefers cache reuse',
    group: G_ROUTER,
  }),
  routerTemperature: opt('routerTemperature', num(0).default(0), {
    flag: 'router-temperature',
    env: ['DYN_ROUTER_TEMPERATURE'],
    hint: 'temp',
    description: 'Softmax temperature for worker sampling; 0 is deterministic',
    group: G_ROUTER,
  }),
  routerKvEvents: opt('routerKvEvents', bool(true), {
    flag: 'router-kv-events',
    env: ['DYN_ROUTER_USE_KV_EVENTS'],
    description: 'Use KV cache events from workers; off means prediction-based routing',
    group: G_ROUTER,
  }),
  routerTtlSecs: opt('routerTtlSecs', num(0).default(120), {
    flag: 'router-ttl-secs',
    env: ['DYN_ROUTER_TTL_SECS'],
    hint: 'seconds',
    description: 'Block TTL when KV events are off',
    group: G_ROUTER,
  }),
  routerMaxTreeSize: opt('routerMaxTreeSize', int(1, Number.MAX_SAFE_INTEGER).default(1048576), {
    flag: 'router-max-tree-size',
    env: ['DYN_ROUTER_MAX_TREE_SIZE'],
    hint: 'blocks',
    description: 'Radix tree size that triggers pruning (KV events off)',
    group: G_ROUTER,
  }),
  routerPruneTargetRatio: opt('routerPruneTargetRatio', fraction().default(0.8), {
    flag: 'router-prune-target-ratio',
    env: ['DYN_ROUTER_PRUNE_TARGET_RATIO'],
    hint: 'ratio',
    description: 'Tree size after pruning, as a fraction of the maximum (KV events off)',
    group: G_ROUTER,
  }),
  routerReplicaSync: opt('routerReplicaSync', bool(false), {
    flag: 'router-replica-sync',
    env: ['DYN_ROUTER_REPLICA_SYNC'],
    description: 'Sync router state across router replicas',
    group: G_ROUTER,
  }),
  routerSnapshotThreshold: opt(
    'routerSnapshotThreshold',
    int(1, Number.MAX_SAFE_INTEGER).default(1000000),
    {
      flag: 'router-snapshot-threshold',
      env: ['DYN_ROUTER_SNAPSHOT_THRESHOLD'],
      hint: 'messages',
      description: 'Messages between router state snapshots',
      group: G_ROUTER,
    },
  ),
  routerResetStates: opt('routerResetStates', bool(false), {
    flag: 'router-reset-states',
    env: ['DYN_ROUTER_RESET_STATES'],
    description: 'Reset router state on startup (affects existing replicas)',
    group: G_ROUTER,
  }),
  routerTrackActiveBlocks: opt('routerTrackActiveBlocks', bool(true), {
    flag: 'router-track-active-blocks',
    env: ['DYN_ROUTER_TRACK_ACTIVE_BLOCKS'],
    description: 'Track blocks of in-progress requests for load balancing',
    group: G_ROUTER,
  }),
  routerAssumeKvReuse: opt('routerAssumeKvReuse', bool(true), {
    flag: 'router-assume-kv-reuse',
    env: ['DYN_ROUTER_ASSUME_KV_REUSE'],
    description: 'Assume KV cache reuse when tracking active blocks',
    group: G_ROUTER,
  }),
  routerTrackOutputBlocks: opt('routerTrackOutputBlocks', bool(false), {
    flag: 'router-track-output-blocks',
    env: ['DYN_ROUTER_TRACK_OUTPUT_BLOCKS'],
    description: 'Track output blocks with fractional decay during generation',
    group: G_ROUTER,
  }),
  routerEventThreads: opt('routerEventThreads', int(1, 256).default(1), {
    flag: 'router-event-threads',
    env: ['DYN_ROUTER_EVENT_THREADS'],
    hint: 'n',
    description: 'KV event processing threads; more than 1 applies events off the main thread',
    group: G_ROUTER,
  }),
  routerQueueThreshold: opt('routerQueueThreshold', num(0).optional(), {
    flag: 'router-queue-threshold',
    env: ['DYN_ROUTER_QUEUE_THRESHOLD'],
    hint: 'fraction',
    description: 'Queue threshold as a fraction of prefill capacity; enables priority scheduling',
    group: G_ROUTER,
  }),
  enableCacheControl: opt('enableCacheControl', bool(false), {
    flag: 'enable-cache-control',
    env: ['DYN_ENABLE_CACHE_CONTROL'],
    description: 'TTL-based cache pinning (needs --router-mode kv)',
    group: G_ROUTER,
  }),
  decodeFallback: opt('decodeFallback', bool(false), {
    flag: 'decode-fallback',
    env: ['DYN_DECODE_FALLBACK'],
    description: 'Fall back to aggregated serving when no prefill worker is available',
    group: G_ROUTER,
  }),

  // Fault tolerance
  migrationLimit: opt('migrationLimit', int(0, U32_MAX).default(0), {
    flag: 'migration-limit',
    env: ['DYN_MIGRATION_LIMIT'],
    hint: 'n',
    description: 'Max migrations of a request when its worker is lost; 0 disables',
    group: G_FAULT,
  }),
  activeDecodeBlocksThreshold: opt('activeDecodeBlocksThreshold', fraction().optional(), {
    flag: 'active-decode-blocks-threshold',
    env: ['DYN_ACTIVE_DECODE_BLOCKS_THRESHOLD'],
    hint: 'fraction',
    description: 'KV cache utilization (0-1) above which a worker is busy',
    group: G_FAULT,
  }),
  activePrefillTokensThreshold: opt(
    'activePrefillTokensThreshold',
    int(0, Number.MAX_SAFE_INTEGER).optional(),
    {
      flag: 'active-prefill-tokens-threshold',
      env: ['DYN_ACTIVE_PREFILL_TOKENS_THRESHOLD'],
      hint: 'tokens',
      description: 'Active prefill tokens above which a worker is busy',
      group: G_FAULT,
    },
  ),
  activePrefillTokensThresholdFrac: opt('activePrefillTokensThresholdFrac', fraction().optional(), {
    flag: 'active-prefill-tokens-threshold-frac',
    env: ['DYN_ACTIVE_PREFILL_TOKENS_THRESHOLD_FRAC'],
    hint: 'fraction',
    description: 'Busy above this fraction of max_num_batched_tokens (OR with the absolute one)',
    group: G_FAULT,
  }),

  // Model discovery
  namespace: opt('namespace', text().optional(), {
    flag: 'namespace',
    env: ['DYN_NAMESPACE'],
    hint: 'ns',
    description: 'Exact namespace for model discovery',
    group: G_DISCOVERY,
  }),
  namespacePrefix: opt('namespacePrefix', text().optional(), {
    flag: 'namespace-prefix',
    env: ['DYN_NAMESPACE_PREFIX'],
    hint: 'prefix',
    description: 'Namespace prefix for discovery; wins over --namespace',
    group: G_DISCOVERY,
  }),
  modelName: opt('modelName', text().optional(), {
    flag: 'model-name',
    env: ['DYN_MODEL_NAME'],
    hint: 'name',
    description: 'Override the served model name',
    group: G_DISCOVERY,
  }),
  modelPath: opt('modelPath', text().optional(), {
    flag: 'model-path',
    env: ['DYN_MODEL_PATH'],
    hint: 'dir',
    description: 'Local model directory whose tokenizer overrides the model card',
    group: G_DISCOVERY,
  }),
  kvCacheBlockSize: opt('kvCacheBlockSize', int(1, 1 << 20).optional(), {
    flag: 'kv-cache-block-size',
    env: ['DYN_KV_CACHE_BLOCK_SIZE'],
    hint: 'tokens',
    description: 'KV cache block size override',
    group: G_DISCOVERY,
  }),

  // Infrastructure
  discoveryBackend: opt('discoveryBackend', oneOf(DISCOVERY_BACKENDS).default('etcd'), {
    flag: 'discovery-backend',
    env: ['DYN_DISCOVERY_BACKEND'],
    hint: DISCOVERY_BACKENDS.join('|'),
    description: 'Service discovery backend',
    group: G_INFRA,
  }),
  requestPlane: opt('requestPlane', oneOf(REQUEST_PLANES).default('tcp'), {
    flag: 'request-plane',
    env: ['DYN_REQUEST_PLANE'],
    hint: REQUEST_PLANES.join('|'),
    description: 'Transport from frontend to workers',
    group: G_INFRA,
  }),
  eventPlane: opt('eventPlane', oneOf(EVENT_PLANES).default('nats'), {
    flag: 'event-plane',
    env: ['DYN_EVENT_PLANE'],
    hint: EVENT_PLANES.join('|'),
    description: 'Transport of KV events and load metrics',
    group: G_INFRA,
  }),

  // KServe gRPC
  kserveGrpcServer: opt('kserveGrpcServer', bool(false), {
    flag: 'kserve-grpc-server',
    env: ['DYN_KSERVE_GRPC_SERVER'],
    description: 'Start the KServe gRPC v2 server',
    group: G_KSERVE,
  }),
  grpcMetricsPort: opt('grpcMetricsPort', port().default(8788), {
    flag: 'grpc-metrics-port',
    env: ['DYN_GRPC_METRICS_PORT'],
    hint: 'port',
    description: 'HTTP metrics port of the gRPC service',
    group: G_KSERVE,
  }),

  // Monitoring
  metricsPrefix: opt('metricsPrefix', text().default('dynamo_frontend'), {
    flag: 'metrics-prefix',
    env: ['DYN_METRICS_PREFIX'],
    hint: 'prefix',
    description: 'Prefix of the frontend Prometheus metrics',
    group: G_MONITOR,
  }),
  dumpConfigTo: opt('dumpConfigTo', text().optional(), {
    flag: 'dump-config-to',
    env: ['DYN_DUMP_CONFIG_TO'],
    hint: 'file',
    description: 'Write the resolved configuration as JSON to this file, then keep running',
    group: G_MONITOR,
  }),

  // Experimental
  enableAnthropicApi: opt('enableAnthropicApi', bool(false), {
    flag: 'enable-anthropic-api',
    env: ['DYN_ENABLE_ANTHROPIC_API'],
    description: 'Serve /v1/messages (Anthropic Messages API)',
    group: G_EXP,
  }),
  dynChatProcessor: opt('dynChatProcessor', oneOf(CHAT_PROCESSORS).default('dynamo'), {
    flag: 'dyn-chat-processor',
    env: ['DYN_CHAT_PROCESSOR'],
    hint: CHAT_PROCESSORS.join('|'),
    description: 'Chat processor',
    group: G_EXP,
  }),
  dynDebugPerf: opt('dynDebugPerf', bool(false), {
    flag: 'dyn-debug-perf',
    env: ['DYN_DEBUG_PERF'],
    description: 'Log per-function preprocessing timings',
    group: G_EXP,
  }),
  dynPreprocessWorkers: opt('dynPreprocessWorkers', int(0, 1024).default(0), {
    flag: 'dyn-preprocess-workers',
    env: ['DYN_PREPROCESS_WORKERS'],
    hint: 'n',
    description: 'Worker threads for templating and tokenization; 0 runs them inline',
    group: G_EXP,
  }),
  interactive: opt('interactive', bool(false), {
    flag: 'interactive',
    short: 'i',
    env: ['DYN_INTERACTIVE'],
    description: 'Interactive text chat in the terminal instead of the HTTP server',
    group: G_EXP,
  }),

  // Endpoint paths (env only)
  chatPath: pathOption('chat'),
  completionsPath: pathOption('completions'),
  embeddingsPath: pathOption('embeddings'),
  responsesPath: pathOption('responses'),
  modelsPath: pathOption('models'),
  anthropicPath: pathOption('anthropic'),
  healthPath: pathOption('health'),
  livePath: pathOption('live'),
  metricsPath: pathOption('metrics'),

  // Deprecated
  routerDurableKvEvents: opt('routerDurableKvEvents', bool(false), {
    flag: 'router-durable-kv-events',
    env: ['DYN_ROUTER_DURABLE_KV_EVENTS'],
    description: 'Deprecated: use the event-plane local indexer instead',
    group: G_DEPRECATED,
    deprecated:
      '--router-durable-kv-events is deprecated and ignored; the event-plane local indexer is used instead',
  }),
});

export type Config = z.output<typeof configSchema>;
export type ConfigKey = keyof Config;

/** Every option with its key, spelling and default, in schema order. */
export interface OptionInfo extends OptionMeta {
  key: ConfigKey;
  boolean: boolean;
  default: unknown;
}

export const OPTIONS: readonly OptionInfo[] = (Object.keys(configSchema.shape) as ConfigKey[]).map(
  (key) => {
    const meta = registry.get(key);
    if (!meta) throw new Error(`config option ${key} has no metadata`);
    const field = configSchema.shape[key];
    const parsedDefault = field.safeParse(undefined);
    return {
      ...meta,
      key,
      boolean: field.safeParse('true').data === true && field.safeParse('false').data === false,
      default: parsedDefault.success ? parsedDefault.data : undefined,
    };
  },
);

/** How the option is named in messages: `--http-port (DYN_HTTP_PORT)`. */
export function optionLabel(option: OptionMeta): string {
  return option.flag ? `--${option.flag} (${option.env[0]})` : option.env[0] ?? '';
}

export interface ConfigSources {
  argv: readonly string[];
  env: Readonly<Record<string, string | undefined>>;
}

export type ConfigResult =
  | { ok: true; config: Config; warnings: string[] }
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

function suggest(flag: string): string {
  let best: string | undefined;
  let bestDistance = Number.POSITIVE_INFINITY;
  for (const o of OPTIONS) {
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
function parseArgv(argv: readonly string[]): { values: Map<ConfigKey, unknown>; errors: string[] } {
  const byFlag = new Map<string, OptionInfo>();
  for (const o of OPTIONS) {
    if (o.flag) byFlag.set(o.flag, o);
    if (o.short) byFlag.set(o.short, o);
  }
  const values = new Map<ConfigKey, unknown>();
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
      errors.push(`Unknown flag "${token.split('=')[0]}"${suggest(name)}`);
      // Its value, if any, would otherwise be reported as a second, confusing error.
      if (inline === undefined && argv[i + 1] !== undefined && !argv[i + 1]?.startsWith('-')) i++;
      continue;
    }
    if (option.boolean) {
      if (negated && inline !== undefined) {
        errors.push(`${optionLabel(option)}: --no-${option.flag} takes no value`);
      }
      values.set(option.key, negated ? false : inline ?? true);
      continue;
    }
    const value = inline ?? argv[i + 1];
    if (value === undefined || (inline === undefined && value.startsWith('--'))) {
      errors.push(`${optionLabel(option)}: needs a value`);
      continue;
    }
    if (inline === undefined) i++;
    values.set(option.key, value);
  }
  return { values, errors };
}

/**
 * Resolves the configuration from argv and env (CLI > env > default) and validates it,
 * collecting every problem rather than stopping at the first.
 */
export function resolveConfig(sources: ConfigSources): ConfigResult {
  const { values: cli, errors } = parseArgv(sources.argv);
  const raw: Record<string, unknown> = {};
  const from = new Map<ConfigKey, string>();
  for (const o of OPTIONS) {
    if (cli.has(o.key)) {
      raw[o.key] = cli.get(o.key);
      from.set(o.key, `--${o.flag}`);
      continue;
    }
    for (const name of o.env) {
      const value = sources.env[name];
      if (value !== undefined && value !== '') {
        raw[o.key] = value;
        from.set(o.key, name);
        break;
      }
    }
  }
  const parsed = configSchema.safeParse(raw);
  if (!parsed.success) {
    for (const issue of parsed.error.issues) {
      const key = issue.path[0] as ConfigKey;
      const option = OPTIONS.find((o) => o.key === key);
      const given = raw[key];
      const shown = typeof given === 'string' ? ` (got "${given}" from ${from.get(key)})` : '';
      errors.push(`${option ? optionLabel(option) : key}: ${issue.message}${shown}`);
    }
  }
  const label = (key: ConfigKey) => optionLabel(OPTIONS.find((o) => o.key === key) as OptionInfo);
  // Cross-field rules run on the raw values too, so one run reports every problem.
  const hasCert = raw.tlsCertPath !== undefined;
  if (hasCert !== (raw.tlsKeyPath !== undefined)) {
    const [given, missing] = hasCert
      ? ['tlsCertPath', 'tlsKeyPath'] as const
      : ['tlsKeyPath', 'tlsCertPath'] as const;
    errors.push(`${label(missing)}: required when ${label(given)} is set (HTTPS needs both)`);
  }
  const routerMode = raw.routerMode ?? 'round-robin';
  if (toBool(raw.enableCacheControl) === true && routerMode !== 'kv') {
    errors.push(`${label('enableCacheControl')}: requires --router-mode kv (got "${routerMode}")`);
  }
  if (errors.length > 0 || !parsed.success) return { ok: false, errors };
  const config = parsed.data;
  const warnings = OPTIONS.filter((o) => o.deprecated && from.has(o.key)).map((o) =>
    o.deprecated as string
  );
  return { ok: true, config, warnings };
}

/** Sanitises a metrics prefix the way Dynamo does: anything outside `[a-zA-Z0-9_:]` becomes `_`. */
export function sanitizeMetricsPrefix(prefix: string): string {
  const cleaned = prefix.replace(/[^a-zA-Z0-9_:]/g, '_');
  return /^[0-9]/.test(cleaned) ? `_${cleaned}` : cleaned;
}
