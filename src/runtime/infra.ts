/**
 * Builds the infrastructure ports (discovery store, request plane, event plane) from the flags
 * the frontend and the workers share, and turns "etcd/NATS is not there" into one line that says
 * what was tried, which variable sets it, and how to run without it.
 */
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Config } from '../core/config.ts';
import type { KvStore } from '../core/discovery/types.ts';
import type { EventPlane } from '../core/events/types.ts';
import type { Logger } from '../core/logger.ts';
import type { RequestPlaneClient, RequestPlaneServer } from '../core/plane/types.ts';
import { createEtcdStore } from '../adapters/discovery/etcd.ts';
import { createFileStore } from '../adapters/discovery/file.ts';
import { createKubernetesStore, inClusterConfig } from '../adapters/discovery/kubernetes.ts';
import { createMemKvServer, createMemStore, type MemKvServer } from '../adapters/discovery/mem.ts';
import { createMemEventBus, type MemEventBus } from '../adapters/events/mem.ts';
import { createNatsEventPlane } from '../adapters/events/nats.ts';
import { createZmqEventPlane } from '../adapters/events/zmq.ts';
import { createHttpPlaneClient, createHttpPlaneServer } from '../adapters/plane/http.ts';
import { createNatsPlaneClient, createNatsPlaneServer } from '../adapters/plane/nats.ts';
import { createTcpPlaneClient, createTcpPlaneServer } from '../adapters/plane/tcp.ts';
import { createOpenAIPlaneClient } from '../adapters/plane/openai.ts';
import { PlaneError } from '../core/plane/errors.ts';
import { createNodeNetwork } from './net.ts';
import { natsFromEnv } from './nats-env.ts';
import {
  createSharedFileToucher,
  type SharedFileToucher,
} from '../adapters/threads/file-toucher.ts';
import { serve } from './serve.ts';
import { planeFetch } from './http-fetch-node.ts';

export type InfraConfig = Pick<Config, 'discoveryBackend' | 'requestPlane' | 'eventPlane'>;
export type Env = Readonly<Record<string, string | undefined>>;

/** Start-up could not reach a service it needs: the message is the whole story. */
export class InfraUnavailableError extends Error {
  constructor(message: string, options: { cause?: unknown } = {}) {
    super(message, options);
    this.name = 'InfraUnavailableError';
  }
}

/** A positive number of seconds from an env var, else undefined. */
function seconds(value: string | undefined): number | undefined {
  const n = Number(value);
  return value && Number.isFinite(n) && n > 0 ? n : undefined;
}

const EMBEDDED =
  'or run `switchboard demo` (frontend and simulated workers in one process, no servers)';

/** In-process backends shared by everything in this process (the demo, tests). */
export interface LocalBus {
  kv: MemKvServer;
  events: MemEventBus;
}

export function createLocalBus(): LocalBus {
  return { kv: createMemKvServer(), events: createMemEventBus() };
}

export interface PlaneClientOptions {
  /**
   * How long a worker has to acknowledge a request and to open its response stream
   * (`--worker-handshake-timeout-secs`). @default each transport's own (5000)
   */
  handshakeTimeoutMs?: number;
}

export interface InfraOptions {
  env: Env;
  logger: Logger;
  /** What `mem` discovery and in-process events use. @default a bus of this process alone */
  local?: LocalBus;
}

