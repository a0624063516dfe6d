/**
 * The frontend's metric families as data (name, type, labels, buckets), and a typed handle on
 * them built through a `MetricFactory` port. The Prometheus implementation of the port lives in
 * `src/adapters/prom-metrics.ts`; the core only sees these interfaces.
 */

export type Labels = Readonly<Record<string, string>>;

export interface Counter {
  inc(labels?: Labels, value?: number): void;
}
export interface Gauge {
  set(labels: Labels, value: number): void;
  inc(labels?: Labels, value?: number): void;
  dec(labels?: Labels, value?: number): void;
}
export interface Histogram {
  observe(labels: Labels, value: number): void;
}

export interface MetricSpec {
  /** Name without the prefix. */
  name: string;
  help: string;
  labels: readonly string[];
  /** Histograms only: upper bounds, `+Inf` implied. */
  buckets?: readonly number[];
}

/** The port a metrics backend implements. */
export interface MetricFactory {
  counter(spec: MetricSpec): Counter;
  gauge(spec: MetricSpec): Gauge;
  histogram(spec: MetricSpec): Histogram;
  /** The exposition text of everything registered. */
  render(): Promise<string>;
  readonly contentType: string;
}

/**
 * Dynamo's `generate_log_buckets`: `0`, then `count - 1` log-spaced points from just above `min`
 * to `max`, each rounded to two significant figures, consecutive duplicates dropped.
 */
export function generateLogBuckets(min: number, max: number, count: number): number[] {
  const buckets = [0];
  const [lo, hi] = [Math.log(min), Math.log(max)];
  for (let i = 1; i < count; i++) {
    const value = Number(Math.exp(lo + ((hi - lo) * i) / (count - 1)).toPrecision(2));
    if (buckets[buckets.length - 1] !== value) buckets.push(value);
  }
  return buckets;
}

const MODEL = ['model'] as const;
const REQUEST = ['model', 'endpoint', 'request_type'] as const;

/** Bucket layouts of the reference (§10.4). */
export const BUCKETS = {
  requestDuration: generateLogBuckets(1, 512, 10),
  inputSequence: generateLogBuckets(50, 128000, 12),
  outputSequence: generateLogBuckets(50, 32000, 10),
  ttft: generateLogBuckets(0.001, 480, 18),
  itl: generateLogBuckets(0.001, 2, 13),
  embeddingLatency: generateLogBuckets(0.001, 10, 14),
  tokenizerLatencyMs: [0.5, 1, 2, 4, 8, 16, 32, 64, 128, 256, 512],
  httpDuration: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
} as const;

const counter = (name: string, help: string, labels: readonly string[]) => ({
  kind: 'counter' as const,
  spec: { name, help, labels },
});
const gauge = (name: string, help: string, labels: readonly string[]) => ({
  kind: 'gauge' as const,
  spec: { name, help, labels },
});
const histogram = (
  name: string,
  help: string,
  labels: readonly string[],
  buckets: readonly number[],
) => ({ kind: 'histogram' as const, spec: { name, help, labels, buckets } });

