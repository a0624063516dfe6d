/**
 * `createCore(ports, config)`: everything the HTTP layer calls, built from ports the runtime
 * passes in. No module-level state: two cores in one process do not share anything.
 */
import { type BusyThresholdStore, createBusyThresholdStore } from './busy-thresholds.ts';
import { type Config, sanitizeMetricsPrefix } from './config.ts';
import { createModelRegistry, type ModelRegistry } from './discovery/models.ts';
import { createLifecycle, type Lifecycle } from './lifecycle.ts';
import type { Logger } from './logger.ts';
import { createFrontendMetrics, type FrontendMetrics, type MetricFactory } from './metrics.ts';
import { PlaneError } from './plane/errors.ts';
import type { RequestPlaneClient } from './plane/types.ts';
import type { ModelPreprocessor } from './preprocess/preprocessor.ts';
import type { ServedModel } from './discovery/models.ts';
import type { KvRouter } from './router/kv/types.ts';
import {
  createInhibitor,
  createPolicy,
  type Inhibitor,
  type RoutingPolicy,
} from './router/policy.ts';

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
  /** Uniform [0, 1), for `--router-mode random`. @default Math.random */
  random?: () => number;
}

/** The KV routers of `--router-mode kv`: one per model and pool (aggregated/decode, prefill). */
export interface KvRouting {
  routerFor(model: ServedModel, pool: 'decode' | 'prefill'): KvRouter;
}

export interface Core {
  readonly config: Config;
  readonly logger: Logger;
  readonly metrics: FrontendMetrics;
  readonly lifecycle: Lifecycle;
  readonly models: ModelRegistry;
  readonly thresholds: BusyThresholdStore;
  readonly plane: RequestPlaneClient;
  readonly preprocessors: PreprocessorSource;
  readonly policy: RoutingPolicy;
  readonly inhibitor: Inhibitor;
  /** Set in `--router-mode kv`. */
  readonly kv?: KvRouting;
  /** Models that had prefill workers at some point (disaggregated serving). */
  readonly disaggregated: Set<string>;
  now(): number;
  monotonic(): number;
  newId(): string;
}

export function createCore(ports: CorePorts, config: Config): Core {
  const now = ports.now ?? (() => Date.now());
  const monotonic = ports.monotonic ?? (() => performance.now());
  return {
    plane: ports.plane ?? noPlane,
    preprocessors: ports.preprocessors ?? {
      get: () => Promise.reject(new Error('no preprocessor source is configured')),
      close: () => Promise.resolve(),
    },
    policy: createPolicy(config.routerMode, ports.random),
    inhibitor: createInhibitor({ now: monotonic }),
    disaggregated: new Set(),
    config,
    logger: ports.logger,
    metrics: createFrontendMetrics(ports.metrics, sanitizeMetricsPrefix(config.metricsPrefix)),
    lifecycle: createLifecycle(),
    models: createModelRegistry({ nowSeconds: () => Math.floor(now() / 1000) }),
    thresholds: createBusyThresholdStore({
      active_decode_blocks_threshold: config.activeDecodeBlocksThreshold ?? null,
      active_prefill_tokens_threshold: config.activePrefillTokensThreshold ?? null,
      active_prefill_tokens_threshold_frac: config.activePrefillTokensThresholdFrac ?? null,
    }),
    now,
    monotonic,
    newId: ports.newId ?? (() => crypto.randomUUID()),
  };
}
