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
import { createUpgradeHandler } from './ws-node.ts';

export function serve(options: ServeOptions): Promise<ServerHandle> {
  return new Promise((resolve, reject) => {
    // Node checks the head deadline on an interval (30 s by default): check at a tenth of it.
    const timing = options.headerTimeoutMs
      ? {
        headersTimeout: options.headerTimeoutMs,
        requestTimeout: 0,
        connectionsCheckingInterval: Math.max(100, Math.min(5000, options.headerTimeoutMs / 10)),
      }
      : {};
    const tls = options.tls
      ? {
        createServer: createHttpsServer,
        serverOptions: { cert: options.tls.cert, key: options.tls.key, ...timing },
      }
      : { serverOptions: timing };
    const server = nodeServe({
      fetch: options.fetch,
      hostname: options.hostname,
      port: options.port,
      // Long SSE streams must not be cut by Node's default request timeout.
      ...tls,
    }) as Server;
    server.requestTimeout = 0;
    const sockets = options.websocket
      ? createUpgradeHandler(options.websocket, options.tls !== undefined)
      : undefined;
    if (sockets) server.on('upgrade', sockets.upgrade);
    // Upgraded connections are no longer the HTTP server's: close them on shutdown.
    const closeSockets = () => {
      for (const peer of [...sockets?.open ?? []]) peer.close(1001, 'server shutting down');
    };
    // The head must still arrive in time (a slowloris holds a socket otherwise); the body has
    // its own deadline in the app (--http-body-timeout-secs).
    if (options.headerTimeoutMs) server.headersTimeout = options.headerTimeoutMs;
    if (options.maxConnections) server.maxConnections = options.maxConnections;
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
            closeSockets();
          }),
        forceClose: () => {
          server.closeAllConnections();
          closeSockets();
          return Promise.resolve();
        },
      });
    });
  });
}
