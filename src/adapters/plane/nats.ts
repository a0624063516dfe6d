/**
 * The NATS request plane over TCP (`nats://`, `tls://`) or WebSocket (`ws://`, `wss://`; Node 20
 * needs `--experimental-websocket` for those); see `nats-connect.ts`.
 * The request is Dynamo's (`egress/nats_client.rs`, `ingress/push_endpoint.rs`): the worker
 * subscribes to its instance subject `{ns}_{component}.{endpoint}-{instance_id:x}` (published as
 * `{"nats_tcp": subject}`), the frontend publishes the TwoPart request there with a reply inbox and
 * the propagated headers as NATS headers. The worker answers at once on the inbox with an empty
 * payload (the ACK) or a refusal text ("Server overloaded: ...").
 *
 * The responses are Switchboard's own: instead of calling home over TCP, the worker publishes on
 * the same inbox the frames a call-home socket would carry (prologue, items, completion marker),
 * one TwoPart frame per message. `connection_info` is `{"transport":"nats_stream","info":
 * "{\"control\":<subject>,\"liveness\":<subject>}"}`:
 *
 * - `control`: the worker subscribes to it for this request; the frontend publishes `stop` / `kill`
 *   there, and `ping` requests that the worker answers;
 * - `liveness`: the frontend answers requests there while it still wants the stream.
 *
 * NATS tells nobody when a peer dies, so each side probes the other: the frontend pings `control`
 * after `livenessIntervalMs` without a message ("no responders" = the worker is gone =
 * `disconnected`); the worker pings `liveness` every `livenessIntervalMs` ("no responders" = the
 * frontend is gone = the handler is aborted).
 */
import {
  createInbox,
  Empty,
  headers as natsHeaders,
  type Msg,
  type NatsConnection,
  type Subscription,
} from '@nats-io/nats-core';
import type { EndpointId, TransportAddress } from '../../core/discovery/types.ts';
import { type Deferred, deferred, errorMessage, raceAbort, waitFor } from './wire/async.ts';
import { PlaneError, STREAM_ENDED_EARLY } from '../../core/plane/errors.ts';
import { decodeRequest, encodeRequest, parseConnectionInfo } from './wire/messages.ts';
import { openResponseStream, pumpResponses } from './wire/response-stream.ts';
import { decodeTwoPart, MAX_MESSAGE_SIZE, type TwoPartMessage } from './wire/two-part.ts';
import type {
  EndpointHandler,
  PlaneRequest,
  PlaneSendOptions,
  RequestPlaneClient,
  RequestPlaneServer,
} from '../../core/plane/types.ts';
import { cancelled, refusalError, refusals, textDecoder, textEncoder } from './_shared.ts';
import { DEFAULT_NATS_SERVER, isNoResponders, type NatsAuth, openNats } from './nats-connect.ts';

export { DEFAULT_NATS_SERVER, type NatsAuth, natsServers } from './nats-connect.ts';

/** Dynamo's instance subject: `slug({ns}_{component}).{endpoint}-{instance_id:x}`. */
export function natsInstanceSubject(endpoint: EndpointId, instanceId: string): string {
  const slug = `${endpoint.namespace}_${endpoint.component}`.toLowerCase()
    .replace(/[^a-z0-9_-]/g, '_');
  return `${slug}.${endpoint.endpoint}-${instanceId}`;
}

export interface NatsConnectionOptions {
  /** NATS server URL(s), `nats://`/`tls://` (TCP) or `ws://`/`wss://`; see `natsServers()`. @default DEFAULT_NATS_SERVER */
  servers?: string | string[];
  /** Credentials and TLS files. @default none */
  auth?: NatsAuth;
  /** An open connection to share; the adapter then never closes it. @default a connection of its own */
  connection?: NatsConnection;
  /** Connection name shown by the server. @default 'switchboard' */
  name?: string;
  /**
   * Wait between attempts to reconnect after the connection drops; attempts never stop, so a
   * restarted server is found again however long it was gone.
   * @default 500
   */
  reconnectWaitMs?: number;
  /**
   * Interval of the client's pings: two unanswered ones (a frozen server, a silent network
   * partition) count as a dropped connection.
   * @default 10000
   */
  pingIntervalMs?: number;
}

