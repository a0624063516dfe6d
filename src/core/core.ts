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
}

export interface Core {
  readonly config: Config;
  readonly logger: Logger;
  readonly metrics: FrontendMetrics;
  readonly lifecycle: Lifecycle;
  readonly models: ModelRegistry;
  readonly thresholds: BusyThresholdStore;
  now(): number;
  monotonic(): number;
  newId(): string;
}

export function createCore(ports: CorePorts, config: Config): Core {
  const now = ports.now ?? (() => Date.now());
  return {
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
    monotonic: ports.monotonic ?? (() => performance.now()),
    newId: ports.newId ?? (() => crypto.randomUUID()),
  };
}
