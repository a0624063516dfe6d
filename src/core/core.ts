/**
 * `createCore(ports, config)`: everything the HTTP layer calls, built from ports the runtime
 * passes in. No module-level state: two cores in one process do not share anything.
 */
import { type BusyThresholdStore, createBusyThresholdStore } from './router/busy-thresholds.ts';
import { type Config, sanitizeMetricsPrefix } from './config.ts';
import { createModelRegistry, type ModelRegistry } from './discovery/models.ts';
import { createLifecycle, type Lifecycle } from './lifecycle.ts';
import type { Logger } from './logger.ts';
import type { SpanExporter } from './tracing.ts';
import { workerLabels } from './metrics/request-metrics.ts';
import {
  type BucketName,
  createFrontendMetrics,
  type FrontendMetrics,
  type MetricFactory,
} from './metrics/metrics.ts';
import { PlaneError } from './plane/errors.ts';
import type { RequestPlaneClient } from './plane/types.ts';
import type { ModelPreprocessor } from './preprocess/preprocessor.ts';
import type { ServedModel } from './discovery/models.ts';
import {
  createKvRouting,
  type KvRoutingControl,
  type KvRoutingPorts,
} from './router/kv/routing.ts';
import { createRouterMetrics } from './router/kv/metrics.ts';
import type { KvQueryResponse } from './router/kv/subscriber.ts';
import type { ActiveSequenceEvent } from './router/kv/sequences.ts';
import { createBlockHasher } from './router/kv/hash.ts';
import { type BusyDetector, createBusyDetector } from './router/busy.ts';
import { parseExactJson } from './json.ts';
import { createMemResponseStore, type ResponseStore } from './api/responses/store.ts';
import type { WorkerInstance } from './discovery/models.ts';
import {
  createInhibitor,
  createPolicy,
  type Inhibitor,
  type RoutingPolicy,
} from './router/policy.ts';
import { createLoadTracker, type LoadTracker } from './router/load.ts';
import { createSessionTable, type SessionTable } from './router/sessions.ts';

/**
 * A model's preprocessor, loaded from the files its card names. `renderChat` and
 * `tokenizePrompt` may run in worker threads (`--dyn-preprocess-workers`), hence the promises.
 */
export interface PromptPreprocessor {
  readonly tokenizer: ModelPreprocessor['tokenizer'];
  readonly eosTokenIds: readonly number[];
  readonly contextLength?: number;
  renderChat(
    request: Parameters<ModelPreprocessor['renderChat']>[0],
  ): Promise<ReturnType<ModelPreprocessor['renderChat']>>;
  tokenizePrompt(text: string): Promise<number[]>;
}

export interface PreprocessorSource {
  get(model: ServedModel): Promise<PromptPreprocessor>;
  close(): Promise<void>;
}

const noPlane: RequestPlaneClient = {
  send: () => Promise.reject(new PlaneError('cannot_connect', 'no request plane is configured')),
  close: () => Promise.resolve(),
};

/** What the core needs from the outside world. */
export interface CorePorts {
  logger: Logger;
  metrics: MetricFactory;
  /** Wall clock in milliseconds. @default () => Date.now() */
  now?: () => number;
  /** Monotonic clock in milliseconds, for durations. @default () => performance.now() */
  monotonic?: () => number;
  /** Fresh request ids. @default () => crypto.randomUUID() */
  newId?: () => string;
  /** How requests reach workers. @default none: every dispatch fails with 503 */
  plane?: RequestPlaneClient;
  /** Tokenizers and templates of the served models. @default none: Tokens models answer 503 */
  preprocessors?: PreprocessorSource;
  /** Uniform [0, 1), for `--router-mode random` and KV softmax sampling. @default Math.random */
  random?: () => number;
  /** `--router-replica-sync`: sends a tracker event to the other frontends. @default none */
  publishSync?: (event: ActiveSequenceEvent, on: WorkerInstance) => void;
  /** `--router-event-threads N > 1`: decodes KV events off the main thread. @default inline */
  kvEventPool?: KvRoutingPorts['eventPool'];
  /**
   * Where stored responses live. @default in memory with `--responses-store mem`, none with
   * `none`; `nats` needs the runtime to pass its adapter
   */
  responseStore?: ResponseStore;
  /** Where request spans go (`OTEL_EXPORTER_OTLP_ENDPOINT`). @default none: tracing off */
  tracer?: SpanExporter;
  /** Histogram layouts from `DYN_METRICS_*` (`metricBucketsFromEnv`). @default the reference's */
  metricBuckets?: Partial<Record<BucketName, readonly number[]>>;
}

