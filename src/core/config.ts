/**
 * The frontend's configuration: one Zod schema holding every CLI flag and `DYN_*` environment
 * variable of the Dynamo frontend interface, with its default and a one-line description.
 * Parsing, validation and `--help` come from `options.ts`.
 */
import { z } from 'zod';
import {
  createOptionRegistry,
  type OptionInfo,
  type OptionSources,
  type OptionsResult,
  resolveOptions,
  toBool,
  values,
} from './options.ts';

export { optionLabel } from './options.ts';
export type { OptionInfo, OptionMeta } from './options.ts';

const o = createOptionRegistry();

const U32_MAX = 4294967295;

export const ROUTER_MODES = [
  'round-robin',
  'random',
  'kv',
  'direct',
  'least-loaded',
  'power-of-two-choices',
] as const;
/** Other spellings `--router-mode` accepts, and the mode each one means. */
export const ROUTER_MODE_ALIASES: Readonly<Record<string, (typeof ROUTER_MODES)[number]>> = {
  'power-of-two': 'power-of-two-choices',
};
export const DISCOVERY_BACKENDS = ['kubernetes', 'etcd', 'file', 'mem'] as const;
export const REQUEST_PLANES = ['tcp', 'nats', 'http'] as const;
export const EVENT_PLANES = ['nats', 'zmq'] as const;
export const CHAT_PROCESSORS = ['dynamo', 'vllm'] as const;
export const RESPONSE_STORES = ['mem', 'nats', 'none'] as const;

const G_HTTP = 'HTTP & Networking';
const G_ROUTER = 'Router';
const G_FAULT = 'Fault Tolerance';
const G_DISCOVERY = 'Model Discovery';
const G_INFRA = 'Infrastructure';
const G_KSERVE = 'KServe gRPC';
const G_MONITOR = 'Monitoring';
const G_EXP = 'Experimental';
const G_RESPONSES = 'Responses API';
const G_PATHS = 'Endpoint paths';
const G_DEPRECATED = 'Deprecated';
const G_LIMITS = 'Limits & Access Control';

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
  return o.opt(pathSchema.default(fallback), {
    env,
    hint: 'path',
    description: `URL path of the ${fallback} endpoint`,
    group: G_PATHS,
  });
}

/**
 * The flags every process of a deployment shares (frontend, mocker): which discovery backend,
 * request plane and event plane they all agree on.
 */
export function infrastructureFields(registry: ReturnType<typeof createOptionRegistry>) {
  return {
    discoveryBackend: registry.opt(values.oneOf(DISCOVERY_BACKENDS).default('etcd'), {
      flag: 'discovery-backend',
      env: ['DYN_DISCOVERY_BACKEND'],
      hint: DISCOVERY_BACKENDS.join('|'),
      description: 'Service discovery backend',
      group: G_INFRA,
    }),
    requestPlane: registry.opt(values.oneOf(REQUEST_PLANES).default('tcp'), {
      flag: 'request-plane',
      env: ['DYN_REQUEST_PLANE'],
      hint: REQUEST_PLANES.join('|'),
      description: 'Transport from frontend to workers',
      group: G_INFRA,
    }),
    eventPlane: registry.opt(values.oneOf(EVENT_PLANES).default('nats'), {
      flag: 'event-plane',
      env: ['DYN_EVENT_PLANE'],
      hint: EVENT_PLANES.join('|'),
      description: 'Transport of KV events and load metrics',
      group: G_INFRA,
    }),
  };
}

