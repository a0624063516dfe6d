/** The one interface every runtime's HTTP server adapter implements. */

export interface ServeOptions {
  fetch: (request: Request) => Response | Promise<Response>;
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
   * (Bun: `pendingRequests`, answered 503); Deno has neither. 0: no cap. @default 0
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
