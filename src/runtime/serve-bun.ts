/** HTTP(S) serving on Bun through Bun.serve. */
import {
  isAddrInUse,
  PortInUseError,
  type ServeOptions,
  type ServerHandle,
  type WsPeer,
  type WsSession,
} from './serve-types.ts';

interface BunServer {
  port: number;
  stop(closeActiveConnections?: boolean): Promise<void>;
  upgrade(request: Request, options: { data: SocketData }): boolean;
}
interface BunSocket {
  data: SocketData;
  send(text: string): number;
  close(code?: number, reason?: string): void;
}
interface SocketData {
  start: (peer: WsPeer) => WsSession;
  session?: WsSession;
  peer?: WsPeer;
}
interface BunGlobal {
  serve(options: Record<string, unknown>): BunServer;
}

export function serve(options: ServeOptions): Promise<ServerHandle> {
  const bun = (globalThis as unknown as { Bun: BunGlobal }).Bun;
  let server: BunServer;
  let closeSockets = () => {};
  try {
    const ws = options.websocket;
    const open = new Set<WsPeer>();
    closeSockets = () => {
      for (const peer of [...open]) peer.close(1001, 'server shutting down');
    };
    server = bun.serve({
      fetch: ws
        ? (request: Request, self: BunServer) => {
          if (request.headers.get('upgrade')?.toLowerCase() !== 'websocket') {
            return options.fetch(request);
          }
          const start = ws.accept(request);
          if (!start) return options.fetch(request);
          if (self.upgrade(request, { data: { start } })) return undefined;
          return new Response('Invalid WebSocket handshake', { status: 400 });
        }
        : options.fetch,
      ...(ws
        ? {
          websocket: {
            maxPayloadLength: ws.maxMessageBytes ?? 16 * 1024 * 1024,
            idleTimeout: 0,
            open(socket: BunSocket) {
              let closed = false;
              const peer: WsPeer = {
                send: (text) => {
                  if (!closed) socket.send(text);
                },
                close: (code = 1000, reason = '') => {
                  if (closed) return;
                  closed = true;
                  open.delete(peer);
                  socket.close(code, reason);
                  socket.data.session?.closed();
                },
              };
              socket.data.peer = peer;
              open.add(peer);
              socket.data.session = socket.data.start(peer);
            },
            message(socket: BunSocket, message: string | Uint8Array) {
              if (typeof message !== 'string') {
                socket.data.peer?.close(1003, 'binary messages are not accepted');
                return;
              }
              socket.data.session?.message(message);
            },
            close(socket: BunSocket) {
              const peer = socket.data.peer;
              if (peer && open.has(peer)) {
                open.delete(peer);
                socket.data.session?.closed();
              }
            },
          },
        }
        : {}),
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
    drain: () => {
      closeSockets();
      return server.stop(false);
    },
    forceClose: () => {
      closeSockets();
      return server.stop(true);
    },
  });
}
