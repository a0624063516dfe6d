/** HTTP(S) serving on Node through @hono/node-server. */
import { serve as nodeServe } from '@hono/node-server';
import { createServer as createHttpsServer } from 'node:https';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import {
  isAddrInUse,
  PortInUseError,
  type ServeOptions,
  type ServerHandle,
} from './serve-types.ts';

export function serve(options: ServeOptions): Promise<ServerHandle> {
  return new Promise((resolve, reject) => {
    const tls = options.tls
      ? {
        createServer: createHttpsServer,
        serverOptions: { cert: options.tls.cert, key: options.tls.key },
      }
      : {};
    const server = nodeServe({
      fetch: options.fetch,
      hostname: options.hostname,
      port: options.port,
      // Long SSE streams must not be cut by Node's default request timeout.
      ...tls,
    }) as Server;
    server.requestTimeout = 0;
    server.once('error', (error) => {
      reject(isAddrInUse(error) ? new PortInUseError(options.port, { cause: error }) : error);
    });
    server.once('listening', () => {
      const port = (server.address() as AddressInfo).port;
      resolve({
        port,
        drain: () =>
          new Promise<void>((done) => {
            server.close(() => done());
            server.closeIdleConnections();
          }),
        forceClose: () => {
          server.closeAllConnections();
          return Promise.resolve();
        },
      });
    });
  });
}
