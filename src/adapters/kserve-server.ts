/**
 * The KServe v2 gRPC server (`--kserve-grpc-server`): `inference.GRPCInferenceService` from
 * `proto/grpc_predict_v2.proto` on `@grpc/grpc-js`, bound to the core's `KserveService`, plus the
 * side HTTP server on `--grpc-metrics-port` that serves `/metrics` from the frontend's registry.
 * grpc-js runs on `node:http2`, which Node, Bun and Deno all provide.
 */
import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import type { Config } from '../core/config.ts';
import type { Core } from '../core/core.ts';
import {
  createKserveService,
  type KserveCall,
  type KserveService,
} from '../core/api/kserve/service.ts';
import {
  grpcStatusOf,
  type ModelInferRequest,
  type ModelStreamInferResponse,
} from '../core/api/kserve/protocol.ts';
import type { Logger } from '../core/logger.ts';
import { serve, type ServerHandle } from '../runtime/serve.ts';
import { PortInUseError } from '../runtime/serve-types.ts';

export const PROTO_PATH = fileURLToPath(
  new URL('../../proto/grpc_predict_v2.proto', import.meta.url),
);

/** How `@grpc/proto-loader` hands messages over; `src/core/api/kserve/protocol.ts` relies on it. */
const LOADER_OPTIONS: protoLoader.Options = {
  keepCase: true,
  longs: Number,
  enums: String,
  defaults: true,
  oneofs: true,
};

const SERVICE = 'inference.GRPCInferenceService';

/** The service definition, for servers and for clients (`grpc.makeClientConstructor`). */
export function loadKserveDefinition(): grpc.ServiceDefinition {
  const definition = protoLoader.loadSync(PROTO_PATH, LOADER_OPTIONS);
  return definition[SERVICE] as grpc.ServiceDefinition;
}

export interface KserveServerOptions {
  config: Pick<Config, 'httpHost' | 'kserveGrpcPort' | 'grpcMetricsPort' | 'metricsPath'>;
  logger: Logger;
  /** @default '0.1.0' */
  version?: string;
}

export interface RunningKserve {
  /** The gRPC port actually bound. */
  readonly port: number;
  /** The metrics port actually bound. */
  readonly metricsPort: number;
  /** Stops taking calls and resolves when the calls in flight have finished. */
  drain(): Promise<void>;
  /** Ends every call now. */
  forceClose(): Promise<void>;
}

const REQUEST_ID = /^[\x21-\x7e]{1,128}$/;

function callOf(
  core: Pick<Core, 'newId'>,
  metadata: grpc.Metadata,
  signal: AbortSignal,
): KserveCall {
  const given = metadata.get('x-request-id')[0];
  const requestId = typeof given === 'string' && REQUEST_ID.test(given) ? given : core.newId();
  const headers: Record<string, string> = { 'x-request-id': requestId };
  for (const name of ['traceparent', 'tracestate']) {
    const value = metadata.get(name)[0];
    if (typeof value === 'string') headers[name] = value;
  }
  return { requestId, signal, headers };
}

function statusOf(error: unknown): Partial<grpc.StatusObject> {
  const { code, message } = grpcStatusOf(error);
  return { code: code as grpc.status, details: message };
}

function portInUse(port: number, flag: string, cause: unknown): PortInUseError {
  const error = new PortInUseError(port, { cause });
  error.message = `port ${port} already in use. Use ${flag} to choose another`;
  return error;
}

/** Open `ModelStreamInfer` calls learn of a drain through this, to end once idle. */
interface DrainState {
  draining: boolean;
  readonly wakers: Set<() => void>;
}

