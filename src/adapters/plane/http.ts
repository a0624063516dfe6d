/**
 * The HTTP request plane. The request is Dynamo's (`ingress/http_endpoint.rs`): `POST
 * {root}/{endpoint}` with a TwoPart body and the propagated headers as HTTP headers. The reply is
 * Switchboard's own: instead of `202 Accepted` plus a TCP call-home stream, the worker answers
 * `200` and streams the frames a call-home socket would carry, in the response body:
 *
 *     handshake {"subject":<request id>,"stream_type":"response"}   (sent at once: the ACK)
 *     prologue  {"error":null} | {"error":"..."}                    (once the first item is ready)
 *     items     {"data":<item>,"complete_final":false}
 *     marker    {"complete_final":true}
 *
 * each a TwoPart frame (self-delimiting, `u64 | u64 | u64 | header | body`). Refusals are plain
 * text: 404 "Unknown endpoint: ...", 503 "Server overloaded: ..." / "Server unavailable: ...",
 * 400 "Decode error: ...", 413 "Request too large: ...". Cancelling is closing the response: the
 * frontend aborts its fetch, the worker sees its body stream cancelled and aborts the handler.
 */
import type { TransportAddress } from '../../core/discovery/types.ts';
import { errorMessage, waitFor } from './wire/async.ts';
import { PlaneError } from '../../core/plane/errors.ts';
import { readFrames } from './wire/frame-reader.ts';
import { decodeRequest, encodeHandshake, encodeRequest } from './wire/messages.ts';
import { openResponseStream, pumpResponses } from './wire/response-stream.ts';
import { MAX_MESSAGE_SIZE, twoPartDecoder } from './wire/two-part.ts';
import type {
  EndpointHandler,
  PlaneRequest,
  PlaneSendOptions,
  RequestPlaneClient,
  RequestPlaneServer,
} from '../../core/plane/types.ts';
import { cancelled, joinHostPort, refusalError, refusals } from './_shared.ts';

/** `serve()` from src/runtime/serve.ts, or anything shaped like it. */
export type ServeFunction = (options: {
  fetch: (request: Request) => Response | Promise<Response>;
  hostname: string;
  port: number;
}) => Promise<{ readonly port: number; drain(): Promise<void>; forceClose(): Promise<void> }>;

/** Request headers that belong to HTTP itself, not to the request being propagated. */
const HOP_HEADERS = new Set([
  'accept',
  'accept-encoding',
  'accept-language',
  'connection',
  'content-length',
  'content-type',
  'expect',
  'host',
  'keep-alive',
  'sec-fetch-mode',
  'te',
  'transfer-encoding',
  'upgrade',
  'user-agent',
]);

export interface HttpPlaneClientOptions {
  /** @default globalThis.fetch */
  fetch?: typeof fetch;
  /** How long a worker has to accept a request (answer with its handshake). @default 5000 */
  ackTimeoutMs?: number;
  /** Largest response frame accepted. @default MAX_MESSAGE_SIZE (32 MiB) */
  maxMessageSize?: number;
}

