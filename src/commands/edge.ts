/**
 * The edge profile: Switchboard as a web-standard `{ fetch }` handler for serverless hosts
 * (Deno Deploy, Cloudflare Workers, `deno serve`), with no argv, file system, sockets, threads or
 * long-lived background work. Configuration comes from an object and/or environment bindings
 * (the same `DYN_*` variables as the CLI; the object wins). Only web APIs run on the request path:
 *
 * - discovery: etcd's v3 JSON gateway, one range read of `v1/mdc` and `v1/instances` when a
 *   request finds the isolate's snapshot older than `SWITCHBOARD_DISCOVERY_MAX_AGE_MS`
 *   (default 2000), diffed into the model registry;
 * - request plane: `http` over `fetch` (streaming, cancellation), plus plain OpenAI servers;
 * - tokenizer and chat template: fetched from the URLs of the model card, or of
 *   `DYN_MODEL_PATH=<http(s) URL>`, once per isolate, run inline;
 * - metrics: a text-exposition registry per isolate at `/metrics`.
 *
 * What cannot work there is refused when the handler is built, naming the alternative
 * (`EdgeConfigError`). Precise KV routing needs an `events` port (NATS over WebSocket) that the
 * host lets live between requests: `deploy/deno/main.ts` passes one, Workers cannot.
 *
 * This module touches no runtime API: the Deno entry passes `Deno.env`, the Workers entry the
 * bindings it receives with each request.
 */
import { createEtcdReader } from '../adapters/discovery/etcd.ts';
import { createHttpPlaneClient } from '../adapters/plane/http.ts';
import { createOpenAIPlaneClient } from '../adapters/plane/openai.ts';
import { createHttpPreprocessorSource } from '../adapters/preprocessors-http.ts';
import { type Config, type ConfigKey, OPTIONS, resolveConfig } from '../core/config.ts';
import type { Core } from '../core/core.ts';
import type { DiscoveryPoller } from '../core/discovery/poll.ts';
import type { EventPlane } from '../core/events/types.ts';
import { createJsonLogger, type Logger, type LogLevel } from '../core/logger.ts';
import { PlaneError } from '../core/plane/errors.ts';
import type { RequestPlaneClient } from '../core/plane/types.ts';
import { createTextMetricFactory } from '../core/metrics/text-metrics.ts';
import type { RouteModule } from '../http/types.ts';
import { assembleFrontend } from './assemble.ts';

export type EdgeEnv = Readonly<Record<string, unknown>>;

export interface EdgeOptions {
  /** Environment bindings: `DYN_*`, `ETCD_ENDPOINTS`, `SWITCHBOARD_*`. Non-strings are ignored. @default {} */
  env?: EdgeEnv;
  /** Configuration by key (`{ routerMode: 'kv' }`); wins over `env`. @default {} */
  config?: Partial<Record<ConfigKey, string | number | boolean>>;
  /**
   * The event plane for precise KV routing (NATS over WebSocket), on hosts that keep an outbound
   * WebSocket open between requests. @default none: `--router-mode kv` needs `--no-router-kv-events`
   */
  events?: () => EventPlane;
  /** Where log lines go. @default console.error, level from SWITCHBOARD_LOG_LEVEL (info) */
  logger?: Logger;
  /** @default globalThis.fetch */
  fetch?: typeof fetch;
  /** Route modules to mount. @default the generated manifest */
  routes?: readonly RouteModule[];
}

/** The configuration asks for something the edge profile cannot do; the message says what instead. */
export class EdgeConfigError extends Error {
  readonly problems: readonly string[];
  constructor(problems: readonly string[]) {
    super(`Switchboard's edge profile cannot start:\n- ${problems.join('\n- ')}`);
    this.name = 'EdgeConfigError';
    this.problems = problems;
  }
}

export interface EdgeHandler {
  fetch(request: Request): Promise<Response>;
  readonly core: Core;
  readonly discovery: DiscoveryPoller;
  /** Ends the event plane subscription, if any, and closes the core's ports. */
  close(): Promise<void>;
}

const SOCKETS = 'raw TCP sockets do not exist on serverless hosts';

