/**
 * Starts the frontend from a resolved configuration: builds the core with real ports, mounts the
 * routes, serves HTTP(S), and shuts down gracefully on SIGTERM/SIGINT.
 */
import type { Config } from '../core/config.ts';
import { type Core, createCore } from '../core/core.ts';
import { createJsonLogger, type Logger } from '../core/logger.ts';
import { createPromMetricFactory } from '../adapters/prom-metrics.ts';
import { metricBucketsFromEnv } from '../core/metrics/metrics.ts';
import { createOtlpHttpExporter, otlpOptionsFromEnv } from '../adapters/otlp-http.ts';
import { createApp } from '../http/app.ts';
import { createBodyPool } from '../adapters/threads/body-pool.ts';
import { responsesWebSocket } from '../http/responses-ws.ts';
import type { RouteModule } from '../http/types.ts';
import { routes as manifest } from '../../routes/_manifest.gen.ts';
import { createDiscovery } from '../core/discovery/discovery.ts';
import { discoveryFeed, startModelWatcher } from '../core/discovery/watcher.ts';
import { swaggerUiAssets } from '../runtime/assets.ts';
import { createInfra, type LocalBus } from '../runtime/infra.ts';
import { createPreprocessorSource } from '../runtime/preprocessors.ts';
import {
  exit,
  onShutdownSignal,
  readTextFile,
  runtimeInfo,
  writeStderr,
  writeTextFile,
} from '../runtime/host.ts';
import { serve, type ServerHandle } from '../runtime/serve.ts';
import type { EventEnvelope, EventPlane } from '../core/events/types.ts';
import { subjectSegment } from '../worker/runtime.ts';
import { createKvEventSink } from '../adapters/threads/kv-event-pool.ts';
import { type RunningKserve, startKserveServer } from '../adapters/kserve-server.ts';
import { createNatsResponseStore, natsTcpServers } from '../adapters/responses-store-nats.ts';

export interface FrontendOptions {
  /** Route modules to mount. @default the generated manifest */
  routes?: readonly RouteModule[];
  /** Environment, for the config dump. @default {} */
  env?: Readonly<Record<string, string | undefined>>;
  /** Where log lines go. @default stderr */
  logger?: Logger;
  /** In-process discovery and events, shared with workers in the same process. @default none */
  local?: LocalBus;
}

export interface RunningFrontend {
  core: Core;
  server: ServerHandle;
  /** The KServe gRPC server, with `--kserve-grpc-server`. */
  kserve?: RunningKserve;
  /** Drains in-flight requests (up to the configured timeout), then closes everything. */
  shutdown(reason: string): Promise<void>;
}

/** Canonical JSON: sorted keys, no spaces, one line. */
export function canonicalJson(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) => {
    if (v === null || typeof v !== 'object' || Array.isArray(v)) return v;
    const entries = Object.entries(v as Record<string, unknown>).sort(([a], [b]) =>
      a < b ? -1 : a > b ? 1 : 0
    );
    return Object.fromEntries(entries);
  });
}

const ENV_PREFIXES = ['DYN_', 'ETCD_', 'NATS_'];

const BUSY_NEEDS = 'a busy threshold (--active-decode-blocks-threshold, ' +
  "--active-prefill-tokens-threshold or POST /busy_threshold) needs the workers' load reports";

export function configDump(config: Config, env: Readonly<Record<string, string | undefined>>) {
  const environment = Object.fromEntries(
    Object.entries(env).filter(([k, v]) =>
      v !== undefined && ENV_PREFIXES.some((p) => k.startsWith(p))
    ),
  );
  return { config, environment, system_info: runtimeInfo(), switchboard_version: '0.1.0' };
}