export function createHttpPlaneClient(options: HttpPlaneClientOptions = {}): RequestPlaneClient {
  const fetchFn = options.fetch ?? globalThis.fetch;
  const ackTimeoutMs = options.ackTimeoutMs ?? 5000;
  const maxSize = options.maxMessageSize ?? MAX_MESSAGE_SIZE;
  const active = new Set<AbortController>();
  let closed = false;

  return {
    async send(
      address: TransportAddress,
      request: PlaneRequest,
      { signal }: PlaneSendOptions,
    ): Promise<AsyncIterable<unknown>> {
      if (closed) throw new PlaneError('cannot_connect', 'The HTTP request plane client is closed');
      if (!('http' in address)) {
        throw new PlaneError('protocol', `Not an HTTP address: ${JSON.stringify(address)}`);
      }
      signal.throwIfAborted();
      const url = address.http;
      const controller = new AbortController();
      const onAbort = () => controller.abort(signal.reason);
      signal.addEventListener('abort', onAbort, { once: true });
      active.add(controller);
      let handedOver = false;
      const forget = () => {
        signal.removeEventListener('abort', onAbort);
        active.delete(controller);
      };
      try {
        const body = encodeRequest({
          id: request.id,
          request_type: 'single_in',
          response_type: 'many_out',
          connection_info: { transport: 'http_stream', info: '{}' },
        }, request.body);
        const post = () =>
          fetchFn(url, {
            method: 'POST',
            body,
            headers: {
              ...request.headers,
              'request-id': request.id,
              'content-type': 'application/octet-stream',
            },
            signal: controller.signal,
          });
        let response: Response;
        try {
          response = await waitFor(
            // A pooled connection the worker closed while it sat idle (or a worker restarted on
            // the same port) fails before any answer, the request unseen: it goes out once more,
            // on a new connection. A second failure is the worker's (`cannot_connect`).
            post().catch((error: unknown) => {
              if (controller.signal.aborted) throw error;
              return post();
            }),
            {
              signal,
              timeoutMs: ackTimeoutMs,
              onTimeout: () =>
                new PlaneError(
                  'cannot_connect',
                  `Worker "${url}" did not accept the request within ${ackTimeoutMs} ms`,
                ),
            },
          );
        } catch (error) {
          if (signal.aborted) throw signal.reason;
          if (error instanceof PlaneError) throw error;
          throw new PlaneError(
            'cannot_connect',
            `Cannot connect to worker "${url}": ${errorMessage(error)}`,
            { cause: error },
          );
        }
        if (!response.ok || !response.body) {
          const text = await response.text().catch(() => '');
          throw refusalError(text || `Worker "${url}" answered HTTP ${response.status}`);
        }
        const frames = readFrames(response.body, twoPartDecoder({ maxSize }));
        handedOver = true;
        return await openResponseStream(frames, {
          signal,
          cancel(how) {
            controller.abort(cancelled(`Request cancelled by the frontend (${how})`));
          },
          release() {
            forget();
            // Read on to the end of the body (it follows the completion marker), so the
            // connection can be reused; after a cancel this just settles.
            frames.next().then((r) => {
              if (!r.done) void frames.return();
            }, () => {});
          },
        });
      } finally {
        if (!handedOver) {
          forget();
          controller.abort();
        }
      }
    },

    close(): Promise<void> {
      closed = true;
      for (const controller of active) controller.abort(cancelled('The client is closed'));
      active.clear();
      return Promise.resolve();
    },
  };
}

export interface HttpPlaneServerOptions {
  /** Starts the HTTP server: `serve` from src/runtime/serve.ts. */
  serve: ServeFunction;
  /** Interface to bind (`DYN_HTTP_RPC_HOST`). @default '127.0.0.1' */
  host?: string;
  /** Port to bind (`DYN_HTTP_RPC_PORT`). @default 0 (any free port) */
  port?: number;
  /** Host published in discovery; set it when `host` is `0.0.0.0`. @default host */
  advertiseHost?: string;
  /** Path prefix of the endpoints (`DYN_HTTP_RPC_ROOT_PATH`). @default '/v1/rpc' */
  rootPath?: string;
  /** Largest request accepted. @default MAX_MESSAGE_SIZE (32 MiB) */
  maxMessageSize?: number;
  /** Requests handled at once before new ones get 503 "Server overloaded: ...". @default Infinity */
  maxInFlight?: number;
}

/** Frames a response body holds before `send` waits for the runtime to read (back-pressure). */
const FRAMES_QUEUED = 16;

function text(status: number, body: string): Response {
  return new Response(body, { status, headers: { 'content-type': 'text/plain; charset=utf-8' } });
}