export function createInfra(config: InfraConfig, options: InfraOptions) {
  const { env, logger } = options;
  const local = options.local ?? createLocalBus();
  const nats = (() => {
    try {
      return natsFromEnv(env);
    } catch (error) {
      throw new InfraUnavailableError(`NATS settings: ${(error as Error).message}`, {
        cause: error,
      });
    }
  })();
  const natsServers = nats.servers;
  const natsOptions = { servers: natsServers, auth: nats.auth };
  const etcdEndpoints = env.ETCD_ENDPOINTS ?? 'http://127.0.0.1:2379';
  const network = createNodeNetwork();
  const host = env.DYN_TCP_RPC_HOST ?? '127.0.0.1';
  // The TCP response mux is on unless DYN_TCP_RESPONSE_MUX is 0/false/off (both sides).
  const responseMux = !/^(0|false|off|no)$/i.test(env.DYN_TCP_RESPONSE_MUX ?? '');
  const fileTtl = seconds(env.DYN_FILE_KV_TTL_SECS);
  // The file store's own heartbeat interval: max(ttl / 3, 1 s).
  let shared: SharedFileToucher | undefined;
  const toucher = () =>
    shared ??= createSharedFileToucher(Math.max((fileTtl ?? 10) * 1000 / 3, 1000));
  const leaseTtl = seconds(env.ETCD_LEASE_TTL);

  return {
    /** A discovery store with this process's own lease / instance id. */
    async store(): Promise<KvStore> {
      switch (config.discoveryBackend) {
        case 'mem':
          return createMemStore({ server: local.kv });
        case 'file':
          return await createFileStore({
            root: env.DYN_FILE_KV ?? join(tmpdir(), 'dynamo_store_kv'),
            ...(fileTtl ? { ttlMs: fileTtl * 1000 } : {}),
            logger,
            toucher: toucher().forStore(),
          });
        case 'etcd':
          try {
            return await createEtcdStore({
              endpoints: etcdEndpoints,
              ...(leaseTtl ? { leaseTtlSecs: leaseTtl } : {}),
              logger,
            });
          } catch (error) {
            throw new InfraUnavailableError(
              `etcd is not reachable at ${etcdEndpoints} (set ETCD_ENDPOINTS to change it); ` +
                `to run on one machine without etcd use --discovery-backend file, ${EMBEDDED}`,
              { cause: error },
            );
          }
        case 'kubernetes': {
          const cluster = await inClusterConfig(env).catch((error: unknown) => {
            throw new InfraUnavailableError(
              `--discovery-backend kubernetes needs the in-cluster service account ` +
                `(KUBERNETES_SERVICE_HOST, POD_NAME): ${(error as Error).message}`,
              { cause: error },
            );
          });
          return await createKubernetesStore({ ...cluster, logger });
        }
      }
    },

    /**
     * A client for every transport a worker may publish: a worker's address decides how it is
     * called (so a frontend reaches tcp, http, nats and plain OpenAI workers alike); the NATS
     * connection opens only when a NATS worker is first called.
     */
    planeClient(options: PlaneClientOptions = {}): RequestPlaneClient {
      const handshake = options.handshakeTimeoutMs;
      const clients = {
        tcp: createTcpPlaneClient({
          network,
          host: env.DYN_TCP_RESPONSE_STREAM_HOST ?? host,
          responseMux,
          ...(handshake ? { ackTimeoutMs: handshake, callHomeTimeoutMs: handshake } : {}),
        }),
        http: createHttpPlaneClient({
          fetch: planeFetch(),
          ...(handshake ? { ackTimeoutMs: handshake } : {}),
        }),
        nats_tcp: createNatsPlaneClient({
          ...natsOptions,
          ...(handshake ? { ackTimeoutMs: handshake } : {}),
        }),
        openai: createOpenAIPlaneClient(),
      };
      const kinds = Object.keys(clients) as (keyof typeof clients)[];
      return {
        send(address, request, options) {
          const kind = kinds.find((k) => k in address);
          if (!kind) {
            return Promise.reject(
              new PlaneError('protocol', `Unknown transport ${JSON.stringify(address)}`),
            );
          }
          return clients[kind].send(address, request, options);
        },
        async close() {
          await Promise.allSettled(Object.values(clients).map((c) => c.close()));
        },
      };
    },

    planeServer(): RequestPlaneServer {
      switch (config.requestPlane) {
        case 'tcp':
          return createTcpPlaneServer({ network, host, logger, responseMux });
        case 'http':
          return createHttpPlaneServer({ serve, host: env.DYN_HTTP_RPC_HOST ?? host });
        case 'nats':
          return createNatsPlaneServer(natsOptions);
      }
    },

    /**
     * The event plane; `mem` discovery keeps events in process too. ZMQ publishers advertise
     * their sockets in discovery, so `zmq` needs the process's `store` (closed by the caller).
     */
    events(store?: KvStore): EventPlane {
      if (config.discoveryBackend === 'mem') return local.events.plane();
      if (config.eventPlane === 'zmq') {
        if (!store) throw new Error('the zmq event plane needs the discovery store');
        const bindHost = env.DYN_EVENT_PLANE_HOST ?? host;
        return createZmqEventPlane({
          store,
          network,
          host: bindHost,
          advertiseHost: bindHost === '0.0.0.0' ? '127.0.0.1' : bindHost,
          onError: (error) => logger.warn('event plane error', { error }),
        });
      }
      return createNatsEventPlane({
        ...natsOptions,
        onError: (error) => logger.warn('event plane error', { error }),
      });
    },

    /**
     * The event plane for a worker process. On `file` (or `mem`) discovery NATS is optional for a
     * worker: when it is not reachable (and the request plane is not NATS) the worker runs with
     * its events off and says so once, since a round-robin frontend consumes none of them. On
     * etcd or kubernetes discovery (a multi-machine fleet) an unreachable NATS stays fatal.
     */
    async workerEvents(): Promise<(store: KvStore) => EventPlane> {
      try {
        await this.checkNats();
      } catch (error) {
        const optional = config.discoveryBackend === 'file' && config.requestPlane !== 'nats' &&
          error instanceof InfraUnavailableError;
        if (!optional) throw error;
        logger.warn(
          `NATS is not reachable at ${natsServers.join(', ')}: KV events and load reports are ` +
            'off (a frontend with --router-mode kv or a busy threshold needs them: start ' +
            'nats-server, set NATS_SERVER, or use --event-plane zmq on every process)',
        );
        return () => createOffEventPlane();
      }
      return (store) => this.events(store);
    },

    /** Fails fast with a clear message when NATS is needed but not reachable. */
    async checkNats(needs?: string): Promise<void> {
      const needsNats = config.requestPlane === 'nats' ||
        (config.discoveryBackend !== 'mem' && config.eventPlane === 'nats');
      if (!needsNats) return;
      const probe = createNatsEventPlane({ ...natsOptions, onError: () => {} });
      try {
        await Promise.race([
          probe.publish('switchboard.probe', null).then(() => probe.flush()),
          new Promise((_, reject) =>
            setTimeout(() => reject(new Error('timed out after 3 s')), 3000)
          ),
        ]);
      } catch (error) {
        throw new InfraUnavailableError(
          `${needs ? `${needs}, but ` : ''}NATS is not reachable at ${natsServers.join(', ')} ` +
            `(from ${nats.describe}: start nats-server there, or set NATS_SERVER, e.g. ` +
            `nats://host:4222, or NATS_WS_SERVER to change it; --event-plane zmq carries events ` +
            `without NATS): ${(error as Error).message}; ${EMBEDDED}`,
          { cause: error },
        );
      } finally {
        await probe.close().catch(() => {});
      }
    },
  };
}

export type Infra = ReturnType<typeof createInfra>;

/** An event plane that carries nothing: publishing succeeds and goes nowhere. */
export function createOffEventPlane(): EventPlane {
  return {
    publish: () => Promise.resolve(),
    subscribe: () => () => {},
    close: () => Promise.resolve(),
  };
}