export async function startFrontend(
  config: Config,
  options: FrontendOptions = {},
): Promise<RunningFrontend> {
  const logger = options.logger ?? createJsonLogger({ write: writeStderr });
  if (config.dumpConfigTo) {
    const payload = canonicalJson(configDump(config, options.env ?? {}));
    try {
      await writeTextFile(config.dumpConfigTo, `${payload}\n`);
      logger.info('configuration written', { path: config.dumpConfigTo });
    } catch (error) {
      logger.warn('could not write the configuration dump', { path: config.dumpConfigTo, error });
      logger.info(`CONFIG_DUMP: ${payload}`);
    }
  }
  const infra = createInfra(config, { env: options.env ?? {}, logger, local: options.local });
  const otlp = otlpOptionsFromEnv(options.env ?? {});
  let exportFailures = 0;
  const tracer = otlp &&
    createOtlpHttpExporter({
      ...otlp,
      // One warning per 100 failed batches: a collector that is down must not flood the log.
      onError: (error) => {
        if (exportFailures++ % 100 === 0) {
          logger.warn('could not export spans', { url: otlp.url, error, failures: exportFailures });
        }
      },
    });
  if (otlp) logger.info('exporting request spans over OTLP/HTTP', { url: otlp.url });
  let events: EventPlane | undefined;
  const responseStore = config.responsesStore === 'nats'
    ? await createNatsResponseStore({
      servers: natsTcpServers(options.env?.NATS_SERVER),
      bucket: config.responsesStoreBucket,
      ttlMs: config.responsesStoreTtlSecs * 1000,
      maxBytes: Math.floor(config.responsesStoreMaxMb * 1024 * 1024),
    })
    : undefined;
  const core = createCore({
    ...(responseStore ? { responseStore } : {}),
    logger,
    metrics: createPromMetricFactory(),
    ...(tracer ? { tracer } : {}),
    metricBuckets: metricBucketsFromEnv(
      options.env ?? {},
      (name, values) =>
        logger.warn(`${name}_{MIN,MAX,COUNT} is invalid: the default buckets are used`, {
          values,
        }),
    ),
    plane: infra.planeClient({ handshakeTimeoutMs: config.workerHandshakeTimeoutSecs * 1000 }),
    preprocessors: createPreprocessorSource({
      workers: config.dynPreprocessWorkers,
      inlineBelowChars: config.dynPreprocessInlineChars,
      logger,
    }),
    ...(config.routerEventThreads > 1
      ? {
        kvEventPool: (pool) =>
          createKvEventSink({
            threads: config.routerEventThreads,
            indexer: pool.indexer,
            onApplied: pool.onApplied,
            onDecodeError: (error) => logger.warn('undecodable KV event', { error }),
          }),
      }
      : {}),
    publishSync: (event, on) => {
      const subject = `namespace.${subjectSegment(on.endpoint.namespace)}.component.${
        subjectSegment(on.endpoint.component)
      }.active_sequences_events`;
      events?.publish(subject, event).catch((error: unknown) =>
        logger.debug('replica sync publish failed', { error })
      );
    },
  }, config);
  const store = await infra.store();
  /** `kv_event_lag_seconds`: published (the worker's clock) -> handed to the router (ours). */
  const observeLag = (e: EventEnvelope) =>
    core.metrics.kvEventLag.observe(
      { topic: e.topic },
      Math.max(0, Date.now() - e.published_at) / 1000,
    );
  /** Worker load (`kv_metrics`) for load shedding, once a threshold is in force. */
  let loadFeed = false;
  const feedLoad = (checked = false) => {
    if (loadFeed || !core.thresholds.any()) return;
    loadFeed = true;
    // A threshold set later (POST /busy_threshold) cannot stop start-up: say what is missing.
    if (!checked) {
      infra.checkNats(BUSY_NEEDS).catch((error: unknown) => logger.warn((error as Error).message));
    }
    events ??= infra.events(store);
    events.subscribe('namespace.*.kv_metrics', (e) => {
      observeLag(e);
      core.busy.onLoad(e.payload);
    });
  };
  const needs = core.kv && config.routerKvEvents
    ? "--router-mode kv needs the workers' KV events (--no-router-kv-events routes on the " +
      "frontend's own bookkeeping instead)"
    : core.kv && config.routerReplicaSync
    ? '--router-replica-sync needs the event plane'
    : core.thresholds.any()
    ? BUSY_NEEDS
    : undefined;
  if (needs) {
    try {
      await infra.checkNats(needs);
    } catch (error) {
      await store.close().catch(() => {});
      throw error;
    }
  }
  if (core.kv && (config.routerKvEvents || config.routerReplicaSync)) {
    events = infra.events(store);
    const kv = core.kv;
    if (config.routerKvEvents) {
      const subject = 'namespace.*.component.*.kv-events';
      if (config.routerEventThreads > 1 && events.subscribeRaw) {
        // Decoded by the event threads, not here.
        events.subscribeRaw(subject, (message) => kv.onKvEventRaw(message));
      } else {
        if (config.routerEventThreads > 1) {
          logger.warn('this event plane has no raw form: KV events are decoded inline', {
            event_plane: config.eventPlane,
          });
        }
        events.subscribe(subject, (e) => {
          observeLag(e);
          kv.onKvEvent(e.payload);
        });
      }
    }
    if (config.routerReplicaSync) {
      // The payload went out through exact JSON; peers' events arrive the same way.
      events.subscribe(
        'namespace.*.component.*.active_sequences_events',
        (e) => kv.onReplicaEvent(e.payload),
      );
    }
  }
  feedLoad(true);
  core.thresholds.onChange(() => feedLoad());
  const watching = new AbortController();
  const bodyPool = config.httpBodyThreadMb > 0 ? createBodyPool() : undefined;
  const app = createApp(options.routes ?? manifest, core, {
    assets: swaggerUiAssets(),
    bodyParser: bodyPool,
  });
  const tls = config.tlsCertPath && config.tlsKeyPath
    ? { cert: await readTextFile(config.tlsCertPath), key: await readTextFile(config.tlsKeyPath) }
    : undefined;
  let server: ServerHandle;
  try {
    server = await serve({
      fetch: app.fetch,
      hostname: config.httpHost,
      port: config.httpPort,
      tls,
      websocket: {
        accept: responsesWebSocket(core, bodyPool),
        maxMessageBytes: Math.floor(config.httpBodyLimitMb * 1024 * 1024),
      },
      headerTimeoutMs: config.httpHeaderTimeoutSecs * 1000,
      maxConnections: config.httpMaxConnections,
    });
  } catch (error) {
    await store.close().catch(() => {});
    throw error;
  }
  let kserve: RunningKserve | undefined;
  if (config.kserveGrpcServer) {
    try {
      kserve = await startKserveServer(core, { config, logger });
    } catch (error) {
      await server.forceClose();
      await store.close().catch(() => {});
      throw error;
    }
  }
  // Load each new model's tokenizer as soon as it appears, not on its first request.
  core.models.onChange((names) => {
    for (const name of names) {
      const model = core.models.get(name);
      if (model?.card.model_input === 'Tokens') void core.preprocessors.get(model).catch(() => {});
    }
  });
  // /health says "not ready" until the first snapshot of discovery is in the registry.
  startModelWatcher({
    feed: discoveryFeed(createDiscovery(store, { logger })),
    registry: core.models,
    config,
    logger,
    metrics: core.metrics,
    signal: watching.signal,
  }).then(() => core.lifecycle.markReady(), (error: unknown) => {
    logger.error('initial model discovery failed', { error });
    core.lifecycle.markDiscoveryFailed(error instanceof Error ? error.message : String(error));
  });
  logger.info('listening', {
    url: `${tls ? 'https' : 'http'}://${config.httpHost}:${server.port}`,
    ...runtimeInfo(),
  });

  let closing: Promise<void> | undefined;
  const shutdown = (reason: string) =>
    closing ??= (async () => {
      const timeoutMs = config.httpGracefulShutdownTimeoutSecs * 1000;
      logger.info('shutdown started: draining in-flight requests', {
        reason,
        timeout_ms: timeoutMs,
      });
      core.lifecycle.startDraining();
      let timer: ReturnType<typeof setTimeout> | undefined;
      const timedOut = new Promise<boolean>((resolve) => {
        timer = setTimeout(() => resolve(true), timeoutMs);
      });
      const drained = Promise.all([server.drain(), kserve?.drain()]);
      const late = await Promise.race([drained.then(() => false), timedOut]);
      clearTimeout(timer);
      if (late) {
        logger.warn('drain timeout reached: closing the remaining connections');
        await Promise.all([server.forceClose(), kserve?.forceClose()]);
      }
      watching.abort();
      await Promise.allSettled([
        core.plane.close(),
        core.preprocessors.close(),
        bodyPool?.close(),
        events?.close(),
        core.kv?.close(),
        core.responseStore?.close(),
        tracer?.close(),
      ]);
      await store.close().catch((error: unknown) =>
        logger.warn('discovery close failed', { error })
      );
      core.lifecycle.stop();
      logger.info('shutdown complete');
    })();
  return { core, server, kserve, shutdown };
}

/** The CLI path: start, then exit 0 once a signal's graceful shutdown has finished. */
export async function runFrontend(config: Config, options: FrontendOptions = {}): Promise<void> {
  const running = await startFrontend(config, options);
  onShutdownSignal((signal) => {
    void running.shutdown(signal).then(() => exit(0));
  });
}
