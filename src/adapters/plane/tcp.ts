/**
 * The TCP request plane, Dynamo's classic protocol (`ingress/shared_tcp_endpoint.rs`,
 * `egress/tcp_client.rs`, `tcp/server.rs`, `tcp/client.rs`), over the `Network` port:
 *
 * - the worker runs one listener per process and routes request frames by path
 *   (`{instance_id:x}/{endpoint}`); it answers each with a `u32 len | bytes` frame in order
 *   (empty = ACK) before running the handler;
 * - the frontend keeps one pipelined connection per worker host and matches ACKs FIFO;
 * - responses "call home": the worker dials the frontend's stream listener named in the request's
 *   `connection_info` and sends handshake, prologue, items, `{"complete_final":true}`, then the
 *   `"sentinel"` control frame; the frontend may send `"stop"` / `"kill"` back.
 *
 * Newer: the response mux (`tcp_response_mux_v1`, ./tcp-mux.ts). A worker that speaks it says so
 * in its address, `host:port/{instance_id:x}/{endpoint}?response_transports=tcp_server,tcp_response_mux_v1`
 * (an old frontend sends that whole path back and the worker ignores the query); a frontend that
 * speaks it too asks for it in `connection_info`, and the worker's streams then share a few
 * persistent connections to that frontend. Either side on its own falls back to the call-home.
 */
import type { TransportAddress } from '../../core/discovery/types.ts';
import type { Logger } from '../../core/logger.ts';
import type { Connection, Listener, Network } from '../../core/net.ts';
import { deferred, errorMessage, raceAbort, waitFor } from './wire/async.ts';
import { PlaneError } from '../../core/plane/errors.ts';
import { readFrames } from './wire/frame-reader.ts';
import {
  decodeRequest,
  encodeControl,
  encodeHandshake,
  encodeRequest,
  parseConnectionInfo,
  parseResponseFrame,
  type TcpStreamConnectionInfo,
} from './wire/messages.ts';
import { openResponseStream, pumpResponses } from './wire/response-stream.ts';
import {
  encodeLengthPrefixed,
  encodeTcpRequest,
  lengthPrefixedDecoder,
  tcpRequestDecoder,
  type TcpRequestFrame,
} from './wire/tcp-frames.ts';
import { MAX_MESSAGE_SIZE, twoPartDecoder, type TwoPartMessage } from './wire/two-part.ts';
import type { FrameDecoder } from './wire/frame-reader.ts';
import { STREAM_ENDED_EARLY } from '../../core/plane/errors.ts';
import { BatchedWriter, createMuxFrontend, createMuxPool, MuxOutbound } from './tcp-mux.ts';
import {
  encodeMuxFrame,
  MUX_TRANSPORT,
  MUX_VERSION,
  muxBatchDecoder,
  type MuxConnectionInfo,
  type MuxFrame,
  type MuxHandshake,
  MuxKind,
  streamKey,
} from './tcp-mux-frames.ts';
import type {
  EndpointHandler,
  PlaneRequest,
  PlaneSendOptions,
  RequestPlaneClient,
  RequestPlaneServer,
} from '../../core/plane/types.ts';
import {
  cancelled,
  joinHostPort,
  refusalError,
  refusals,
  splitHostPort,
  textDecoder,
  textEncoder,
} from './_shared.ts';

/** The empty reply: the request was accepted. */
const ACK = new Uint8Array(4);

/** The classic call-home transport's name in `connection_info`. */
export const CALL_HOME_TRANSPORT = 'tcp_server';

/**
 * Splits a published `{"tcp": "host:port/{instance_id:x}/{endpoint}"}` address; the routing
 * path leaves out a `?response_transports=...` query.
 */
export function parseTcpAddress(address: string): { host: string; port: number; path: string } {
  const slash = address.indexOf('/');
  if (slash < 0) {
    throw new PlaneError('protocol', `Invalid TCP address "${address}": expected host:port/path`);
  }
  return { ...splitHostPort(address.slice(0, slash)), path: routingPath(address.slice(slash + 1)) };
}

