/** The one interface every runtime's HTTP server adapter implements. */

import type { WsPeer, WsSession } from '../http/types.ts';

export type { WsPeer, WsSession };

export interface WebSocketOptions {
  /**
   * Called for each upgrade request: a function that opens the session once the socket is
   * open, or undefined to refuse it (the server answers 404).
   */
  accept(request: Request): ((peer: WsPeer) => WsSession) | undefined;
  /** Larger messages close the connection with 1009. @default 16 MiB */
  maxMessageBytes?: number;
}

export interface ServeOptions {
  fetch: (request: Request) => Response | Promise<Response>;
  /** WebSocket upgrades (Responses API WebSocket mode). @default none: upgrades are plain requests */
  websocket?: WebSocketOptions;
  hostname: string;
  port: number;
  /** PEM text; both or neither. */
  tls?: { cert: string; key: string };
  /**
   * Time a client has to send its request head, in ms (Node: `headersTimeout`; Bun: the idle
   * timeout until the request reaches the handler; Deno: not configurable). @default the runtime's
   */
  headerTimeoutMs?: number;
  /**
   * Cap on open connections (Node: `maxConnections`, refused at accept) or requests in flight
   * (Bun: `pendingRequests`; Deno: counted until each response is sent; both answer 503).
   * 0: no cap. @default 0
   */
  maxConnections?: number;
}

/** The 503 a server adapter answers over its connection cap. */
export function overCapacity(): Response {
  return Response.json({
    error: {
      message: 'Too many connections: the server is at --http-max-connections',
      type: 'service_unavailable',
      param: null,
      code: 'too_many_connections',
    },
  }, { status: 503, headers: { 'retry-after': '1' } });
}

export interface ServerHandle {
  /** The port actually bound. */
  readonly port: number;
  /** Stops accepting connections and resolves when in-flight responses have finished. */
  drain(): Promise<void>;
  /** Closes every connection now. */
  forceClose(): Promise<void>;
}

/** The port is taken: reported with the fix, not a stack trace. */
export class PortInUseError extends Error {
  constructor(port: number, options: { cause?: unknown } = {}) {
    super(
      `port ${port} already in use. Use --http-port (DYN_HTTP_PORT) to choose another`,
      options,
    );
    this.name = 'PortInUseError';
  }
}

export function isAddrInUse(error: unknown): boolean {
  const e = error as { code?: string; name?: string } | null;
  return e?.code === 'EADDRINUSE' || e?.name === 'AddrInUse';
}