export interface Core {
  readonly config: Config;
  /** Set when request spans are exported. */
  readonly tracer?: SpanExporter;
  readonly logger: Logger;
  readonly metrics: FrontendMetrics;
  readonly lifecycle: Lifecycle;
  readonly models: ModelRegistry;
  readonly thresholds: BusyThresholdStore;
  readonly plane: RequestPlaneClient;
  readonly preprocessors: PreprocessorSource;
  readonly policy: RoutingPolicy;
  readonly inhibitor: Inhibitor;
  /** What this frontend has in flight on each worker (least-loaded, power-of-two-choices). */
  readonly load: LoadTracker;
  /** Session affinity: which worker each session is bound to. */
  readonly sessions: SessionTable;
  /** Set in `--router-mode kv`. */
  readonly kv?: KvRoutingControl;
  /** Models that had prefill workers at some point (disaggregated serving). */
  readonly disaggregated: Set<string>;
  /** Load shedding: which workers are busy (`--active-*-threshold*`, `/busy_threshold`). */
  readonly busy: BusyDetector;
  /** Stored Responses API responses; undefined with `--responses-store none`. */
  readonly responseStore: ResponseStore | undefined;
  now(): number;
  monotonic(): number;
  newId(): string;
}

/** Asks `instance`'s worker for KV events it missed, or a dump (`worker_kv_indexer_query`). */
async function queryWorker(
  models: ModelRegistry,
  plane: RequestPlaneClient,
  instance: WorkerInstance,
  request: unknown,
): Promise<KvQueryResponse> {
  const target = models.allInstances().find((i) =>
    i.instanceId === instance.instanceId && i.endpoint.endpoint === 'worker_kv_indexer_query' &&
    i.endpoint.namespace === instance.endpoint.namespace &&
    i.endpoint.component === instance.endpoint.component
  );
  if (!target) return { Error: 'the worker serves no worker_kv_indexer_query endpoint' };
  const signal = AbortSignal.timeout(10_000);
  const items = await plane.send(
    target.transport,
    { id: crypto.randomUUID(), headers: {}, body: request },
    { signal },
  );
  for await (const item of items) {
    const text = (item as { data?: { exact_json?: unknown } } | null)?.data?.exact_json;
    if (typeof text === 'string') return parseExactJson(text) as KvQueryResponse;
  }
  return { Error: 'the worker sent no answer' };
}

export function createCore(ports: CorePorts, config: Config): Core {
  const now = ports.now ?? (() => Date.now());
  const monotonic = ports.monotonic ?? (() => performance.now());
  const models = createModelRegistry({ nowSeconds: () => Math.floor(now() / 1000) });
  const plane = ports.plane ?? noPlane;
  const prefix = sanitizeMetricsPrefix(config.metricsPrefix);
  // Registered in every mode (at zero), as Dynamo does, so dashboards find them.
  const routerMetrics = createRouterMetrics(ports.metrics, prefix);
  const kv = config.routerMode === 'kv'
    ? createKvRouting({
      config,
      logger: ports.logger,
      models,
      metrics: routerMetrics,
      hasher: () => createBlockHasher(),
      query: (instance, request) => queryWorker(models, plane, instance, request),
      monotonic,
      random: ports.random ?? Math.random,
      publishSync: ports.publishSync,
      eventPool: ports.kvEventPool,
    })
    : undefined;
  if (kv) models.onChange(() => kv.sync());
  const thresholds = createBusyThresholdStore({
    active_decode_blocks_threshold: config.activeDecodeBlocksThreshold ?? null,
    active_prefill_tokens_threshold: config.activePrefillTokensThreshold ?? null,
    active_prefill_tokens_threshold_frac: config.activePrefillTokensThresholdFrac ?? null,
  });
  const load = createLoadTracker();
  const metrics = createFrontendMetrics(ports.metrics, prefix, { buckets: ports.metricBuckets });
  const busy = createBusyDetector({
    thresholds,
    onReport: ({ workerId, dpRank, waitingRequests }) => {
      if (waitingRequests === undefined) return;
      metrics.workerWaitingRequests.set(
        workerLabels({ instanceId: workerId, dpRank, type: 'decode' }),
        waitingRequests,
      );
    },
    routerLoad: kv ? (model, workerId, dpRank) => kv.loadOf(model, workerId, dpRank) : undefined,
  });
  const responseStore = ports.responseStore ??
    (config.responsesStore === 'mem'
      ? createMemResponseStore({
        ttlMs: config.responsesStoreTtlSecs * 1000,
        maxBytes: config.responsesStoreMaxMb * 1024 * 1024,
        now,
      })
      : undefined);
  if (config.responsesStore === 'nats' && !ports.responseStore) {
    throw new Error('--responses-store nats needs the NATS key-value store adapter');
  }
  return {
    busy,
    kv,
    plane,
    responseStore,
    preprocessors: ports.preprocessors ?? {
      get: () => Promise.reject(new Error('no preprocessor source is configured')),
      close: () => Promise.resolve(),
    },
    policy: createPolicy(config.routerMode, { random: ports.random, load }),
    load,
    sessions: createSessionTable({ now: monotonic, ttlSecs: config.routerSessionAffinityTtlSecs }),
    inhibitor: createInhibitor({ now: monotonic, durationMs: config.inhibitedDurationSecs * 1000 }),
    disaggregated: new Set(),
    config,
    logger: ports.logger,
    metrics,
    ...(ports.tracer ? { tracer: ports.tracer } : {}),
    lifecycle: createLifecycle(),
    models,
    thresholds,
    now,
    monotonic,
    newId: ports.newId ?? (() => crypto.randomUUID()),
  };
}