/** A request path without its query: what the worker routes by. */
function routingPath(path: string): string {
  const query = path.indexOf('?');
  return query < 0 ? path : path.slice(0, query);
}

/**
 * The response transports a worker's address says it speaks; an address without the query is a
 * worker that only knows the classic call-home.
 */
export function responseTransports(address: string): string[] {
  const query = address.indexOf('?');
  if (query < 0) return [CALL_HOME_TRANSPORT];
  const value = new URLSearchParams(address.slice(query + 1)).get('response_transports');
  return value ? value.split(',') : [CALL_HOME_TRANSPORT];
}

/** The response mux's connection handshake, when `message` is one. */
function muxHandshake(message: TwoPartMessage): MuxHandshake | undefined {
  // Cheap test first: a classic handshake never starts with `{"kind":`.
  if (message.body.length > 0 || message.header[2] !== 0x6b /* k */) return undefined;
  try {
    const value = JSON.parse(textDecoder.decode(message.header)) as Partial<MuxHandshake>;
    if (value?.kind !== 'response_mux') return undefined;
    return {
      kind: 'response_mux',
      version: Number(value.version),
      frontend_server_id: String(value.frontend_server_id),
      connection_id: String(value.connection_id),
    };
  } catch {
    return undefined;
  }
}

/** Connects within `ms`, closing a connection that arrives too late. */
async function connectWithin(
  network: Network,
  host: string,
  port: number,
  ms: number,
): Promise<Connection> {
  const where = joinHostPort(host, port);
  const connecting = network.connect(host, port);
  try {
    return await waitFor(connecting, {
      timeoutMs: ms,
      onTimeout: () =>
        new PlaneError('cannot_connect', `Connecting to "${where}" timed out after ${ms} ms`),
    });
  } catch (error) {
    connecting.then((connection) => connection.close(), () => {});
    if (error instanceof PlaneError) throw error;
    throw new PlaneError('cannot_connect', `Cannot connect to "${where}": ${errorMessage(error)}`, {
      cause: error,
    });
  }
}

export interface TcpPlaneClientOptions {
  network: Network;
  /** Interface the call-home (response stream) listener binds (`DYN_TCP_RESPONSE_STREAM_HOST`). @default '127.0.0.1' */
  host?: string;
  /** Port of the call-home listener (`DYN_TCP_RESPONSE_STREAM_PORT`). @default 0 (any free port) */
  port?: number;
  /** Host workers dial back to; set it when `host` is `0.0.0.0`. @default host */
  advertiseHost?: string;
  /** How long a worker has to ACK a request (`DYN_TCP_REQUEST_TIMEOUT`). @default 5000 */
  ackTimeoutMs?: number;
  /** How long connecting to a worker may take (`DYN_TCP_CONNECT_TIMEOUT`). @default 5000 */
  connectTimeoutMs?: number;
  /** How long a worker has, after its ACK, to open the response stream. @default 5000 */
  callHomeTimeoutMs?: number;
  /** Largest frame accepted (`DYN_TCP_MAX_MESSAGE_SIZE`). @default MAX_MESSAGE_SIZE (32 MiB) */
  maxMessageSize?: number;
  /**
   * Use the response mux with workers that publish it (`DYN_TCP_RESPONSE_MUX`, `0` turns it
   * off); workers that do not are always called home classically. @default true
   */
  responseMux?: boolean;
}

interface WorkerLink {
  connection: Connection;
  /** Request frames of one event-loop turn go out in one write. */
  writer: BatchedWriter;
  /** One settle function per request sent and not yet acknowledged, oldest first. */
  pending: Array<(reply: Uint8Array | PlaneError) => void>;
}

interface CallHome {
  connection: Connection;
  frames: AsyncIterator<TwoPartMessage>;
}

