/** HTTP(S) serving on Deno through Deno.serve. */
import {
  isAddrInUse,
  PortInUseError,
  type ServeOptions,
  type ServerHandle,
} from './serve-types.ts';

interface DenoServer {
  addr: { port: number };
  shutdown(): Promise<void>;
  finished: Promise<void>;
}
interface DenoGlobal {
  serve(
    options: Record<string, unknown>,
    handler: (request: Request) => Response | Promise<Response>,
  ): DenoServer;
}

export function serve(options: ServeOptions): Promise<ServerHandle> {
  const deno = (globalThis as unknown as { Deno: DenoGlobal }).Deno;
  return new Promise((resolve, reject) => {
    let server: DenoServer | undefined;
    try {
      server = deno.serve({
        hostname: options.hostname,
        port: options.port,
        onListen: () => {},
        ...(options.tls ? { cert: options.tls.cert, key: options.tls.key } : {}),
      }, options.fetch);
    } catch (error) {
      reject(isAddrInUse(error) ? new PortInUseError(options.port, { cause: error }) : error);
      return;
    }
    const s = server;
    resolve({
      port: s.addr.port,
      drain: () => s.shutdown(),
      // Deno has no call that cuts connections once shutdown() has begun (aborting the signal
      // then throws BadResource); the connections end when the process exits.
      forceClose: () => Promise.resolve(),
    });
  });
}
