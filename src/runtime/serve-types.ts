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