export const configSchema = z.object({
  // HTTP & Networking
  httpHost: o.opt(values.text().default('0.0.0.0'), {
    flag: 'http-host',
    env: ['DYN_HTTP_HOST'],
    hint: 'host',
    description: 'HTTP listen address',
    group: G_HTTP,
  }),
  httpPort: o.opt(values.port().default(8000), {
    flag: 'http-port',
    env: ['DYN_HTTP_PORT'],
    hint: 'port',
    description: 'HTTP listen port',
    group: G_HTTP,
  }),
  tlsCertPath: o.opt(values.text().optional(), {
    flag: 'tls-cert-path',
    env: ['DYN_TLS_CERT_PATH'],
    hint: 'file',
    description: 'TLS certificate path (PEM); needs --tls-key-path',
    group: G_HTTP,
  }),
  tlsKeyPath: o.opt(values.text().optional(), {
    flag: 'tls-key-path',
    env: ['DYN_TLS_KEY_PATH'],
    hint: 'file',
    description: 'TLS private key path (PEM); needs --tls-cert-path',
    group: G_HTTP,
  }),
  httpBodyLimitMb: o.opt(values.num(0.000001).default(45), {
    env: ['DYN_HTTP_BODY_LIMIT_MB'],
    hint: 'MB',
    description: 'Maximum request body size in MiB (larger bodies get 413); see docs/security.md',
    group: G_HTTP,
  }),
  httpGracefulShutdownTimeoutSecs: o.opt(values.num(0).default(5), {
    env: ['DYN_HTTP_GRACEFUL_SHUTDOWN_TIMEOUT_SECS'],
    hint: 'seconds',
    description: 'How long in-flight requests may run after SIGTERM/SIGINT',
    group: G_HTTP,
  }),
  httpOverloadStatusCode: o.opt(values.int(200, 999).default(503), {
    env: ['DYN_HTTP_OVERLOAD_STATUS_CODE'],
    hint: 'status',
    description: 'HTTP status of load-shed rejections (Dynamo uses 529)',
    group: G_HTTP,
  }),
  multimodalMaxMb: o.opt(values.num(0.000001).default(20), {
    env: ['DYN_MULTIMODAL_MAX_MB'],
    hint: 'MB',
    description: 'Largest decoded data-URL image or video, or file part (larger ones get 400)',
    group: G_HTTP,
  }),
  ignoreUnsupportedFields: o.opt(values.bool(false), {
    env: ['DYN_IGNORE_OPENAI_FE_UNSUPPORTED_FIELDS'],
    description: 'Drop unknown request fields instead of answering 400',
    group: G_HTTP,
  }),
  disableFrontendNvext: o.opt(values.bool(false), {
    env: ['DYN_DISABLE_FRONTEND_NVEXT'],
    description: 'Ignore nvext (except cache_salt) and the routing headers',
    group: G_HTTP,
  }),
  disableFrontendAdminApi: o.opt(values.bool(false), {
    env: ['DYN_DISABLE_FRONTEND_ADMIN_API'],
    description: 'Do not serve /busy_threshold',
    group: G_HTTP,
  }),

  // Limits and access control (docs/security.md)
  httpMaxRequestChars: o.opt(values.int(1, Number.MAX_SAFE_INTEGER).default(2_000_000), {
    flag: 'http-max-request-chars',
    env: ['DYN_HTTP_MAX_REQUEST_CHARS'],
    hint: 'chars',
    description:
      'Text characters plus token ids a request may carry, over all prompts and messages',
    group: G_LIMITS,
  }),
  httpMaxMessages: o.opt(values.int(1, Number.MAX_SAFE_INTEGER).default(10_000), {
    flag: 'http-max-messages',
    env: ['DYN_HTTP_MAX_MESSAGES'],
    hint: 'n',
    description: 'Messages (chat, Anthropic) or input items (Responses) in one request',
    group: G_LIMITS,
  }),
  httpMaxPrompts: o.opt(values.int(1, Number.MAX_SAFE_INTEGER).default(2048), {
    flag: 'http-max-prompts',
    env: ['DYN_HTTP_MAX_PROMPTS'],
    hint: 'n',
    description: 'Prompts (completions) or inputs (embeddings) in one batched request',
    group: G_LIMITS,
  }),
  httpMaxJsonDepth: o.opt(values.int(2, 10_000).default(64), {
    flag: 'http-max-json-depth',
    env: ['DYN_HTTP_MAX_JSON_DEPTH'],
    hint: 'levels',
    description: 'Deepest nesting of objects and arrays a JSON body may have',
    group: G_LIMITS,
  }),
  httpMaxOutputBudget: o.opt(values.int(1, Number.MAX_SAFE_INTEGER).default(262_144), {
    flag: 'http-max-output-budget',
    env: ['DYN_HTTP_MAX_OUTPUT_BUDGET'],
    hint: 'units',
    description: 'n x max_tokens x (1, or 2 + top_logprobs with logprobs) a request may ask for',
    group: G_LIMITS,
  }),
  httpBodyThreadMb: o.opt(values.num(0).default(1), {
    flag: 'http-body-thread-mb',
    env: ['DYN_HTTP_BODY_THREAD_MB'],
    hint: 'MB',
    description:
      'JSON bodies of this many MiB or more are parsed and checked in a thread, off the event loop; 0: never',
    group: G_LIMITS,
  }),
  httpHeaderTimeoutSecs: o.opt(values.num(0.001).default(30), {
    flag: 'http-header-timeout-secs',
    env: ['DYN_HTTP_HEADER_TIMEOUT_SECS'],
    hint: 'seconds',
    description: 'Time a client has to send the request headers (Node, Bun; Deno: its own)',
    group: G_LIMITS,
  }),
  httpBodyTimeoutSecs: o.opt(values.num(0.001).default(60), {
    flag: 'http-body-timeout-secs',
    env: ['DYN_HTTP_BODY_TIMEOUT_SECS'],
    hint: 'seconds',
    description: 'Time a client has to send the whole request body (408 after)',
    group: G_LIMITS,
  }),
  httpWriteTimeoutSecs: o.opt(values.num(0.001).default(60), {
    flag: 'http-write-timeout-secs',
    env: ['DYN_HTTP_WRITE_TIMEOUT_SECS'],
    hint: 'seconds',
    description: 'A stream whose client reads nothing for this long is cancelled',
    group: G_LIMITS,
  }),
  httpMaxConnections: o.opt(values.int(0, Number.MAX_SAFE_INTEGER).default(4096), {
    flag: 'http-max-connections',
    env: ['DYN_HTTP_MAX_CONNECTIONS'],
    hint: 'n',
    description: 'Open connections (Node) or requests in flight (Bun, Deno: 503 past it); 0: none',
    group: G_LIMITS,
  }),
  apiKeys: o.opt(values.list(), {
    flag: 'api-key',
    env: ['DYN_HTTP_API_KEYS'],
    hint: 'key',
    description: 'Require "Authorization: Bearer <key>" on API routes (repeat, or comma-separate)',
    group: G_LIMITS,
    repeatable: true,
  }),
  adminApiKey: o.opt(values.text().optional(), {
    flag: 'admin-api-key',
    env: ['DYN_HTTP_ADMIN_API_KEY'],
    hint: 'key',
    description: 'Bearer token for /busy_threshold and /health detail (API keys never open them)',
    group: G_LIMITS,
  }),
  ignoreRoutingHeaders: o.opt(values.bool(false), {
    flag: 'ignore-routing-headers',
    env: ['DYN_HTTP_IGNORE_ROUTING_HEADERS'],
    description: 'Ignore routing and priority headers unless the request carries the admin key',
    group: G_LIMITS,
  }),
  corsOrigins: o.opt(values.list(), {
    flag: 'cors-origin',
    env: ['DYN_HTTP_CORS_ORIGINS'],
    hint: 'origin',
    description: 'Browser origins allowed by CORS (repeat, or comma-separate; * for any)',
    group: G_LIMITS,
    repeatable: true,
  }),
  allowedHosts: o.opt(values.list(), {
    flag: 'allowed-host',
    env: ['DYN_HTTP_ALLOWED_HOSTS'],
    hint: 'host',
    description: 'Host header values accepted (repeat, or comma-separate); others get 400',
    group: G_LIMITS,
    repeatable: true,
  }),

  // Router
  routerMode: o.opt(
    z.preprocess(
      (v) => typeof v === 'string' ? ROUTER_MODE_ALIASES[v] ?? v : v,
      values.oneOf(ROUTER_MODES),
    ).default('round-robin'),
    {
      flag: 'router-mode',
      env: ['DYN_ROUTER_MODE'],
      hint: ROUTER_MODES.join('|'),
      description: 'Routing strategy (power-of-two is short for power-of-two-choices); ' +
        'see docs/routing.md',
      group: G_ROUTER,
    },
  ),
  routerSessionAffinityTtlSecs: o.opt(values.num(0).default(300), {
    flag: 'router-session-affinity-ttl-secs',
    env: ['DYN_ROUTER_SESSION_AFFINITY_TTL_SECS'],
    hint: 'seconds',
    description: 'How long an idle session (x-dynamo-session-id, nvext.session_control) stays ' +
      'on its worker, in every router mode; 0 turns session affinity off',
    group: G_ROUTER,
  }),
  routerKvOverlapScoreWeight: o.opt(values.num(0).default(1), {
    flag: 'router-kv-overlap-score-weight',
    env: ['DYN_ROUTER_KV_OVERLAP_SCORE_WEIGHT'],
    hint: 'weight',
    description: 'Weight of KV cache overlap in worker scoring; higher prefers cache reuse',
    group: G_ROUTER,
  }),
  routerTemperature: o.opt(values.num(0).default(0), {
    flag: 'router-temperature',
    env: ['DYN_ROUTER_TEMPERATURE'],
    hint: 'temp',
    description: 'Softmax temperature for worker sampling; 0 is deterministic',
    group: G_ROUTER,
  }),
  routerKvEvents: o.opt(values.bool(true), {
    flag: 'router-kv-events',
    env: ['DYN_ROUTER_USE_KV_EVENTS'],
    description: 'Use KV cache events from workers; off means prediction-based routing',
    group: G_ROUTER,
  }),
  routerTtlSecs: o.opt(values.num(0).default(120), {
    flag: 'router-ttl-secs',
    env: ['DYN_ROUTER_TTL_SECS'],
    hint: 'seconds',
    description: 'Block TTL when KV events are off',
    group: G_ROUTER,
  }),
  routerMaxTreeSize: o.opt(values.int(1, Number.MAX_SAFE_INTEGER).default(1048576), {
    flag: 'router-max-tree-size',
    env: ['DYN_ROUTER_MAX_TREE_SIZE'],
    hint: 'blocks',
    description: 'Radix tree size that triggers pruning (KV events off)',
    group: G_ROUTER,
  }),
  routerPruneTargetRatio: o.opt(values.fraction().default(0.8), {
    flag: 'router-prune-target-ratio',
    env: ['DYN_ROUTER_PRUNE_TARGET_RATIO'],
    hint: 'ratio',
    description: 'Tree size after pruning, as a fraction of the maximum (KV events off)',
    group: G_ROUTER,
  }),
  routerReplicaSync: o.opt(values.bool(false), {
    flag: 'router-replica-sync',
    env: ['DYN_ROUTER_REPLICA_SYNC'],
    description: 'Sync router state across router replicas',
    group: G_ROUTER,
  }),
  routerSnapshotThreshold: o.opt(values.int(1, Number.MAX_SAFE_INTEGER).default(1000000), {
    flag: 'router-snapshot-threshold',
    env: ['DYN_ROUTER_SNAPSHOT_THRESHOLD'],
    hint: 'messages',
    description: 'Accepted for compatibility with Dynamo and has no effect: there is no ' +
      'JetStream snapshot; a replica that starts late asks each worker for its KV blocks',
    group: G_ROUTER,
  }),
  routerResetStates: o.opt(values.bool(false), {
    flag: 'router-reset-states',
    env: ['DYN_ROUTER_RESET_STATES'],
    description: 'Reset router state on startup (affects existing replicas)',
    group: G_ROUTER,
  }),
  routerTrackActiveBlocks: o.opt(values.bool(true), {
    flag: 'router-track-active-blocks',
    env: ['DYN_ROUTER_TRACK_ACTIVE_BLOCKS'],
    description: 'Track blocks of in-progress requests for load balancing',
    group: G_ROUTER,
  }),
  routerAssumeKvReuse: o.opt(values.bool(true), {
    flag: 'router-assume-kv-reuse',
    env: ['DYN_ROUTER_ASSUME_KV_REUSE'],
    description: 'Assume KV cache reuse when tracking active blocks',
    group: G_ROUTER,
  }),
  routerActiveOverlap: o.opt(values.bool(true), {
    flag: 'router-active-overlap',
    env: ['DYN_ROUTER_ACTIVE_OVERLAP'],
    description: "Switchboard's own: also credit a worker with the prompt's leading blocks that " +
      "this router's requests in flight on it hold, so KV events that arrive late do not " +
      'send a follow-up elsewhere (needs --router-assume-kv-reuse)',
    group: G_ROUTER,
  }),
  routerTrackOutputBlocks: o.opt(values.bool(false), {
    flag: 'router-track-output-blocks',
    env: ['DYN_ROUTER_TRACK_OUTPUT_BLOCKS'],
    description: 'Track output blocks with fractional decay during generation',
    group: G_ROUTER,
  }),
  routerEventThreads: o.opt(values.int(1, 256).default(1), {
    flag: 'router-event-threads',
    env: ['DYN_ROUTER_EVENT_THREADS'],
    hint: 'n',
    description: 'KV event processing threads; more than 1 applies events off the main thread',
    group: G_ROUTER,
  }),
  routerQueueThreshold: o.opt(values.num(0).optional(), {
    flag: 'router-queue-threshold',
    env: ['DYN_ROUTER_QUEUE_THRESHOLD'],
    hint: 'fraction',
    description: 'Queue threshold as a fraction of prefill capacity; enables priority scheduling',
    group: G_ROUTER,
  }),
  enableCacheControl: o.opt(values.bool(false), {
    flag: 'enable-cache-control',
    env: ['DYN_ENABLE_CACHE_CONTROL'],
    description: 'TTL-based cache pinning (needs --router-mode kv)',
    group: G_ROUTER,
  }),
  decodeFallback: o.opt(values.bool(false), {
    flag: 'decode-fallback',
    env: ['DYN_DECODE_FALLBACK'],
    description: 'Fall back to aggregated serving when no prefill worker is available',
    group: G_ROUTER,
  }),

  // Fault tolerance
  migrationLimit: o.opt(values.int(0, U32_MAX).default(0), {
    flag: 'migration-limit',
    env: ['DYN_MIGRATION_LIMIT'],
    hint: 'n',
    description: 'Max migrations of a request when its worker is lost; 0 disables',
    group: G_FAULT,
  }),
  workerHandshakeTimeoutSecs: o.opt(values.num(0.001).default(5), {
    flag: 'worker-handshake-timeout-secs',
    env: ['DYN_WORKER_HANDSHAKE_TIMEOUT_SECS'],
    hint: 'seconds',
    description: 'How long a worker has to accept a request and to open its response stream; ' +
      'past it the request goes to another worker',
    group: G_FAULT,
  }),
  migrationMaxSeqLen: o.opt(values.int(1, Number.MAX_SAFE_INTEGER).optional(), {
    flag: 'migration-max-seq-len',
    env: ['DYN_MIGRATION_MAX_SEQ_LEN'],
    hint: 'tokens',
    description: 'A request whose prompt plus output passes this many tokens is no longer migrated',
    group: G_FAULT,
  }),
  inhibitedDurationSecs: o.opt(values.num(0).default(5), {
    env: ['DYN_RUNTIME_INHIBITED_DURATION_SECS', 'DYN_INHIBITED_DURATION_SECS'],
    hint: 'seconds',
    description: 'How long a worker whose call failed is skipped by routing; 0 disables',
    group: G_FAULT,
  }),
  activeDecodeBlocksThreshold: o.opt(values.fraction().optional(), {
    flag: 'active-decode-blocks-threshold',
    env: ['DYN_ACTIVE_DECODE_BLOCKS_THRESHOLD'],
    hint: 'fraction',
    description: 'KV cache utilization (0-1) above which a worker is busy',
    group: G_FAULT,
  }),
  activePrefillTokensThreshold: o.opt(values.int(0, Number.MAX_SAFE_INTEGER).optional(), {
    flag: 'active-prefill-tokens-threshold',
    env: ['DYN_ACTIVE_PREFILL_TOKENS_THRESHOLD'],
    hint: 'tokens',
    description: 'Active prefill tokens above which a worker is busy',
    group: G_FAULT,
  }),
  activePrefillTokensThresholdFrac: o.opt(values.fraction().optional(), {
    flag: 'active-prefill-tokens-threshold-frac',
    env: ['DYN_ACTIVE_PREFILL_TOKENS_THRESHOLD_FRAC'],
    hint: 'fraction',
    description: 'Busy above this fraction of max_num_batched_tokens (OR with the absolute one)',
    group: G_FAULT,
  }),

  // Model discovery
  namespace: o.opt(values.text().optional(), {
    flag: 'namespace',
    env: ['DYN_NAMESPACE'],
    hint: 'ns',
    description: 'Exact namespace for model discovery',
    group: G_DISCOVERY,
  }),
  namespacePrefix: o.opt(values.text().optional(), {
    flag: 'namespace-prefix',
    env: ['DYN_NAMESPACE_PREFIX'],
    hint: 'prefix',
    description: 'Namespace prefix for discovery; wins over --namespace',
    group: G_DISCOVERY,
  }),
  namespacePrefixStrict: o.opt(values.bool(false), {
    env: ['DYN_NAMESPACE_PREFIX_STRICT'],
    description:
      'The namespace prefix matches only itself and operator generations (prefix-<8 hex>)',
    group: G_DISCOVERY,
  }),
  modelName: o.opt(values.text().optional(), {
    flag: 'model-name',
    env: ['DYN_MODEL_NAME'],
    hint: 'name',
    description: 'Override the served model name',
    group: G_DISCOVERY,
  }),
  modelPath: o.opt(values.text().optional(), {
    flag: 'model-path',
    env: ['DYN_MODEL_PATH'],
    hint: 'dir',
    description: 'Local model directory whose tokenizer overrides the model card',
    group: G_DISCOVERY,
  }),
  kvCacheBlockSize: o.opt(values.int(1, 1 << 20).optional(), {
    flag: 'kv-cache-block-size',
    env: ['DYN_KV_CACHE_BLOCK_SIZE'],
    hint: 'tokens',
    description: 'KV cache block size override',
    group: G_DISCOVERY,
  }),

  // Infrastructure
  ...infrastructureFields(o),

  // KServe gRPC
  kserveGrpcServer: o.opt(values.bool(false), {
    flag: 'kserve-grpc-server',
    env: ['DYN_KSERVE_GRPC_SERVER'],
    description: 'Start the KServe gRPC v2 server',
    group: G_KSERVE,
  }),
  kserveGrpcPort: o.opt(values.int(0, 65535).default(8787), {
    flag: 'kserve-grpc-port',
    env: ['DYN_KSERVE_GRPC_PORT'],
    hint: 'port',
    description: 'KServe gRPC listen port, on --http-host (0: any free port)',
    group: G_KSERVE,
  }),
  grpcMetricsPort: o.opt(values.int(0, 65535).default(8788), {
    flag: 'grpc-metrics-port',
    env: ['DYN_GRPC_METRICS_PORT'],
    hint: 'port',
    description: 'HTTP metrics port of the gRPC service (0: any free port)',
    group: G_KSERVE,
  }),

  // Monitoring
  metricsPrefix: o.opt(values.text().default('dynamo_frontend'), {
    flag: 'metrics-prefix',
    env: ['DYN_METRICS_PREFIX'],
    hint: 'prefix',
    description: 'Prefix of the frontend Prometheus metrics',
    group: G_MONITOR,
  }),
  dumpConfigTo: o.opt(values.text().optional(), {
    flag: 'dump-config-to',
    env: ['DYN_DUMP_CONFIG_TO'],
    hint: 'file',
    description: 'Write the resolved configuration as JSON to this file, then keep running',
    group: G_MONITOR,
  }),

  // Responses API
  responsesStore: o.opt(values.oneOf(RESPONSE_STORES).default('mem'), {
    flag: 'responses-store',
    env: ['DYN_RESPONSES_STORE'],
    hint: RESPONSE_STORES.join('|'),
    description: 'Where stored responses live (store, previous_response_id): this process, a ' +
      'NATS JetStream key-value bucket shared by every frontend replica (NATS_SERVER), or none',
    group: G_RESPONSES,
  }),
  responsesStoreTtlSecs: o.opt(values.num(1).default(86400), {
    flag: 'responses-store-ttl-secs',
    env: ['DYN_RESPONSES_STORE_TTL_SECS'],
    hint: 'seconds',
    description: 'How long a stored response is kept',
    group: G_RESPONSES,
  }),
  responsesStoreMaxMb: o.opt(values.num(0.001).default(256), {
    flag: 'responses-store-max-mb',
    env: ['DYN_RESPONSES_STORE_MAX_MB'],
    hint: 'MB',
    description: 'Size cap of the store; the oldest responses are dropped first',
    group: G_RESPONSES,
  }),
  responsesStoreBucket: o.opt(values.text().default('switchboard_responses'), {
    flag: 'responses-store-bucket',
    env: ['DYN_RESPONSES_STORE_BUCKET'],
    hint: 'name',
    description: 'Key-value bucket of --responses-store nats',
    group: G_RESPONSES,
  }),

  // Experimental
  enableAnthropicApi: o.opt(values.bool(false), {
    flag: 'enable-anthropic-api',
    env: ['DYN_ENABLE_ANTHROPIC_API'],
    description: 'Serve /v1/messages (Anthropic Messages API)',
    group: G_EXP,
  }),
  dynChatProcessor: o.opt(values.oneOf(CHAT_PROCESSORS).default('dynamo'), {
    flag: 'dyn-chat-processor',
    env: ['DYN_CHAT_PROCESSOR'],
    hint: CHAT_PROCESSORS.join('|'),
    description: 'Chat processor: dynamo, the built-in pipeline (vllm is refused: no vLLM here)',
    group: G_EXP,
  }),
  dynDebugPerf: o.opt(values.bool(false), {
    flag: 'dyn-debug-perf',
    env: ['DYN_DEBUG_PERF'],
    description:
      'Log one line of per-stage timings (template, tokenize, dispatch, ...) per request',
    group: G_EXP,
  }),
  dynPreprocessWorkers: o.opt(values.int(0, 1024).default(1), {
    flag: 'dyn-preprocess-workers',
    env: ['DYN_PREPROCESS_WORKERS'],
    hint: 'n',
    description: 'Worker threads for templating and tokenizing long prompts; 0 runs all inline',
    group: G_EXP,
  }),
  dynPreprocessInlineChars: o.opt(values.int(0, Number.MAX_SAFE_INTEGER).default(16384), {
    flag: 'dyn-preprocess-inline-chars',
    env: ['DYN_PREPROCESS_INLINE_CHARS'],
    hint: 'chars',
    description: 'Requests with less text than this are preprocessed inline even with workers',
    group: G_EXP,
  }),
  interactive: o.opt(values.bool(false), {
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
  routerDurableKvEvents: o.opt(values.bool(false), {
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

/** Every frontend option with its key, spelling and default, in schema order. */
export const OPTIONS: readonly OptionInfo<ConfigKey>[] = o.describe(configSchema);

export type ConfigSources = OptionSources;
export type ConfigResult = OptionsResult<Config>;

/**
 * Resolves the frontend configuration from argv and env (CLI > env > default), reporting every
 * problem at once.
 */
export function resolveConfig(sources: ConfigSources): ConfigResult {
  return resolveOptions({
    schema: configSchema,
    options: OPTIONS,
    sources,
    check(raw, label) {
      const errors: string[] = [];
      const hasCert = raw.tlsCertPath !== undefined;
      if (hasCert !== (raw.tlsKeyPath !== undefined)) {
        const [given, missing] = hasCert
          ? ['tlsCertPath', 'tlsKeyPath']
          : ['tlsKeyPath', 'tlsCertPath'];
        errors.push(`${label(missing)}: required when ${label(given)} is set (HTTPS needs both)`);
      }
      if (raw.dynChatProcessor === 'vllm') {
        errors.push(
          `${label('dynChatProcessor')}: "vllm" runs vLLM's own Python preprocessing ` +
            '(its renderer, input and output processors, tool and reasoning parsers) inside ' +
            'the frontend, and Switchboard has no Python or vLLM to run it; use "dynamo" ' +
            '(the built-in pipeline). See docs/preprocessing.md#chat-processors',
        );
      }
      const routerMode = raw.routerMode ?? 'round-robin';
      if (toBool(raw.enableCacheControl) === true && routerMode !== 'kv') {
        errors.push(
          `${label('enableCacheControl')}: requires --router-mode kv (got "${routerMode}")`,
        );
      }
      return errors;
    },
  });
}

/** Sanitises a metrics prefix the way Dynamo does: anything outside `[a-zA-Z0-9_:]` becomes `_`. */
export function sanitizeMetricsPrefix(prefix: string): string {
  const cleaned = prefix.replace(/[^a-zA-Z0-9_:]/g, '_');
  return /^[0-9]/.test(cleaned) ? `_${cleaned}` : cleaned;
}
