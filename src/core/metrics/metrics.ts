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
  /**
   * A handle bound to one label set, for observing many values (per token) without looking the
   * label set up each time. @default a handle calling `observe(labels, value)`
   */
  bind?(labels: Labels): { observe(value: number): void };
}

/** `histogram.bind(labels)`, or a handle calling `observe(labels, value)`. */
export function bindHistogram(histogram: Histogram, labels: Labels): { observe(v: number): void } {
  return histogram.bind?.(labels) ?? { observe: (value) => histogram.observe(labels, value) };
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
export const BUCKETS: Readonly<Record<BucketName, readonly number[]>> = {
  requestDuration: generateLogBuckets(1, 512, 10),
  inputSequence: generateLogBuckets(50, 128000, 12),
  outputSequence: generateLogBuckets(50, 32000, 10),
  ttft: generateLogBuckets(0.001, 480, 18),
  itl: generateLogBuckets(0.001, 2, 13),
  eventLag: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
  embeddingLatency: generateLogBuckets(0.001, 10, 14),
  tokenizerLatencyMs: [0.5, 1, 2, 4, 8, 16, 32, 64, 128, 256, 512],
  httpDuration: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
  mediaPerRequest: [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 20, 30, 40, 50, 100],
  imageTokens: Array.from({ length: 15 }, (_, i) => 2 ** (i + 2)),
  migrationDuration: [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 40, 60],
  stageDuration: [
    0.0001,
    0.00025,
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1,
    2.5,
    5,
    10,
  ],
  hitRate: [0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1],
};

export type BucketName =
  | 'requestDuration'
  | 'inputSequence'
  | 'outputSequence'
  | 'ttft'
  | 'itl'
  | 'embeddingLatency'
  | 'tokenizerLatencyMs'
  | 'httpDuration'
  | 'mediaPerRequest'
  | 'imageTokens'
  | 'migrationDuration'
  | 'stageDuration'
  | 'hitRate'
  | 'eventLag';

/** The log-bucketed histograms whose layout `DYN_METRICS_{NAME}_{MIN,MAX,COUNT}` changes. */
const BUCKET_ENV: Readonly<Record<string, BucketName>> = {
  REQUEST_DURATION: 'requestDuration',
  INPUT_SEQUENCE: 'inputSequence',
  OUTPUT_SEQUENCE: 'outputSequence',
  TTFT: 'ttft',
  ITL: 'itl',
  EMBEDDING_LATENCY: 'embeddingLatency',
};
/** (min, max, count) defaults of the reference (§10.4), per variable name. */
const BUCKET_DEFAULTS: Readonly<Record<string, readonly [number, number, number]>> = {
  REQUEST_DURATION: [1, 512, 10],
  INPUT_SEQUENCE: [50, 128000, 12],
  OUTPUT_SEQUENCE: [50, 32000, 10],
  TTFT: [0.001, 480, 18],
  ITL: [0.001, 2, 13],
  EMBEDDING_LATENCY: [0.001, 10, 14],
};

/**
 * Bucket layouts from `DYN_METRICS_{REQUEST_DURATION,INPUT_SEQUENCE,OUTPUT_SEQUENCE,TTFT,ITL,
 * EMBEDDING_LATENCY}_{MIN,MAX,COUNT}` (the deprecated `DYN_HISTOGRAM_METRICS_` spelling too), each
 * unset part taking its default. An invalid triple (not finite, min <= 0, min >= max, count 0 or
 * over 512) keeps the defaults, as Dynamo does; `onInvalid` hears about it.
 */
export function metricBucketsFromEnv(
  env: Readonly<Record<string, string | undefined>>,
  onInvalid: (name: string, values: readonly number[]) => void = () => {},
): Partial<Record<BucketName, number[]>> {
  const out: Partial<Record<BucketName, number[]>> = {};
  for (const [name, key] of Object.entries(BUCKET_ENV)) {
    const read = (part: string) =>
      env[`DYN_METRICS_${name}_${part}`] ?? env[`DYN_HISTOGRAM_METRICS_${name}_${part}`];
    const raw = [read('MIN'), read('MAX'), read('COUNT')];
    if (raw.every((v) => v === undefined)) continue;
    const defaults = BUCKET_DEFAULTS[name] as readonly [number, number, number];
    const [min, max, count] = raw.map((v, i) =>
      v === undefined ? defaults[i] as number : Number(v)
    );
    const valid = [min, max, count].every(Number.isFinite) && min! > 0 && min! < max! &&
      Number.isInteger(count) && count! > 0 && count! <= 512;
    if (!valid) {
      onInvalid(`DYN_METRICS_${name}`, [min!, max!, count!]);
      continue;
    }
    out[key] = generateLogBuckets(min!, max!, count!);
  }
  return out;
}

const WORKER = ['worker_id', 'dp_rank', 'worker_type'] as const;

/**
 * Families the reference names with the literal `dynamo_frontend_` prefix whatever
 * `--metrics-prefix` says (§10.3: per-worker, stage, admission and hit-rate families).
 */
const literal = <F extends { spec: MetricSpec }>(family: F): F & { literal: true } => ({
  ...family,
  literal: true,
});
export const LITERAL_PREFIX = 'dynamo_frontend';

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
  kvEventLag: histogram(
    'kv_event_lag_seconds',
    'Time from a worker publishing an event (KV event or load report) to the frontend applying it',
    ['topic'],
    BUCKETS.eventLag,
  ),
  modelMigrationMaxSeqLenExceededTotal: counter(
    'model_migration_max_seq_len_exceeded_total',
    'Requests that stopped being migratable once prompt plus output passed --migration-max-seq-len',
    MODEL,
  ),
  modelMigrationDuration: histogram(
    'model_migration_duration_seconds',
    'Time from a lost worker to the request running again elsewhere (or giving up)',
    ['model', 'migration_type', 'outcome'],
    BUCKETS.migrationDuration,
  ),
  imagesPerRequest: histogram(
    'images_per_request',
    'Image content parts in a request',
    MODEL,
    BUCKETS.mediaPerRequest,
  ),
  videosPerRequest: histogram(
    'videos_per_request',
    'Video content parts in a request',
    MODEL,
    BUCKETS.mediaPerRequest,
  ),
  audioPerRequest: histogram(
    'audio_per_request',
    'Audio content parts in a request',
    MODEL,
    BUCKETS.mediaPerRequest,
  ),
  imageTokensPerRequest: histogram(
    'image_tokens_per_request',
    'Image placeholder tokens in a request',
    MODEL,
    BUCKETS.imageTokens,
  ),
  workerLastTimeToFirstToken: literal(gauge(
    'worker_last_time_to_first_token_seconds',
    'Time to first token of the last request a worker prefilled, in seconds',
    WORKER,
  )),
  workerLastInputSequenceTokens: literal(gauge(
    'worker_last_input_sequence_tokens',
    'Prompt length of the last request a worker prefilled, in tokens',
    WORKER,
  )),
  workerLastInterTokenLatency: literal(gauge(
    'worker_last_inter_token_latency_seconds',
    'Last inter-token latency a worker decoded with, in seconds',
    WORKER,
  )),
  workerWaitingRequests: literal(gauge(
    'worker_waiting_requests',
    'Requests waiting in a worker, from its last load report',
    WORKER,
  )),
  stageDuration: literal(histogram(
    'stage_duration_seconds',
    'Time a request spent in a frontend stage (preprocess, route, transport_roundtrip)',
    ['stage'],
    BUCKETS.stageDuration,
  )),
  kvHitRate: literal(histogram(
    'kv_hit_rate',
    'Prompt blocks the chosen worker had cached, as a fraction of the prompt, at routing time',
    MODEL,
    BUCKETS.hitRate,
  )),
  admissionRejectionTotal: literal(counter(
    'admission_rejection_total',
    'Requests refused by a frontend admission gate',
    ['gate', 'model'],
  )),
  admissionGateLimit: literal(gauge(
    'admission_gate_limit',
    'Configured limit of a frontend admission gate',
    ['gate'],
  )),
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
export function createFrontendMetrics(
  factory: MetricFactory,
  prefix: string,
  options: {
    /** Bucket layouts that replace the defaults (`metricBucketsFromEnv`). @default none */
    buckets?: Partial<Record<BucketName, readonly number[]>>;
  } = {},
): FrontendMetrics {
  const handles: Record<string, Counter | Gauge | Histogram> = {};
  const replaced = new Map<readonly number[], readonly number[]>();
  for (const [key, layout] of Object.entries(options.buckets ?? {})) {
    replaced.set(BUCKETS[key as BucketName], layout);
  }
  for (const [key, family] of Object.entries(FRONTEND_METRICS)) {
    const base = 'literal' in family ? LITERAL_PREFIX : prefix;
    const buckets = 'buckets' in family.spec ? family.spec.buckets : undefined;
    const spec = {
      ...family.spec,
      name: `${base}_${family.spec.name}`,
      ...(buckets && replaced.has(buckets) ? { buckets: replaced.get(buckets) } : {}),
    };
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
