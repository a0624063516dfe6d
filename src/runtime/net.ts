/**
 * The `Network` port (src/core/net.ts) made real with node:net, which Node, Bun and Deno all
 * provide. Every socket has TCP_NODELAY on: the request plane writes small frames it wants sent
 * at once.
 */
import { createConnection, createServer, type Socket } from 'node:net';
import type { Connection, Listener, Network } from '../core/net.ts';

/** Most chunks buffered in a connection's readable before the socket is paused. */
const READ_HIGH_WATER_MARK = 64;

function wrapSocket(socket: Socket): Connection {
  socket.setNoDelay(true);
  const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
  let done = false;
  const readable = new ReadableStream<Uint8Array>({
    start(controller) {
      const finish = (error?: unknown) => {
        if (done) return;
        done = true;
        if (error === undefined) controller.close();
        else controller.error(error);
      };
      socket.on('data', (chunk: Uint8Array) => {
        if (done) return;
        // A plain view: Buffer's slice() semantics differ from Uint8Array's.
        controller.enqueue(new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.byteLength));
        if ((controller.desiredSize ?? 1) <= 0) socket.pause();
      });
      socket.once('end', () => finish());
      socket.once('error', (error) => finish(error));
      socket.once('close', () => finish());
    },
    pull() {
      if (socket.isPaused()) socket.resume();
    },
    cancel() {
      done = true;
      socket.destroy();
    },
  }, { highWaterMark: READ_HIGH_WATER_MARK });
  return {
    readable,
    closed,
    write(bytes) {
      return new Promise<void>((resolve, reject) => {
        if (socket.destroyed) {
          reject(new Error('Connection is closed'));
          return;
        }
        socket.write(bytes, (error) => (error ? reject(error) : resolve()));
      });
    },
    close() {
      if (socket.destroyed) return;
      // Let queued writes reach the OS first, then release the socket at once.
      if (socket.writableLength === 0) socket.destroy();
      else socket.end(() => socket.destroy());
    },
  };
}

export function createNodeNetwork(): Network {
  return {
    connect(host, port) {
      return new Promise<Connection>((resolve, reject) => {
        const socket = createConnection({ host, port });
        const onError = (error: Error) => {
          socket.destroy();
          reject(error);
        };
        socket.once('error', onError);
        socket.once('connect', () => {
          socket.off('error', onError);
          resolve(wrapSocket(socket));
        });
      });
    },
    listen(host, port, onConnection) {
      return new Promise<Listener>((resolve, reject) => {
        const server = createServer((socket) => onConnection(wrapSocket(socket)));
        server.once('error', reject);
        server.listen(port, host, () => {
          server.off('error', reject);
          const address = server.address();
          const bound = typeof address === 'object' && address !== null ? address.port : port;
          resolve({
            host,
            port: bound,
            close() {
              // Stops accepting; connections already open are their owners' to close.
              server.close();
              return Promise.resolve();
            },
          });
        });
      });
    },
  };
}