/**
 * A lazily opened NATS connection that `close()` closes only if it opened it. The connection
 * reconnects on its own (the client re-sends its subscriptions, but discards whatever was published
 * while it was down); `onDisconnect` listeners hear each drop and `ready()` waits for the
 * reconnect. A connection found closed is replaced by a new one on the next `get()`.
 */
export function natsConnector(options: NatsConnectionOptions): {
  get(): Promise<NatsConnection>;
  /** Calls `listener` each time the connection drops, until the returned function is called. */
  onDisconnect(listener: () => void): () => void;
  /** Calls `listener` each time the connection is back, until the returned function is called. */
  onReconnect(listener: () => void): () => void;
  /** True from a drop until the reconnect. */
  isDown(): boolean;
  /** Resolves at once while connected, else when the connection is back (or closed for good). */
  ready(): Promise<void>;
  /** When the connection last came back (`Date.now()`); 0 if it never dropped. */
  reconnectedAt(): number;
  close(): Promise<void>;
} {
  let opened: Promise<NatsConnection> | undefined;
  let current: NatsConnection | undefined;
  const listeners = new Set<() => void>();
  const reconnectListeners = new Set<() => void>();
  const watched = new WeakSet<NatsConnection>();
  let down: Deferred<void> | undefined;
  let reconnectedAt = 0;
  const up = () => {
    down?.resolve();
    down = undefined;
  };
  const watch = (nc: NatsConnection) => {
    if (watched.has(nc)) return;
    watched.add(nc);
    (async () => {
      for await (const status of nc.status()) {
        if (status.type === 'disconnect') {
          down ??= deferred<void>();
          for (const listener of [...listeners]) listener();
        } else if (status.type === 'reconnect') {
          reconnectedAt = Date.now();
          up();
          for (const listener of [...reconnectListeners]) listener();
        }
      }
    })().catch(() => {}).finally(up);
  };
  return {
    get() {
      if (options.connection) {
        watch(options.connection);
        return Promise.resolve(options.connection);
      }
      if (current?.isClosed()) opened = current = undefined;
      if (!opened) {
        const servers = options.servers ?? DEFAULT_NATS_SERVER;
        const opening = openNats({
          servers: typeof servers === 'string' ? [servers] : servers,
          name: options.name ?? 'switchboard',
          reconnectWaitMs: options.reconnectWaitMs ?? 500,
          pingIntervalMs: options.pingIntervalMs ?? 10_000,
          ...(options.auth ? { auth: options.auth } : {}),
        });
        opened = opening;
        opening.then((nc) => {
          if (opened !== opening) return;
          current = nc;
          watch(nc);
        }, () => {
          if (opened === opening) opened = undefined;
        });
      }
      return opened;
    },
    onDisconnect(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    onReconnect(listener) {
      reconnectListeners.add(listener);
      return () => reconnectListeners.delete(listener);
    },
    isDown: () => down !== undefined,
    ready: () => down?.promise ?? Promise.resolve(),
    reconnectedAt: () => reconnectedAt,
    async close() {
      const opening = opened;
      opened = current = undefined;
      listeners.clear();
      reconnectListeners.clear();
      const connection = await opening?.catch(() => undefined);
      if (connection && !connection.isClosed()) await connection.close();
    },
  };
}

/** A push-to-pull queue of messages: subscription callbacks push, the stream reader pulls. */
function messageQueue() {
  const items: Msg[] = [];
  let waiter: ReturnType<typeof deferred<Msg>> | undefined;
  let failure: unknown;
  return {
    push(message: Msg) {
      if (failure !== undefined) return;
      if (waiter) {
        waiter.resolve(message);
        waiter = undefined;
      } else items.push(message);
    },
    fail(error: unknown) {
      if (failure !== undefined) return;
      failure = error;
      waiter?.reject(error);
      waiter = undefined;
    },
    next(): Promise<Msg> {
      const item = items.shift();
      if (item) return Promise.resolve(item);
      if (failure !== undefined) return Promise.reject(failure);
      waiter = deferred<Msg>();
      return waiter.promise;
    },
  };
}

/** After a reconnect, how soon a request that found no responders is sent again. */
const NO_RESPONDERS_RETRY_MS = 100;

interface NatsStreamInfo {
  control: string;
  liveness: string;
}

export interface NatsPlaneClientOptions extends NatsConnectionOptions {
  /** How long a worker has to ACK (`DYN_NATS_REQUEST_TIMEOUT_SECS`). @default 5000 */
  ackTimeoutMs?: number;
  /** Silence on a stream after which the worker is pinged. @default 2000 */
  livenessIntervalMs?: number;
  /** Largest response frame accepted. @default MAX_MESSAGE_SIZE (32 MiB) */
  maxMessageSize?: number;
}

export function createNatsPlaneClient(options: NatsPlaneClientOptions = {}): RequestPlaneClient {
  const connector = natsConnector(options);
  const ackTimeoutMs = options.ackTimeoutMs ?? 5000;
  const livenessIntervalMs = options.livenessIntervalMs ?? 2000;
  const maxSize = options.maxMessageSize ?? MAX_MESSAGE_SIZE;
  /** One per request in flight: fails it because the connection is gone. */
  const active = new Set<() => void>();
  const dropAll = () => {
    for (const drop of [...active]) drop();
  };
  // Frames in flight when the connection drops are lost (core NATS is at most once), and
  // nothing numbers them: a stream that outlived a drop could silently miss tokens. Fail every
  // open stream at once instead; the pipeline migrates or reports it, and new requests wait for
  // the reconnect.
  connector.onDisconnect(dropAll);
  let closed = false;

  let watched: NatsConnection | undefined;
  async function connection(signal: AbortSignal): Promise<NatsConnection> {
    let nc: NatsConnection;
    try {
      nc = await raceAbort(connector.get(), signal);
    } catch (error) {
      if (signal.aborted) throw signal.reason;
      throw new PlaneError('cannot_connect', `Cannot connect to NATS: ${errorMessage(error)}`, {
        cause: error,
      });
    }
    if (watched !== nc) {
      watched = nc;
      // Losing NATS for good ends every open stream.
      nc.closed().then(dropAll);
    }
    return nc;
  }

  return {
    async send(
      address: TransportAddress,
      request: PlaneRequest,
      { signal }: PlaneSendOptions,
    ): Promise<AsyncIterable<unknown>> {
      if (closed) throw new PlaneError('cannot_connect', 'The NATS request plane client is closed');
      if (!('nats_tcp' in address)) {
        throw new PlaneError('protocol', `Not a NATS address: ${JSON.stringify(address)}`);
      }
      signal.throwIfAborted();
      const nc = await connection(signal);
      const subject = address.nats_tcp;
      const inbox = createInbox();
      const info: NatsStreamInfo = { control: `${inbox}.control`, liveness: `${inbox}.liveness` };

      const queue = messageQueue();
      let lastMessage = Date.now();
      const subscriptions: Subscription[] = [
        nc.subscribe(inbox, {
          callback: (error, message) => {
            lastMessage = Date.now();
            if (error) queue.fail(error);
            else queue.push(message);
          },
        }),
        nc.subscribe(info.liveness, {
          callback: (_error, message) => {
            message.respond(Empty);
          },
        }),
      ];
      const fail = (error: PlaneError) => queue.fail(error);
      let acked = false;
      const drop = () =>
        fail(
          acked
            ? new PlaneError('disconnected', `${STREAM_ENDED_EARLY}: the NATS connection dropped`)
            // The worker has sent nothing yet: another one may take the request.
            : new PlaneError(
              'cannot_connect',
              `The NATS connection dropped before "${subject}" acknowledged the request`,
            ),
        );
      active.add(drop);
      let probe: ReturnType<typeof setInterval> | undefined;
      const cancel = (how: string) => {
        try {
          nc.publish(info.control, textEncoder.encode(how));
        } catch {
          // The connection is closed: the worker's liveness probe will notice.
        }
      };
      const release = () => {
        clearInterval(probe);
        active.delete(drop);
        for (const subscription of subscriptions) subscription.unsubscribe();
      };

      let handedOver = false;
      try {
        // Nothing is published while the connection is down: wait for the reconnect.
        await waitFor(connector.ready(), {
          signal,
          timeoutMs: ackTimeoutMs,
          onTimeout: () =>
            new PlaneError(
              'cannot_connect',
              `The NATS connection is down and did not come back within ${ackTimeoutMs} ms`,
            ),
        });
        const headers = natsHeaders();
        for (const [key, value] of Object.entries(request.headers)) headers.set(key, value);
        headers.set('request-id', request.id);
        const payload = encodeRequest({
          id: request.id,
          request_type: 'single_in',
          response_type: 'many_out',
          connection_info: { transport: 'nats_stream', info: JSON.stringify(info) },
        }, request.body);
        const deadline = Date.now() + ackTimeoutMs;
        for (;;) {
          nc.publish(subject, payload, { reply: inbox, headers });
          const ack = await waitFor(queue.next(), {
            signal,
            timeoutMs: Math.max(0, deadline - Date.now()),
            onTimeout: () =>
              new PlaneError(
                'cannot_connect',
                `Worker "${subject}" did not acknowledge the request within ${ackTimeoutMs} ms`,
              ),
          });
          if (isNoResponders(ack)) {
            // Just after a reconnect a live worker may not have re-subscribed yet: ask again
            // until the ACK deadline.
            const wait = Math.min(NO_RESPONDERS_RETRY_MS, deadline - Date.now());
            if (Date.now() - connector.reconnectedAt() < ackTimeoutMs && wait > 0) {
              await raceAbort(new Promise((resolve) => setTimeout(resolve, wait)), signal);
              continue;
            }
            throw new PlaneError('cannot_connect', `No worker listens on "${subject}"`);
          }
          if (ack.data.length > 0) throw refusalError(textDecoder.decode(ack.data));
          break;
        }
        acked = true;
        // From the ACK on the worker listens on `control`; "no responders" there while the
        // stream is silent means it is gone.
        probe = setInterval(() => {
          if (Date.now() - lastMessage < livenessIntervalMs) return;
          nc.request(info.control, textEncoder.encode('ping'), { timeout: livenessIntervalMs })
            .catch((error) => {
              if (isNoResponders(error)) fail(new PlaneError('disconnected', STREAM_ENDED_EARLY));
            });
        }, livenessIntervalMs);

        const frames: AsyncIterator<TwoPartMessage> = {
          async next() {
            const message = await queue.next();
            return { done: false, value: decodeTwoPart(message.data, { maxSize }) };
          },
        };
        handedOver = true;
        return await openResponseStream(frames, { signal, cancel, release });
      } catch (error) {
        if (error instanceof PlaneError || signal.aborted) throw error;
        const message = errorMessage(error);
        if (
          (error as { code?: string }).code === 'MAX_PAYLOAD_EXCEEDED' ||
          /max_payload/i.test(message)
        ) {
          throw new PlaneError('protocol', `Request too large for NATS: ${message}`, {
            cause: error,
          });
        }
        throw new PlaneError('cannot_connect', `Cannot send to "${subject}": ${message}`, {
          cause: error,
        });
      } finally {
        if (!handedOver) {
          cancel('kill');
          release();
        }
      }
    },

    async close(): Promise<void> {
      closed = true;
      dropAll();
      await connector.close();
    },
  };
}

export interface NatsPlaneServerOptions extends NatsConnectionOptions {
  /** Requests handled at once before new ones get "Server overloaded: ...". @default Infinity */
  maxInFlight?: number;
  /** How often the worker checks that the frontend still reads a stream. @default 5000 */
  livenessIntervalMs?: number;
  /** Largest request accepted. @default MAX_MESSAGE_SIZE (32 MiB) */
  maxMessageSize?: number;
}

export function createNatsPlaneServer(options: NatsPlaneServerOptions = {}): RequestPlaneServer {
  const connector = natsConnector(options);
  const maxInFlight = options.maxInFlight ?? Infinity;
  const livenessIntervalMs = options.livenessIntervalMs ?? 5000;
  const maxSize = options.maxMessageSize ?? MAX_MESSAGE_SIZE;
  const endpoints = new Map<string, Subscription>();
  const inFlight = new Map<AbortController, Promise<void>>();
  let closing = false;
  // What a handler sends while the connection is down may be lost, and the frontend fails its
  // side of every stream when it sees the drop: stop the handlers rather than run them for nobody.
  connector.onDisconnect(() => {
    for (const controller of inFlight.keys()) {
      controller.abort(cancelled('Request cancelled: the NATS connection dropped'));
    }
  });

  function onRequest(nc: NatsConnection, message: Msg, handler: EndpointHandler): void {
    const reply = message.reply;
    if (!reply) return;
    const refuse = (text: string) => nc.publish(reply, textEncoder.encode(text));
    if (closing) return refuse(refusals.unavailable());
    if (inFlight.size >= maxInFlight) return refuse(refusals.overloaded(inFlight.size));
    let decoded;
    let info;
    try {
      decoded = decodeRequest(message.data, { maxSize });
      const connectionInfo = decoded.control.connection_info;
      if (connectionInfo?.transport !== 'nats_stream') {
        return refuse('Decode error: "connection_info" must name the "nats_stream" transport');
      }
      info = parseConnectionInfo(connectionInfo) as Partial<NatsStreamInfo>;
    } catch (error) {
      return refuse(errorMessage(error));
    }
    const { control, liveness } = info;
    if (typeof control !== 'string' || typeof liveness !== 'string') {
      return refuse('Decode error: "connection_info" needs "control" and "liveness"');
    }
    const headers: Record<string, string> = {};
    for (const [key, values] of message.headers ?? []) {
      if (values[0] !== undefined) headers[key.toLowerCase()] = values[0];
    }

    const controller = new AbortController();
    const controlSubscription = nc.subscribe(control, {
      callback: (_error, m) => {
        const action = textDecoder.decode(m.data);
        if (m.reply) m.respond(Empty);
        if (action === 'stop' || action === 'kill') {
          controller.abort(cancelled(`Request cancelled by the frontend (${action})`));
        }
      },
    });
    // The control subscription is sent before the ACK, so the server has it when the ACK lands.
    nc.publish(reply, Empty);
    const probe = setInterval(() => {
      nc.request(liveness, Empty, { timeout: livenessIntervalMs }).catch((error) => {
        if (isNoResponders(error)) {
          controller.abort(cancelled('Request cancelled: the frontend went away'));
        }
      });
    }, livenessIntervalMs);
    const running = pumpResponses(handler, decoded.body, {
      id: decoded.control.id,
      headers,
      controller,
      send: (frame) => Promise.resolve(nc.publish(reply, frame)),
    }).then(() => {}, () => {}).finally(() => {
      clearInterval(probe);
      controlSubscription.unsubscribe();
      inFlight.delete(controller);
    });
    inFlight.set(controller, running);
  }

  return {
    async serve(endpoint, instanceId, handler): Promise<TransportAddress> {
      if (closing) throw new Error('The NATS request plane server is closed');
      const subject = natsInstanceSubject(endpoint, instanceId);
      if (endpoints.has(subject)) throw new Error(`Endpoint "${subject}" is already served`);
      const nc = await connector.get();
      endpoints.set(
        subject,
        nc.subscribe(subject, {
          callback: (error, message) => {
            if (!error) onRequest(nc, message, handler);
          },
        }),
      );
      await nc.flush();
      return { nats_tcp: subject };
    },

    async drain(): Promise<void> {
      // Unsubscribed, new requests find no responders; any already queued get "Server unavailable".
      closing = true;
      for (const subscription of endpoints.values()) subscription.unsubscribe();
      endpoints.clear();
      await Promise.allSettled(inFlight.values());
    },

    async close(): Promise<void> {
      closing = true;
      for (const subscription of endpoints.values()) subscription.unsubscribe();
      endpoints.clear();
      for (const controller of inFlight.keys()) {
        controller.abort(cancelled('The worker is shutting down'));
      }
      await Promise.allSettled(inFlight.values());
      await connector.close();
    },
  };
}