/** Every frontend metric family, keyed by how the code refers to it. */
export const FRONTEND_METRICS = {
  requestsTotal: counter(
    'requests_total',
    'Requests finished, by outcome',
    [...REQUEST, 'status', 'error_type'],
  ),
  requestsStartedTotal: counter('requests_started_total', 'Requests accepted', REQUEST),
  inflightRequests: gauge('inflight_requests', 'Requests in flight (alias of active)', MODEL),
  activeRequests: gauge('active_requests', 'Requests in flight', MODEL),
  queuedRequests: gauge('queued_requests', 'Requests waiting for their first token', MODEL),
  disconnectedClients: gauge('disconnected_clients', 'Clients that went away mid-request', []),
  requestDuration: histogram(
    'request_duration_seconds',
    'Whole-request duration',
    MODEL,
    BUCKETS.requestDuration,
  ),
  inputSequenceTokens: histogram(
    'input_sequence_tokens',
    'Prompt length in tokens',
    MODEL,
    BUCKETS.inputSequence,
  ),
  outputSequenceTokens: histogram(
    'output_sequence_tokens',
    'Generated length in tokens',
    MODEL,
    BUCKETS.outputSequence,
  ),
  outputTokensTotal: counter('output_tokens_total', 'Tokens generated', MODEL),
  timeToFirstToken: histogram(
    'time_to_first_token_seconds',
    'Time to the first generated token',
    MODEL,
    BUCKETS.ttft,
  ),
  interTokenLatency: histogram(
    'inter_token_latency_seconds',
    'Time between generated tokens',
    MODEL,
    BUCKETS.itl,
  ),
  cachedTokens: histogram(
    'cached_tokens',
    'Prompt tokens served from the prefix cache',
    MODEL,
    BUCKETS.inputSequence,
  ),
  tokenizerLatency: histogram(
    'tokenizer_latency_ms',
    'Tokenizer latency in milliseconds',
    ['operation'],
    BUCKETS.tokenizerLatencyMs,
  ),
  embeddingLatency: histogram(
    'embedding_latency_seconds',
    'Embedding request latency',
    MODEL,
    BUCKETS.embeddingLatency,
  ),
  modelCancellationTotal: counter(
    'model_cancellation_total',
    'Requests cancelled by client disconnect',
    REQUEST,
  ),
  modelRejectionTotal: counter(
    'model_rejection_total',
    'Requests rejected because every worker was busy',
    ['model', 'endpoint'],
  ),
  modelTotalKvBlocks: gauge('model_total_kv_blocks', 'KV blocks of the model card', MODEL),
  modelMaxNumSeqs: gauge('model_max_num_seqs', 'max_num_seqs of the model card', MODEL),
  modelMaxNumBatchedTokens: gauge(
    'model_max_num_batched_tokens',
    'max_num_batched_tokens of the model card',
    MODEL,
  ),
  modelContextLength: gauge('model_context_length', 'Context length of the model', MODEL),
  modelKvCacheBlockSize: gauge('model_kv_cache_block_size', 'KV cache block size', MODEL),
  modelMigrationLimit: gauge('model_migration_limit', 'Migration limit of the model', MODEL),
  modelReady: gauge('model_ready', '1 when the model has a live worker', MODEL),
  modelMigrationTotal: counter(
    'model_migration_total',
    'Requests migrated to another worker',
    ['model', 'migration_type'],
  ),
  httpStalledStreamsTotal: counter(
    'http_stalled_streams_total',
    'Streams cancelled because the client read nothing for --http-write-timeout-secs',
    [],
  ),
  httpRequestsTotal: counter(
    'http_requests_total',
    'HTTP requests answered, by route pattern',
    ['method', 'route', 'status'],
  ),
  httpRequestDuration: histogram(
    'http_request_duration_seconds',
    'Time to the HTTP response head, by route pattern',
    ['method', 'route'],
    BUCKETS.httpDuration,
  ),
} as const;

type Families = typeof FRONTEND_METRICS;
type Handle<K extends { kind: string }> = K['kind'] extends 'counter' ? Counter
  : K['kind'] extends 'gauge' ? Gauge
  : Histogram;

export type FrontendMetrics =
  & { readonly [K in keyof Families]: Handle<Families[K]> }
  & { render(): Promise<string>; readonly contentType: string };

/** Registers every frontend family under `prefix` (already sanitised) with `factory`. */
export function createFrontendMetrics(factory: MetricFactory, prefix: string): FrontendMetrics {
  const handles: Record<string, Counter | Gauge | Histogram> = {};
  for (const [key, family] of Object.entries(FRONTEND_METRICS)) {
    const spec = { ...family.spec, name: `${prefix}_${family.spec.name}` };
    handles[key] = family.kind === 'counter'
      ? factory.counter(spec)
      : family.kind === 'gauge'
      ? factory.gauge(spec)
      : factory.histogram(spec);
  }
  return Object.assign(handles as unknown as FrontendMetrics, {
    render: () => factory.render(),
    contentType: factory.contentType,
  });
}
