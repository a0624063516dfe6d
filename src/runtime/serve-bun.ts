/** HTTP(S) serving on Bun through Bun.serve. */
import {
  isAddrInUse,
  PortInUseError,
  type ServeOptions,
  type ServerHandle,
} from './serve-types.ts';

interface BunServer {
  port: number;
  stop(closeActiveConnections?: boolean): Promise<void>;
}
interface BunGlobal {
  serve(options: Record<string, unknown>): BunServer;
}

export function serve(options: ServeOptions): Promise<ServerHandle> {
  const bun = (globalThis as unknown as { Bun: BunGlobal }).Bun;
  let server: BunServer;
  try {
    server = bun.serve({
      fetch: options.fetch,
      hostname: options.hostname,
      port: options.port,
      // Bun cuts a connection idle for 10 s by default, which would end quiet SSE streams.
      idleTimeout: 0,
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