export function createTcpPlaneClient(options: TcpPlaneClientOptions): RequestPlaneClient {
  const { network } = options;
  const host = options.host ?? '127.0.0.1';
  const advertiseHost = options.advertiseHost ?? host;
  const ackTimeoutMs = options.ackTimeoutMs ?? 5000;
  const connectTimeoutMs = options.connectTimeoutMs ?? 5000;
  const callHomeTimeoutMs = options.callHomeTimeoutMs ?? 5000;
  const maxSize = options.maxMessageSize ?? MAX_MESSAGE_SIZE;
  const useMux = options.responseMux ?? true;
  const mux = createMuxFrontend(crypto.randomUUID());
  const disconnected = () => new PlaneError('disconnected', STREAM_ENDED_EARLY);

  const links = new Map<string, Promise<WorkerLink>>();
  /** The links of `links` that are open: used without awaiting. */
  const openLinks = new Map<string, WorkerLink>();
  const waiting = new Map<string, (callHome: CallHome) => void>();
  const connections = new Set<Connection>();
  let listener: Promise<Listener> | undefined;
  /** `listener` once it listens. */
  let listening: Listener | undefined;
  let closed = false;

  const track = (connection: Connection) => {
    connections.add(connection);
    connection.closed.then(() => connections.delete(connection));
  };

  /**
   * A worker dialled back: read its handshake and hand the connection to the waiting request, or,
   * for a response mux handshake, serve it as a mux connection.
   */
  async function onCallHome(connection: Connection): Promise<void> {
    track(connection);
    // TwoPart frames until a mux handshake switches the decoder to mux batches.
    const twoPart = twoPartDecoder({ maxSize });
    let muxDecoder: FrameDecoder<MuxFrame[]> | undefined;
    const decoder: FrameDecoder<TwoPartMessage | MuxFrame[]> = {
      decode: (bytes) => (muxDecoder ?? twoPart).decode(bytes),
    };
    const frames = readFrames(connection.readable, decoder) as AsyncGenerator<TwoPartMessage>;
    try {
      const first = await waitFor(frames.next(), { timeoutMs: callHomeTimeoutMs });
      if (first.done) throw new Error('No handshake');
      const handshake = muxHandshake(first.value);
      if (handshake) {
        if (!useMux) throw new Error('The response mux is off');
        muxDecoder = muxBatchDecoder({ maxSize });
        const batches = frames as unknown as AsyncGenerator<MuxFrame[]>;
        await mux.adopt(connection, handshake, batches, disconnected);
        return;
      }
      const frame = parseResponseFrame(first.value);
      if (frame.kind !== 'handshake' || frame.streamType !== 'response') {
        throw new Error('Not a response stream');
      }
      const resolve = waiting.get(frame.subject);
      if (!resolve) throw new Error('Nobody waits for this stream');
      waiting.delete(frame.subject);
      resolve({ connection, frames });
    } catch {
      // Not ours, or the request was given up: closing it tells the worker to stop (kill).
      connection.close();
    }
  }

  function callHomeListener(): Promise<Listener> {
    if (!listener) {
      const starting = network.listen(host, options.port ?? 0, (c) => void onCallHome(c));
      listener = starting;
      starting.then((l) => {
        if (listener === starting) listening = l;
      }, () => {
        if (listener === starting) listener = undefined;
      });
    }
    return listener;
  }

  async function openLink(
    where: string,
    target: { host: string; port: number },
    onClosed: () => void,
  ): Promise<WorkerLink> {
    const connection = await connectWithin(network, target.host, target.port, connectTimeoutMs);
    track(connection);
    const link: WorkerLink = { connection, writer: new BatchedWriter(connection), pending: [] };
    void (async () => {
      try {
        for await (const reply of readFrames(connection.readable, lengthPrefixedDecoder())) {
          link.pending.shift()?.(reply);
        }
      } catch {
        // A broken connection fails its pending requests below.
      }
      onClosed();
      connection.close();
      for (const settle of link.pending.splice(0)) {
        settle(
          new PlaneError(
            'cannot_connect',
            `Connection to worker "${where}" closed before it acknowledged the request`,
          ),
        );
      }
    })();
    return link;
  }

  /** The shared, pipelined connection to the worker at `target`, opened on first use. */
  function link(target: { host: string; port: number }): Promise<WorkerLink> {
    const where = joinHostPort(target.host, target.port);
    const existing = links.get(where);
    if (existing) return existing;
    let opened: WorkerLink | undefined;
    const forget = () => {
      if (links.get(where) === created) links.delete(where);
      if (opened && openLinks.get(where) === opened) openLinks.delete(where);
    };
    const created = openLink(where, target, forget);
    links.set(where, created);
    created.then((link) => {
      // Unless it closed already.
      if (links.get(where) === created) openLinks.set(where, opened = link);
    }, forget);
    return created;
  }

  /** Writes the request frame and waits for its ACK (FIFO on the shared connection). */
  async function requestAck(
    target: { host: string; port: number },
    frame: TcpRequestFrame,
    signal: AbortSignal,
  ): Promise<void> {
    const where = joinHostPort(target.host, target.port);
    const { writer, pending } = openLinks.get(where) ?? await raceAbort(link(target), signal);
    const ack = deferred<Uint8Array>();
    // A failed write closes the connection, which fails every pending request.
    if (!writer.enqueue(encodeTcpRequest(frame))) {
      throw new PlaneError('cannot_connect', `Cannot send to worker "${where}": connection closed`);
    }
    pending.push((reply) => (reply instanceof PlaneError ? ack.reject(reply) : ack.resolve(reply)));
    const onTimeout = () =>
      new PlaneError(
        'cannot_connect',
        `Worker "${where}" did not acknowledge the request within ${ackTimeoutMs} ms`,
      );
    const reply = await waitFor(ack.promise, { signal, timeoutMs: ackTimeoutMs, onTimeout });
    if (reply.length > 0) throw refusalError(textDecoder.decode(reply));
  }

  /** `send()` over the response mux: the stream arrives on a shared worker connection. */
  async function sendMux(
    where: string,
    target: { host: string; port: number; path: string },
    listenerAddress: string,
    request: PlaneRequest,
    signal: AbortSignal,
  ): Promise<AsyncIterable<unknown>> {
    const streamId = crypto.randomUUID();
    const inbound = mux.register(streamKey(streamId));
    let handedOver = false;
    try {
      const info: MuxConnectionInfo = {
        address: listenerAddress,
        frontend_server_id: mux.serverId,
        stream_id: streamId,
        context: request.id,
        version: MUX_VERSION,
      };
      const payload = encodeRequest({
        id: request.id,
        request_type: 'single_in',
        response_type: 'many_out',
        connection_info: { transport: MUX_TRANSPORT, info: JSON.stringify(info) },
      }, request.body);
      const headers = { ...request.headers, 'request-id': request.id };
      await requestAck(target, { path: target.path, headers, payload }, signal);
      await waitFor(inbound.opened.promise, {
        signal,
        timeoutMs: callHomeTimeoutMs,
        onTimeout: () =>
          new PlaneError(
            'cannot_connect',
            `Worker "${where}" did not open its response stream within ${callHomeTimeoutMs} ms`,
          ),
      });
      handedOver = true;
      return await openResponseStream(inbound, {
        signal,
        cancel: (how) => inbound.cancel(how),
        release: () => inbound.release(),
        framesEndOnRelease: true,
      });
    } catch (error) {
      // A stream that failed before it opened is the worker's connection dying: migratable.
      if (error instanceof PlaneError || signal.aborted) throw error;
      throw new PlaneError('cannot_connect', `Worker "${where}" dropped the response stream`, {
        cause: error,
      });
    } finally {
      if (!handedOver) inbound.cancel('kill');
    }
  }

  return {
    async send(
      address: TransportAddress,
      request: PlaneRequest,
      { signal }: PlaneSendOptions,
    ): Promise<AsyncIterable<unknown>> {
      if (closed) throw new PlaneError('cannot_connect', 'The TCP request plane client is closed');
      if (!('tcp' in address)) {
        throw new PlaneError('protocol', `Not a TCP address: ${JSON.stringify(address)}`);
      }
      signal.throwIfAborted();
      const target = parseTcpAddress(address.tcp);
      const stream = listening ?? await raceAbort(callHomeListener(), signal);
      if (useMux && responseTransports(address.tcp).includes(MUX_TRANSPORT)) {
        return sendMux(
          address.tcp,
          target,
          joinHostPort(advertiseHost, stream.port),
          request,
          signal,
        );
      }

      const subject = crypto.randomUUID();
      const callHome = deferred<CallHome>();
      waiting.set(subject, callHome.resolve);
      let handedOver = false;
      try {
        const info: TcpStreamConnectionInfo = {
          address: joinHostPort(advertiseHost, stream.port),
          subject,
          context: request.id,
          stream_type: 'response',
        };
        const payload = encodeRequest({
          id: request.id,
          request_type: 'single_in',
          response_type: 'many_out',
          connection_info: { transport: 'tcp_server', info: JSON.stringify(info) },
        }, request.body);
        const headers = { ...request.headers, 'request-id': request.id };
        await requestAck(target, { path: target.path, headers, payload }, signal);

        const { connection, frames } = await waitFor(callHome.promise, {
          signal,
          timeoutMs: callHomeTimeoutMs,
          onTimeout: () =>
            new PlaneError(
              'cannot_connect',
              `Worker "${address.tcp}" did not open its response stream within ${callHomeTimeoutMs} ms`,
            ),
        });
        handedOver = true;
        return await openResponseStream(frames, {
          signal,
          cancel(how) {
            connection.write(encodeControl(how)).catch(() => {}).finally(() => connection.close());
          },
          release() {
            connection.close();
          },
        });
      } finally {
        waiting.delete(subject);
        if (!handedOver) callHome.promise.then(({ connection }) => connection.close(), () => {});
      }
    },

    async close(): Promise<void> {
      closed = true;
      waiting.clear();
      mux.close(disconnected());
      const started = listener;
      listener = undefined;
      listening = undefined;
      await started?.then((l) => l.close(), () => {});
      for (const connection of connections) connection.close();
      links.clear();
      openLinks.clear();
    },
  };
}

