/**
 * Starts the frontend from a resolved configuration: opens the infrastructure (discovery store,
 * request and event planes, threads), hands it to `assembleFrontend()` (core, event wiring,
 * discovery, app), serves HTTP(S) and KServe gRPC, and shuts down gracefully on SIGTERM/SIGINT.
 */
import type { Config } from '../core/config.ts';
import type { Core } from '../core/core.ts';
import { createJsonLogger, type Logger } from '../core/logger.ts';
import { createPromMetricFactory } from '../adapters/prom-metrics.ts';
import { metricBucketsFromEnv } from '../core/metrics/metrics.ts';
import { createOtlpHttpExporter, otlpOptionsFromEnv } from '../adapters/otlp-http.ts';
import { createBodyPool } from '../adapters/threads/body-pool.ts';
import { responsesWebSocket } from '../http/responses-ws.ts';
import type { RouteModule } from '../http/types.ts';
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
import type { EventPlane } from '../core/events/types.ts';
import { subjectSegment } from '../worker/runtime.ts';
import { createKvEventSink } from '../adapters/threads/kv-event-pool.ts';
import { type RunningKserve, startKserveServer } from '../adapters/kserve-server.ts';
import { createNatsResponseStore, natsTcpServers } from '../adapters/responses-store-nats.ts';
import { assembleFrontend, eventPlaneNeeds } from './assemble.ts';

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
  const responseStore = config.responsesStore === 'nats'
    ? await createNatsResponseStore({
      servers: natsTcpServers(options.env?.NATS_SERVER),
      bucket: config.responsesStoreBucket,
      ttlMs: config.responsesStoreTtlSecs * 1000,
      maxBytes: Math.floor(config.responsesStoreMaxMb * 1024 * 1024),
    })
    : undefined;
  const store = await infra.store();
  const needs = eventPlaneNeeds(config);
  if (needs) {
    try {
      await infra.checkNats(needs);
    } catch (error) {
      await store.close().catch(() => {});
      throw error;
    }
  }
  const bodyPool = config.httpBodyThreadMb > 0 ? createBodyPool() : undefined;
  let events: () => EventPlane | undefined = () => undefined;
  const assembled = assembleFrontend(config, {
    ports: {
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
        events()?.publish(subject, event).catch((error: unknown) =>
          logger.debug('replica sync publish failed', { error })
        );
      },
    },
    routes: options.routes,
    app: { assets: swaggerUiAssets(), bodyParser: bodyPool },
    events: () => infra.events(store),
    checkEvents: (needs) => infra.checkNats(needs),
    discovery: { watch: store },
    preloadTokenizers: true,
  });
  events = assembled.events;
  const { core, app } = assembled;
  /** Closes what start-up opened, when a later step of it fails. */
  const abandon = async () => {
    await Promise.allSettled([assembled.close(), bodyPool?.close(), tracer?.close()]);
    await store.close().catch(() => {});
  };
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
    await abandon();
    throw error;
  }
  let kserve: RunningKserve | undefined;
  if (config.kserveGrpcServer) {
    try {
      kserve = await startKserveServer(core, { config, logger });
    } catch (error) {
      await server.forceClose();
      await abandon();
      throw error;
    }
  }
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
      await Promise.allSettled([assembled.close(), bodyPool?.close(), tracer?.close()]);
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
