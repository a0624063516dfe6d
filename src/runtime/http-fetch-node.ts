/**
 * The `fetch` of the HTTP request plane (`planeFetch()`). On Node it is this file's, over
 * `node:http` with a keep-alive agent: Node's own `fetch` (undici) pools connections too but
 * spends more CPU per request (bench/request-plane.ts, docs/request-plane.md). Bun's and Deno's
 * `fetch` pool connections natively and are used as they are.
 *
 * Only what the plane client needs: a request with a byte (or string) body, headers and an abort
 * signal; the answer is a web `Response` whose body streams the socket's data with backpressure.
 * A request that fails before any answer rejects; the plane client sends it once more (a pooled
 * connection the worker closed while idle) and then reports `PlaneError('cannot_connect')`.
 */
import { Agent, type IncomingMessage, request as httpRequest } from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import { detectRuntime } from './serve.ts';

export interface NodeHttpFetchOptions {
  /** Idle connections kept per worker address. @default 256 */
  maxFreeSockets?: number;
  /**
   * How long an idle connection stays pooled: below the keep-alive timeout of the servers (5 s
   * on Node and Deno), so the pool lets a connection go before the worker does. @default 4000
   */
  idleTimeoutMs?: number;
}

/** The `fetch` for `createHttpPlaneClient()` on this runtime (undefined: the global one). */
export function planeFetch(): typeof fetch | undefined {
  return detectRuntime() === 'node' ? createNodeHttpFetch() : undefined;
}

/** A `fetch`-shaped function with one keep-alive agent per protocol, shared by its requests. */
export function createNodeHttpFetch(options: NodeHttpFetchOptions = {}): typeof fetch {
  const agentOptions = {
    keepAlive: true,
    maxFreeSockets: options.maxFreeSockets ?? 256,
    timeout: options.idleTimeoutMs ?? 4000,
    scheduling: 'lifo' as const,
  };
  const agents = { http: new Agent(agentOptions), https: new HttpsAgent(agentOptions) };

  function send(url: URL, init: RequestInit): Promise<Response> {
    const tls = url.protocol === 'https:';
    const body = init.body as Uint8Array | string | null | undefined;
    const headers: Record<string, string> = {};
    new Headers(init.headers).forEach((value, key) => void (headers[key] = value));
    if (body != null) {
      headers['content-length'] = String(
        typeof body === 'string' ? new TextEncoder().encode(body).byteLength : body.byteLength,
      );
    }
    return new Promise<Response>((resolve, reject) => {
      const request = (tls ? httpsRequest : httpRequest)(url, {
        method: init.method ?? 'GET',
        headers,
        agent: tls ? agents.https : agents.http,
        signal: init.signal ?? undefined,
      }, (response) => {
        resolve(
          new Response(bodyOf(response), {
            status: response.statusCode ?? 500,
            statusText: response.statusMessage ?? '',
            headers: headersOf(response),
          }),
        );
      });
      request.once('error', reject);
      request.end(body ?? undefined);
    });
  }

  return ((input: string | URL | Request, init: RequestInit = {}) => {
    init.signal?.throwIfAborted();
    const url = input instanceof URL
      ? input
      : new URL(typeof input === 'string' ? input : input.url);
    return send(url, init);
  }) as typeof fetch;
}

function headersOf(response: IncomingMessage): Headers {
  const headers = new Headers();
  const raw = response.rawHeaders;
  for (let i = 0; i + 1 < raw.length; i += 2) headers.append(raw[i]!, raw[i + 1]!);
  return headers;
}

/**
 * The response's data as a byte stream: paused while the reader is behind, destroyed on cancel;
 * a connection that closes before the body's end errors the stream.
 */
function bodyOf(response: IncomingMessage): ReadableStream<Uint8Array> {
  let settled = false;
  return new ReadableStream<Uint8Array>({
    start(controller) {
      const fail = (error: unknown) => {
        if (settled) return;
        settled = true;
        controller.error(error);
      };
      response.on('data', (chunk: Uint8Array) => {
        if (settled) return;
        controller.enqueue(chunk);
        if ((controller.desiredSize ?? 0) <= 0) response.pause();
      });
      response.once('end', () => {
        if (settled) return;
        settled = true;
        controller.close();
      });
      response.once('error', fail);
      response.once(
        'close',
        () => fail(new Error('The connection closed before the response ended')),
      );
    },
    pull() {
      response.resume();
    },
    cancel() {
      settled = true;
      response.destroy();
    },
  }, { highWaterMark: 16 });
}