export interface TcpPlaneServerOptions {
  network: Network;
  /** Interface the listener binds (`DYN_TCP_RPC_HOST`). @default '127.0.0.1' */
  host?: string;
  /** Listener port (`DYN_TCP_RPC_PORT`). @default 0 (any free port) */
  port?: number;
  /** Host published in discovery; set it when `host` is `0.0.0.0`. @default host */
  advertiseHost?: string;
  /** Largest request accepted (`DYN_TCP_MAX_MESSAGE_SIZE`). @default MAX_MESSAGE_SIZE (32 MiB) */
  maxMessageSize?: number;
  /** Requests handled at once before new ones get "Server overloaded: ...". @default Infinity */
  maxInFlight?: number;
  /** How long dialling the frontend's response stream may take. @default 5000 */
  connectTimeoutMs?: number;
  /** How long to wait for the frontend to close a finished stream before closing it. @default 10000 */
  finTimeoutMs?: number;
  /** Where failures to call the frontend back are reported. @default none */
  logger?: Logger;
  /**
   * Speak the response mux too, and say so in the published address (`DYN_TCP_RESPONSE_MUX`,
   * `0` turns it off). @default true
   */
  responseMux?: boolean;
  /** Persistent response connections per frontend, for the mux. @default 4 */
  muxConnections?: number;
}

