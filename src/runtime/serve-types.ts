/** The one interface every runtime's HTTP server adapter implements. */

export interface ServeOptions {
  fetch: (request: Request) => Response | Promise<Response>;
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
