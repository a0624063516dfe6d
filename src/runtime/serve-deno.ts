/** HTTP(S) serving on Deno through Deno.serve. */
import {
  isAddrInUse,
  overCapacity,
  PortInUseError,
  type ServeOptions,
  type ServerHandle,
  type WebSocketOptions,
  type WsPeer,
} from './serve-types.ts';

interface DenoServer {
  addr: { port: number };
  shutdown(): Promise<void>;
  finished: Promise<void>;
}
interface DenoSocket {
  send(text: string): void;
  close(code?: number, reason?: string): void;
  onopen: (() => void) | null;
  onmessage: ((event: { data: unknown }) => void) | null;
  onclose: (() => void) | null;
  onerror: (() => void) | null;
}
interface DenoGlobal {
  upgradeWebSocket(request: Request): { socket: DenoSocket; response: Response };
  serve(
    options: Record<string, unknown>,
    handler: (
      request: Request,
      info: { completed?: Promise<void> },
    ) => Response | Promise<Response>,
  ): DenoServer;
}

/** A fetch handler that upgrades the requests `ws.accept()` takes. */
function withWebSockets(
  deno: DenoGlobal,
  ws: WebSocketOptions,
  fetch: ServeOptions['fetch'],
  open: Set<WsPeer>,
): ServeOptions['fetch'] {
  const max = ws.maxMessageBytes ?? 16 * 1024 * 1024;
  return (request) => {
    if (request.headers.get('upgrade')?.toLowerCase() !== 'websocket') return fetch(request);
    const start = ws.accept(request);
    if (!start) return fetch(request);
    const { socket, response } = deno.upgradeWebSocket(request);
    let closed = false;
    const peer: WsPeer = {
      send: (text) => {
        if (!closed) socket.send(text);
      },
      close: (code = 1000, reason = '') => {
        if (closed) return;
        closed = true;
        open.delete(peer);
        try {
          socket.close(code, reason);
        } catch {
          // Already closing.
        }
        session?.closed();
      },
    };
    let session: ReturnType<typeof start> | undefined;
    const ended = () => {
      if (closed) return;
      closed = true;
      open.delete(peer);
      session?.closed();
    };
    socket.onopen = () => {
      open.add(peer);
      session = start(peer);
    };
    socket.onmessage = (event) => {
      if (typeof event.data !== 'string') {
        peer.close(1003, 'binary messages are not accepted');
      } else if (event.data.length > max) {
        peer.close(1009, 'message too big');
      } else {
        session?.message(event.data);
      }
    };
    socket.onclose = ended;
    socket.onerror = ended;
    return response;
  };
}

export function serve(options: ServeOptions): Promise<ServerHandle> {
  const deno = (globalThis as unknown as { Deno: DenoGlobal }).Deno;
  const open = new Set<WsPeer>();
  const closeSockets = () => {
    for (const peer of [...open]) peer.close(1001, 'server shutting down');
  };
  const handle = options.websocket
    ? withWebSockets(deno, options.websocket, options.fetch, open)
    : options.fetch;
  // Deno.serve has no connection cap: as on Bun, requests in flight are counted (a request
  // ends when its response has been sent: `info.completed`) and those past the cap get a 503.
  const cap = options.maxConnections ?? 0;
  let inFlight = 0;
  const fetch = cap > 0
    ? (request: Request, info: { completed?: Promise<void> }) => {
      if (!info.completed) return handle(request);
      if (inFlight >= cap) return overCapacity();
      inFlight++;
      const done = () => void inFlight--;
      info.completed.then(done, done);
      return handle(request);
    }
    : (request: Request) => handle(request);
  return new Promise((resolve, reject) => {
    let server: DenoServer | undefined;
    try {
      server = deno.serve({
        hostname: options.hostname,
        port: options.port,
        onListen: () => {},
        ...(options.tls ? { cert: options.tls.cert, key: options.tls.key } : {}),
      }, fetch);
    } catch (error) {
      reject(isAddrInUse(error) ? new PortInUseError(options.port, { cause: error }) : error);
      return;
    }
    const s = server;
    resolve({
      port: s.addr.port,
      drain: () => {
        closeSockets();
        return s.shutdown();
      },
      // Deno has no call that cuts connections once shutdown() has begun (aborting the signal
      // then throws BadResource); the connections end when the process exits.
      forceClose: () => {
        closeSockets();
        return Promise.resolve();
      },
    });
  });
}