export function createTcpPlaneServer(options: TcpPlaneServerOptions): RequestPlaneServer {
  const { network } = options;
  const host = options.host ?? '127.0.0.1';
  const advertiseHost = options.advertiseHost ?? host;
  const maxSize = options.maxMessageSize ?? MAX_MESSAGE_SIZE;
  const maxInFlight = options.maxInFlight ?? Infinity;
  const connectTimeoutMs = options.connectTimeoutMs ?? 5000;
  const finTimeoutMs = options.finTimeoutMs ?? 10_000;
  const useMux = options.responseMux ?? true;
  const pool = createMuxPool({
    network,
    connect: (host, port) => connectWithin(network, host, port, connectTimeoutMs),
    connections: options.muxConnections ?? 4,
    readFrames: (connection) => {
      track(connection);
      return readFrames(connection.readable, muxBatchDecoder({ maxSize }));
    },
    cancelled,
  });

  const routes = new Map<string, EndpointHandler>();
  const connections = new Set<Connection>();
  const inFlight = new Map<AbortController, Promise<void>>();
  let listener: Promise<Listener> | undefined;
  let closing = false;

  const track = (connection: Connection) => {
    connections.add(connection);
    connection.closed.then(() => connections.delete(connection));
  };

  /** Runs one accepted request: call home, stream the handler's output, wait for the FIN. */
  async function respond(
    handler: EndpointHandler,
    request: { id: string; headers: Record<string, string>; body: unknown },
    info: { address: string; subject: string },
    controller: AbortController,
  ): Promise<void> {
    let connection: Connection;
    try {
      const { host, port } = splitHostPort(info.address);
      connection = await connectWithin(network, host, port, connectTimeoutMs);
    } catch (error) {
      options.logger?.warn('Cannot open the response stream to the frontend', {
        address: info.address,
        request_id: request.id,
        error,
      });
      return;
    }
    track(connection);
    let finished = false;
    // Frontend -> worker: "stop" / "kill"; a connection closed without either is a kill.
    void (async () => {
      let how = 'connection closed';
      try {
        for await (const message of readFrames(connection.readable, twoPartDecoder())) {
          const frame = parseResponseFrame(message);
          if (frame.kind === 'control' && frame.action !== 'sentinel') {
            how = frame.action;
            break;
          }
        }
      } catch {
        // A reset or garbage is a kill as well.
      }
      if (!finished) controller.abort(cancelled(`Request cancelled by the frontend (${how})`));
    })();
    try {
      if (controller.signal.aborted) return;
      await connection.write(encodeHandshake(info.subject));
      const outcome = await pumpResponses(handler, request.body, {
        id: request.id,
        headers: request.headers,
        controller,
        send: (frame) => connection.write(frame),
      });
      finished = outcome !== 'aborted';
      if (finished) {
        await connection.write(encodeControl('sentinel'));
        await waitFor(connection.closed, { timeoutMs: finTimeoutMs });
      }
    } catch {
      // The frontend went away (or never closed): nothing left to tell it.
    } finally {
      connection.close();
    }
  }

  /** Runs one accepted request over the response mux. */
  async function respondMux(
    handler: EndpointHandler,
    request: { id: string; headers: Record<string, string>; body: unknown },
    info: MuxConnectionInfo,
    controller: AbortController,
  ): Promise<void> {
    let stream: MuxOutbound;
    try {
      const { host, port } = splitHostPort(info.address);
      const link = await pool.acquire(host, port, info.frontend_server_id);
      stream = new MuxOutbound(streamKey(info.stream_id), link, controller);
      if (link.writer.closed) throw new Error('Connection to the frontend is closed');
    } catch (error) {
      options.logger?.warn('Cannot open the response stream to the frontend', {
        address: info.address,
        request_id: request.id,
        error,
      });
      return;
    }
    const { link } = stream;
    link.streams.set(stream.key, stream);
    try {
      if (controller.signal.aborted) return;
      link.writer.enqueue(encodeMuxFrame(MuxKind.Prologue, stream.key));
      const outcome = await pumpResponses(handler, request.body, {
        id: request.id,
        headers: request.headers,
        controller,
        send: stream.send,
        encoding: stream.encoding,
      });
      // Abandoned by this side (shutting down): the frontend must not wait for the end.
      if (outcome === 'aborted' && stream.cancelledBy === undefined) {
        link.writer.enqueue(encodeMuxFrame(MuxKind.Reset, stream.key));
      }
    } catch {
      // The frontend went away: nothing left to tell it.
    } finally {
      link.streams.delete(stream.key);
    }
  }

  /** Checks one request frame and starts it; returns the ACK text ('' = accepted). */
  function accept(frame: TcpRequestFrame): string {
    if (closing) return refusals.unavailable();
    const handler = routes.get(routingPath(frame.path));
    if (!handler) return refusals.unknownEndpoint(frame.path);
    if (inFlight.size >= maxInFlight) return refusals.overloaded(inFlight.size);
    let request;
    let info;
    try {
      request = decodeRequest(frame.payload, { maxSize });
      const connectionInfo = request.control.connection_info;
      if (useMux && connectionInfo?.transport === MUX_TRANSPORT) {
        return acceptMux(handler, frame, request, parseConnectionInfo(connectionInfo));
      }
      if (connectionInfo?.transport !== CALL_HOME_TRANSPORT) {
        return `Decode error: "connection_info" must name the "${CALL_HOME_TRANSPORT}" transport`;
      }
      info = parseConnectionInfo(connectionInfo);
    } catch (error) {
      return errorMessage(error);
    }
    const { address, subject, context, stream_type } = info as Partial<TcpStreamConnectionInfo>;
    if (typeof address !== 'string' || typeof subject !== 'string') {
      return 'Decode error: "connection_info" needs "address" and "subject"';
    }
    if (stream_type !== 'response' || context !== request.control.id) {
      return 'Decode error: "connection_info" is not a response stream of this request';
    }
    const controller = new AbortController();
    const headers = { ...frame.headers };
    const running = respond(handler, { id: request.control.id, headers, body: request.body }, {
      address,
      subject,
    }, controller).finally(() => inFlight.delete(controller));
    inFlight.set(controller, running);
    return '';
  }

  function acceptMux(
    handler: EndpointHandler,
    frame: TcpRequestFrame,
    request: { control: { id: string }; body: unknown },
    info: Record<string, unknown>,
  ): string {
    const { address, frontend_server_id, stream_id, context, version } = info;
    if (
      typeof address !== 'string' || typeof frontend_server_id !== 'string' ||
      typeof stream_id !== 'string' || !/^[0-9a-f]{32}$/i.test(stream_id.replaceAll('-', ''))
    ) {
      return 'Decode error: "connection_info" needs "address", "frontend_server_id" and a UUID "stream_id"';
    }
    if (version !== MUX_VERSION) {
      return `Decode error: response mux version ${String(version)} is not supported`;
    }
    if (context !== request.control.id) {
      return 'Decode error: "connection_info" is not a response stream of this request';
    }
    const controller = new AbortController();
    const running = respondMux(
      handler,
      { id: request.control.id, headers: { ...frame.headers }, body: request.body },
      { address, frontend_server_id, stream_id, context, version },
      controller,
    ).finally(() => inFlight.delete(controller));
    inFlight.set(controller, running);
    return '';
  }

  function onConnection(connection: Connection): void {
    track(connection);
    // The ACKs of one event-loop turn go out in one write.
    const writer = new BatchedWriter(connection);
    void (async () => {
      try {
        for await (const frame of readFrames(connection.readable, tcpRequestDecoder({ maxSize }))) {
          const reply = accept(frame);
          writer.enqueue(reply === '' ? ACK : encodeLengthPrefixed(textEncoder.encode(reply)));
          await writer.drained();
        }
      } catch (error) {
        // The framing is lost ("Request too large", bad headers): answer, then hang up.
        if (error instanceof PlaneError && error.kind === 'protocol') {
          writer.enqueue(encodeLengthPrefixed(textEncoder.encode(error.message)));
        }
      }
      await writer.flush();
      connection.close();
    })();
  }

  return {
    async serve(endpoint, instanceId, handler): Promise<TransportAddress> {
      if (closing) throw new Error('The TCP request plane server is closed');
      const path = `${instanceId}/${endpoint.endpoint}`;
      if (routes.has(path)) throw new Error(`Endpoint "${path}" is already served`);
      listener ??= network.listen(host, options.port ?? 0, onConnection);
      const { port } = await listener;
      routes.set(path, handler);
      const query = useMux ? `?response_transports=${CALL_HOME_TRANSPORT},${MUX_TRANSPORT}` : '';
      return { tcp: `${joinHostPort(advertiseHost, port)}/${path}${query}` };
    },

    async drain(): Promise<void> {
      closing = true;
      // New connections are refused; request frames on open ones get "Server unavailable".
      await listener?.then((l) => l.close(), () => {});
      await Promise.allSettled(inFlight.values());
    },

    async close(): Promise<void> {
      closing = true;
      await listener?.then((l) => l.close(), () => {});
      for (const controller of inFlight.keys()) {
        controller.abort(cancelled('The worker is shutting down'));
      }
      await pool.close();
      for (const connection of connections) connection.close();
      await Promise.allSettled(inFlight.values());
      routes.clear();
    },
  };
}