function implementation(
  core: Pick<Core, 'newId'>,
  service: KserveService,
  options: { logger: Logger; drain: DrainState },
): grpc.UntypedServiceImplementation {
  const { logger, drain } = options;
  const unary = <Req, Res>(
    name: string,
    answer: (request: Req, call: KserveCall) => Res | Promise<Res>,
  ): grpc.handleUnaryCall<Req, Res> =>
  (call, callback) => {
    const controller = new AbortController();
    call.on('cancelled', () => controller.abort());
    const context = callOf(core, call.metadata, controller.signal);
    Promise.resolve()
      .then(() => answer(call.request, context))
      .then((response) => callback(null, response), (error: unknown) => {
        const status = statusOf(error);
        if (status.code === grpc.status.INTERNAL) {
          logger.error('KServe call failed', { rpc: name, request_id: context.requestId, error });
        }
        callback(status);
      });
  };
  type Named = { name: string; version?: string };
  const streamInfer: grpc.handleBidiStreamingCall<ModelInferRequest, ModelStreamInferResponse> = (
    call,
  ) => {
    const controller = new AbortController();
    const { signal } = controller;
    call.on('cancelled', () => controller.abort());
    call.on('error', () => controller.abort());
    const write = (response: ModelStreamInferResponse) =>
      new Promise<void>((resolve) => {
        if (call.write(response) || signal.aborted) return resolve();
        const done = () => {
          signal.removeEventListener('abort', done);
          call.off('drain', done);
          resolve();
        };
        call.once('drain', done);
        signal.addEventListener('abort', done, { once: true });
      });
    // One request at a time, in order: each one's responses before the next one starts.
    const pending: ModelInferRequest[] = [];
    let ended = false;
    let wake: (() => void) | undefined;
    const notify = () => {
      wake?.();
      wake = undefined;
    };
    call.on('data', (request: ModelInferRequest) => {
      pending.push(request);
      notify();
    });
    call.on('end', () => {
      ended = true;
      notify();
    });
    signal.addEventListener('abort', notify, { once: true });
    drain.wakers.add(notify);
    // Requests already received are answered; an idle stream ends (OK) once a drain starts.
    async function* requests(): AsyncGenerator<ModelInferRequest> {
      while (!signal.aborted) {
        const next = pending.shift();
        if (next) {
          yield next;
          continue;
        }
        if (ended || drain.draining) return;
        await new Promise<void>((resolve) => wake = resolve);
      }
    }
    void (async () => {
      try {
        for await (const request of requests()) {
          const context = callOf(core, call.metadata, signal);
          for await (const response of service.streamInfer(request, context)) {
            if (signal.aborted) break;
            await write(response);
          }
        }
        if (!signal.aborted) call.end();
      } catch (error) {
        if (signal.aborted) return;
        logger.error('KServe stream failed', { rpc: 'ModelStreamInfer', error });
        call.emit('error', statusOf(error));
      } finally {
        drain.wakers.delete(notify);
      }
    })();
  };
  return {
    ServerLive: unary('ServerLive', () => ({ live: service.serverLive() })),
    ServerReady: unary('ServerReady', () => ({ ready: service.serverReady() })),
    ModelReady: unary<Named, { ready: boolean }>('ModelReady', (r) => ({
      ready: service.modelReady(r.name, r.version),
    })),
    ServerMetadata: unary('ServerMetadata', () => service.serverMetadata()),
    ModelMetadata: unary<Named, unknown>(
      'ModelMetadata',
      (r) => service.modelMetadata(r.name, r.version),
    ),
    ModelConfig: unary<Named, unknown>(
      'ModelConfig',
      (r) => service.modelConfig(r.name, r.version),
    ),
    ModelInfer: unary<ModelInferRequest, unknown>('ModelInfer', (r, c) => service.infer(r, c)),
    ModelStreamInfer: streamInfer,
  };
}

/**
 * Binds the gRPC server and its metrics server; both are up when this resolves. Takes the whole
 * `Core`: the service runs the completions pipeline (`createKserveService`), the metrics server
 * renders the registry.
 */
export async function startKserveServer(
  core: Core,
  options: KserveServerOptions,
): Promise<RunningKserve> {
  const { config, logger } = options;
  const service = createKserveService(core, { version: options.version });
  const server = new grpc.Server();
  const drain: DrainState = { draining: false, wakers: new Set() };
  server.addService(loadKserveDefinition(), implementation(core, service, { logger, drain }));
  const address = `${
    config.httpHost.includes(':') ? `[${config.httpHost}]` : config.httpHost
  }:${config.kserveGrpcPort}`;
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync(address, grpc.ServerCredentials.createInsecure(), (error, bound) => {
      if (!error) return resolve(bound);
      reject(
        /EADDRINUSE|address already in use/i.test(error.message)
          ? portInUse(config.kserveGrpcPort, '--kserve-grpc-port (DYN_KSERVE_GRPC_PORT)', error)
          : error,
      );
    })
  );
  const metricsPath = config.metricsPath;
  let metrics: ServerHandle;
  try {
    metrics = await serve({
      hostname: config.httpHost,
      port: config.grpcMetricsPort,
      fetch: async (request) => {
        if (new URL(request.url).pathname !== metricsPath) {
          return new Response('Not found\n', { status: 404 });
        }
        return new Response(await core.metrics.render(), {
          headers: { 'content-type': core.metrics.contentType },
        });
      },
    });
  } catch (error) {
    server.forceShutdown();
    throw error instanceof PortInUseError
      ? portInUse(config.grpcMetricsPort, '--grpc-metrics-port (DYN_GRPC_METRICS_PORT)', error)
      : error;
  }
  logger.info('KServe gRPC listening', {
    address: `${config.httpHost}:${port}`,
    metrics: `http://${config.httpHost}:${metrics.port}${metricsPath}`,
  });
  return {
    port,
    metricsPort: metrics.port,
    async drain() {
      drain.draining = true;
      for (const wake of drain.wakers) wake();
      await Promise.all([
        new Promise<void>((resolve) => server.tryShutdown(() => resolve())),
        metrics.drain(),
      ]);
    },
    async forceClose() {
      server.forceShutdown();
      await metrics.forceClose();
    },
  };
}