export function createHttpPlaneServer(options: HttpPlaneServerOptions): RequestPlaneServer {
  const host = options.host ?? '127.0.0.1';
  const advertiseHost = options.advertiseHost ?? host;
  const rootPath = (options.rootPath ?? '/v1/rpc').replace(/\/+$/, '');
  const maxSize = options.maxMessageSize ?? MAX_MESSAGE_SIZE;
  const maxInFlight = options.maxInFlight ?? Infinity;

  const routes = new Map<string, EndpointHandler>();
  const inFlight = new Map<AbortController, Promise<void>>();
  let server: ReturnType<ServeFunction> | undefined;
  let closing = false;

  async function handle(request: Request): Promise<Response> {
    const path = new URL(request.url).pathname;
    let name: string | undefined;
    try {
      if (path.startsWith(`${rootPath}/`)) {
        name = decodeURIComponent(path.slice(rootPath.length + 1));
      }
    } catch {
      // Malformed percent-encoding names no endpoint.
    }
    const handler = name === undefined ? undefined : routes.get(name);
    if (!handler) return text(404, refusals.unknownEndpoint(name ?? path));
    if (request.method !== 'POST') return text(405, `Method not allowed: ${request.method}`);
    if (closing) return text(503, refusals.unavailable());
    if (inFlight.size >= maxInFlight) return text(503, refusals.overloaded(inFlight.size));
    const limit = maxSize + 24;
    const tooLarge = (size: number) =>
      text(413, `Request too large: ${size} bytes exceeds the ${limit}-byte limit`);
    const declared = Number(request.headers.get('content-length') ?? 0);
    if (declared > limit) return tooLarge(declared);
    let decoded;
    try {
      const bytes = new Uint8Array(await request.arrayBuffer());
      if (bytes.length > limit) return tooLarge(bytes.length);
      decoded = decodeRequest(bytes, { maxSize });
    } catch (error) {
      return text(400, errorMessage(error));
    }
    const headers: Record<string, string> = {};
    request.headers.forEach((value, key) => {
      if (!HOP_HEADERS.has(key)) headers[key] = value;
    });

    const controller = new AbortController();
    // The response body is a queue of frames the runtime pulls from: a frame is taken at once
    // while fewer than FRAMES_QUEUED wait (no promise per frame, no TransformStream per
    // request), else `send` waits for the next pull (back-pressure). The runtime cancels the body
    // when the frontend goes away (on Node, Bun and Deno alike).
    let body!: ReadableStreamDefaultController<Uint8Array>;
    let pulled: (() => void) | undefined;
    let open = true;
    const readable = new ReadableStream<Uint8Array>({
      start(c) {
        body = c;
      },
      pull() {
        pulled?.();
        pulled = undefined;
      },
      cancel() {
        open = false;
        pulled?.();
        controller.abort(cancelled('Request cancelled by the frontend (connection closed)'));
      },
    }, { highWaterMark: FRAMES_QUEUED });
    const send = (frame: Uint8Array): Promise<void> | void => {
      if (!open) throw controller.signal.reason;
      body.enqueue(frame);
      if ((body.desiredSize ?? 0) > 0) return;
      return new Promise<void>((resolve) => pulled = resolve);
    };
    const id = decoded.control.id;
    const running = (async () => {
      try {
        // Sent at once so every runtime sends the status line now: the ACK.
        await send(encodeHandshake(id));
        await pumpResponses(handler, decoded.body, { id, headers, controller, send });
      } catch {
        // The frontend went away; the handler was aborted.
      }
      // Aborted or not, the body just ends: without the completion marker, the frontend reads
      // a disconnect. (An errored body would make Bun log the reason.)
      if (open) {
        open = false;
        body.close();
      }
    })().finally(() => inFlight.delete(controller));
    inFlight.set(controller, running);
    return new Response(readable, {
      status: 200,
      headers: { 'content-type': 'application/octet-stream', 'cache-control': 'no-store' },
    });
  }

  return {
    async serve(endpoint, _instanceId, handler): Promise<TransportAddress> {
      if (closing) throw new Error('The HTTP request plane server is closed');
      if (routes.has(endpoint.endpoint)) {
        throw new Error(`Endpoint "${endpoint.endpoint}" is already served`);
      }
      server ??= options.serve({ fetch: handle, hostname: host, port: options.port ?? 0 });
      const { port } = await server;
      routes.set(endpoint.endpoint, handler);
      const path = `${rootPath}/${encodeURIComponent(endpoint.endpoint)}`;
      return { http: `http://${joinHostPort(advertiseHost, port)}${path}` };
    },

    async drain(): Promise<void> {
      // New requests get 503 "Server unavailable"; the listener stays up for the running streams.
      closing = true;
      await Promise.allSettled(inFlight.values());
    },

    async close(): Promise<void> {
      closing = true;
      for (const controller of inFlight.keys()) {
        controller.abort(cancelled('The worker is shutting down'));
      }
      await Promise.allSettled(inFlight.values());
      const started = await server?.catch(() => undefined);
      await started?.forceClose();
      await started?.drain();
      routes.clear();
    },
  };
}
