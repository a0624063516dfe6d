/** HTTP(S) serving on Bun through Bun.serve. */
import {
  isAddrInUse,
  overCapacity,
  PortInUseError,
  type ServeOptions,
  type ServerHandle,
  type WsPeer,
  type WsSession,
} from './serve-types.ts';

interface BunServer {
  port: number;
  pendingRequests: number;
  timeout(request: Request, seconds: number): void;
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
    const cap = options.maxConnections ?? 0;
    // Bun's one knob is an idle timeout per connection (at most 255 s): it bounds the wait for a
    // request head; once a request reaches the handler its timeout is lifted, so quiet SSE
    // streams are not cut (the body and a stalled reader have their own deadlines in the app).
    const idle = options.headerTimeoutMs
      ? Math.min(255, Math.max(1, Math.ceil(options.headerTimeoutMs / 1000)))
      : 0;
    const plain = (request: Request, s: BunServer) => {
      if (idle > 0) s.timeout(request, 0);
      if (cap > 0 && s.pendingRequests > cap) return overCapacity();
      // An HTTP/1.0 request without Host reaches Bun's handler with a bare path as its URL,
      // which routers then misread (a 404 for a garbled path): make it absolute first.
      if (request.url.charCodeAt(0) === 47) {
        const host = options.hostname.includes(':') ? `[${options.hostname}]` : options.hostname;
        return options.fetch(new Request(`http://${host}:${s.port}${request.url}`, request));
      }
      return options.fetch(request);
    };
    server = bun.serve({
      fetch: ws
        ? (request: Request, self: BunServer) => {
          if (request.headers.get('upgrade')?.toLowerCase() !== 'websocket') {
            return plain(request, self);
          }
          const start = ws.accept(request);
          if (!start) return plain(request, self);
          if (self.upgrade(request, { data: { start } })) return undefined;
          return new Response('Invalid WebSocket handshake', { status: 400 });
        }
        : plain,
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