/** Every reason `config` cannot run on the edge profile, each naming the alternative. */
export function edgeProblems(
  config: Config,
  options: { hasEvents: boolean; env: Readonly<Record<string, string | undefined>> },
): string[] {
  const problems: string[] = [];
  if (config.discoveryBackend !== 'etcd') {
    problems.push(
      `--discovery-backend ${config.discoveryBackend}: the edge profile reads discovery from ` +
        `etcd's JSON gateway only; use --discovery-backend etcd with ETCD_ENDPOINTS`,
    );
  }
  if (config.requestPlane !== 'http') {
    problems.push(
      `--request-plane ${config.requestPlane}: ${
        config.requestPlane === 'tcp'
          ? SOCKETS
          : 'the NATS request plane needs a long-lived connection'
      }; run the workers with --request-plane http (DYN_REQUEST_PLANE=http)`,
    );
  }
  if (config.routerMode === 'kv' && config.routerKvEvents) {
    if (config.eventPlane === 'zmq') {
      problems.push(
        `--event-plane zmq: ZMQ needs raw sockets; use --no-router-kv-events (approximate KV ` +
          `routing) or NATS over WebSocket on a host that allows it (Deno Deploy)`,
      );
    } else if (!options.hasEvents) {
      problems.push(
        `--router-mode kv with KV events: this host gives the handler no event plane; use ` +
          `--no-router-kv-events (DYN_ROUTER_USE_KV_EVENTS=false) for approximate KV routing, or ` +
          `run deploy/deno/main.ts with NATS_WS_SERVER on a host that keeps outbound WebSockets`,
      );
    }
  }
  if (config.routerReplicaSync) {
    problems.push(
      '--router-replica-sync: isolates share no event plane; drop the flag (each isolate routes ' +
        'on its own state)',
    );
  }
  if (config.routerEventThreads > 1) {
    problems.push('--router-event-threads > 1: no threads on the edge; use 1');
  }
  if (config.dynPreprocessWorkers > 0) {
    problems.push('--dyn-preprocess-workers > 0: no worker threads on the edge; use 0 (inline)');
  }
  if (config.kserveGrpcServer) {
    problems.push('--kserve-grpc-server: gRPC needs a listening socket; use the CLI profile');
  }
  if (config.tlsCertPath || config.tlsKeyPath) {
    problems.push('--tls-cert-path/--tls-key-path: the host terminates TLS; drop both');
  }
  if (config.dumpConfigTo) {
    problems.push('--dump-config-to: no file system on the edge; drop it');
  }
  if (config.interactive) problems.push('--interactive: no terminal on the edge; use the CLI');
  if (config.responsesStore === 'nats') {
    problems.push(
      '--responses-store nats: the NATS key-value store needs a TCP connection the edge does not ' +
        'have; use mem (responses kept per isolate) or none',
    );
  }
  if (config.modelPath && !/^https?:\/\//i.test(config.modelPath)) {
    problems.push(
      `--model-path "${config.modelPath}": no file system on the edge; give an http(s) URL ` +
        'of a directory serving tokenizer.json and tokenizer_config.json',
    );
  }
  const thresholds = config.activeDecodeBlocksThreshold !== undefined ||
    config.activePrefillTokensThreshold !== undefined ||
    config.activePrefillTokensThresholdFrac !== undefined;
  if (thresholds && !options.hasEvents && config.routerMode !== 'kv') {
    problems.push(
      '--active-*-threshold*: load shedding reads worker load from the event plane, which this ' +
        'host does not give the handler; drop the thresholds or use --router-mode kv',
    );
  }
  return problems;
}

/** String-valued bindings only (Workers also bind KV namespaces, services and secrets objects). */
function stringsOf(env: EdgeEnv): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(env)) if (typeof v === 'string') out[k] = v;
  return out;
}

/** Resolves the edge configuration: `config` by key over `env`, and `http` as the request plane. */
export function resolveEdgeConfig(options: Pick<EdgeOptions, 'env' | 'config'>): {
  config: Config;
  env: Record<string, string>;
  warnings: string[];
} {
  const env = stringsOf(options.env ?? {});
  const merged: Record<string, string | undefined> = { ...env };
  // The edge can only reach http workers, so that is its default.
  if (!OPTIONS.find((o) => o.key === 'requestPlane')?.env.some((name) => env[name])) {
    merged.DYN_REQUEST_PLANE = 'http';
  }
  // No threads on the edge: preprocessing runs inline unless the operator asked otherwise.
  if (!env.DYN_PREPROCESS_WORKERS) merged.DYN_PREPROCESS_WORKERS = '0';
  for (const [key, value] of Object.entries(options.config ?? {})) {
    const option = OPTIONS.find((o) => o.key === key);
    if (!option) throw new EdgeConfigError([`Unknown configuration key "${key}"`]);
    for (const name of option.env) delete merged[name];
    merged[option.env[0] as string] = String(value);
  }
  const result = resolveConfig({ argv: [], env: merged });
  if (!result.ok) throw new EdgeConfigError(result.errors);
  return { config: result.config, env, warnings: result.warnings };
}

