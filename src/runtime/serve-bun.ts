/** HTTP(S) serving on Bun through Bun.serve. */
import {
  isAddrInUse,
  overCapacity,
  PortInUseError,
  type ServeOptions,
  type ServerHandle,
} from './serve-types.ts';

interface BunServer {
  port: number;
  pendingRequests: number;
  timeout(request: Request, seconds: number): void;
  stop(closeActiveConnections?: boolean): Promise<void>;
}
interface BunGlobal {
  serve(options: Record<string, unknown>): BunServer;
}

export function serve(options: ServeOptions): Promise<ServerHandle> {
  const bun = (globalThis as unknown as { Bun: BunGlobal }).Bun;
  let server: BunServer;
  try {
    const cap = options.maxConnections ?? 0;
    // Bun's one knob is an idle timeout per connection (at most 255 s): it bounds the wait for a
    // request head; once a request reaches the handler its timeout is lifted, so quiet SSE
    // streams are not cut (the body and a stalled reader have their own deadlines in the app).
    const idle = options.headerTimeoutMs
      ? Math.min(255, Math.max(1, Math.ceil(options.headerTimeoutMs / 1000)))
      : 0;
    server = bun.serve({
      fetch: (request: Request, s: BunServer) => {
        if (idle > 0) s.timeout(request, 0);
        if (cap > 0 && s.pendingRequests > cap) return overCapacity();
        // An HTTP/1.0 request without Host reaches Bun's handler with a bare path as its URL,
        // which routers then misread (a 404 for a garbled path): make it absolute first.
        if (request.url.charCodeAt(0) === 47) {
          const host = options.hostname.includes(':') ? `[${options.hostname}]` : options.hostname;
          return options.fetch(new Request(`http://${host}:${s.port}${request.url}`, request));
        }
        return options.fetch(request);
      },
      hostname: options.hostname,
      port: options.port,
      idleTimeout: idle,
      ...(options.tls ? { tls: { cert: options.tls.cert, key: options.tls.key } } : {}),
    });
  } catch (error) {
    return Promise.reject(
      isAddrInUse(error) ? new PortInUseError(options.port, { cause: error }) : error,
    );
  }
  return Promise.resolve({
    port: server.port,
    drain: () => server.stop(false),
    forceClose: () => server.stop(true),
  });
}