const LEVELS = new Set(['debug', 'info', 'warn', 'error']);

/** Builds the app, its core and the discovery poller; throws `EdgeConfigError` when refused. */
export function createEdgeHandler(options: EdgeOptions = {}): EdgeHandler {
  const { config, env, warnings } = resolveEdgeConfig(options);
  const level = env.SWITCHBOARD_LOG_LEVEL;
  const logger = options.logger ?? createJsonLogger({
    write: (line) => console.error(line.trimEnd()),
    level: level && LEVELS.has(level) ? level as LogLevel : 'info',
  });
  for (const warning of warnings) logger.warn(warning);
  const problems = edgeProblems(config, { hasEvents: options.events !== undefined, env });
  if (problems.length > 0) throw new EdgeConfigError(problems);

  const doFetch = options.fetch ?? ((input, init) => fetch(input, init));
  const http = createHttpPlaneClient({
    fetch: doFetch,
    ackTimeoutMs: config.workerHandshakeTimeoutSecs * 1000,
  });
  const openai = createOpenAIPlaneClient({ fetch: doFetch });
  const plane: RequestPlaneClient = {
    send(address, request, sendOptions) {
      if ('http' in address) return http.send(address, request, sendOptions);
      if ('openai' in address) return openai.send(address, request, sendOptions);
      return Promise.reject(
        new PlaneError(
          'cannot_connect',
          `The worker publishes ${JSON.stringify(address)}; the edge profile reaches workers ` +
            'only over --request-plane http',
        ),
      );
    },
    async close() {
      await Promise.allSettled([http.close(), openai.close()]);
    },
  };
  const maxAge = Number(env.SWITCHBOARD_DISCOVERY_MAX_AGE_MS ?? 2000);
  const { core, app, poller, close } = assembleFrontend(config, {
    ports: {
      logger,
      metrics: createTextMetricFactory(),
      plane,
      preprocessors: createHttpPreprocessorSource({ logger, fetch: doFetch }),
    },
    routes: options.routes,
    ...(options.events ? { events: options.events } : {}),
    discovery: {
      poll: createEtcdReader({
        endpoints: env.ETCD_ENDPOINTS ?? 'http://127.0.0.1:2379',
        fetch: doFetch,
      }),
      maxAgeMs: Number.isFinite(maxAge) && maxAge >= 0 ? maxAge : 2000,
    },
  });
  // A poll source always gives a poller.
  const discovery = poller as DiscoveryPoller;

  return {
    core,
    discovery,
    async fetch(request) {
      const path = new URL(request.url).pathname;
      if (path !== config.livePath) {
        try {
          await discovery.refresh();
          if (core.lifecycle.phase === 'starting') core.lifecycle.markReady();
        } catch (error) {
          // No snapshot yet: the readiness gate answers 503 until etcd is reachable.
          logger.error('discovery read failed', { error });
        }
      }
      return await app.fetch(request);
    },
    close,
  };
}

/**
 * The Workers-style module export: `fetch(request, env)` builds the handler from the bindings on
 * the first request of an isolate and reuses it. A refused configuration answers every request
 * with 500 and the reasons (and logs them once).
 */
let built: { handler?: EdgeHandler; error?: unknown } | undefined;
export default {
  async fetch(request: Request, env: EdgeEnv = {}): Promise<Response> {
    if (!built) {
      try {
        built = { handler: createEdgeHandler({ env }) };
      } catch (error) {
        console.error(String(error instanceof Error ? error.message : error));
        built = { error };
      }
    }
    if (built.handler) return await built.handler.fetch(request);
    const message = built.error instanceof Error ? built.error.message : String(built.error);
    return Response.json({
      error: { message, type: 'internal_server_error', param: null, code: 'edge_config' },
    }, { status: 500 });
  },
};
