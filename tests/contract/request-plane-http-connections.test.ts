/**
 * The HTTP request plane's connections, with the `fetch` the frontend uses on each runtime
 * (`planeFetch()`: Node's keep-alive `node:http` agent, Bun's and Deno's own pooled `fetch`):
 * requests reuse connections, a worker restarted on the same port is reached again, and a pooled
 * connection that died while idle costs no request. A TCP proxy in front of the worker counts
 * the connections the worker sees and can cut the idle ones.
 */
import assert from 'node:assert/strict';
import net from 'node:net';
import { after, describe, test } from 'node:test';
import { createHttpPlaneClient, createHttpPlaneServer } from '../../src/adapters/plane/http.ts';
import type { EndpointId, TransportAddress } from '../../src/core/discovery/types.ts';
import type { RequestPlaneServer } from '../../src/core/plane/types.ts';
import { planeFetch } from '../../src/runtime/http-fetch-node.ts';
import { serve } from '../../src/runtime/serve.ts';
import { currentRuntime } from '../helpers/process.ts';

const ENDPOINT: EndpointId = { namespace: 'test', component: 'backend', endpoint: 'generate' };

/** A worker whose handler answers `{n}` with the items 0..n-1. */
async function startWorker(port = 0): Promise<{ server: RequestPlaneServer; url: URL }> {
  const server = createHttpPlaneServer({ serve, port });
  const address = await server.serve(ENDPOINT, '1', async function* (body) {
    const { n } = body as { n: number };
    for (let i = 0; i < n; i++) yield { i };
  });
  return { server, url: new URL((address as { http: string }).http) };
}

interface Proxy {
  port: number;
  /** Connections accepted so far. */
  connections: number;
  /** Connections cut by `cutIdle()` when their next request arrived. */
  cut: number;
  /** The connections open now are closed, unanswered, when they next carry a request. */
  cutIdle(): void;
  close(): Promise<void>;
}

/** A TCP proxy to `target` on 127.0.0.1 that counts connections. */
async function startProxy(target: number): Promise<Proxy> {
  const open = new Set<net.Socket>();
  const doomed = new WeakSet<net.Socket>();
  const proxy: Proxy = {
    port: 0,
    connections: 0,
    cut: 0,
    cutIdle: () => open.forEach((socket) => doomed.add(socket)),
    close: () => {
      for (const socket of open) socket.destroy();
      return new Promise((resolve) => listener.close(() => resolve()));
    },
  };
  const listener = net.createServer((client) => {
    proxy.connections++;
    open.add(client);
    const upstream = net.connect(target, '127.0.0.1');
    client.on('data', (data) => {
      if (doomed.has(client)) {
        proxy.cut++;
        client.destroy();
        upstream.destroy();
      } else upstream.write(data);
    });
    upstream.on('data', (data) => client.write(data));
    client.on('close', () => {
      open.delete(client);
      upstream.destroy();
    });
    upstream.on('close', () => client.destroy());
    client.on('error', () => {});
    upstream.on('error', () => {});
  });
  await new Promise<void>((resolve) => listener.listen(0, '127.0.0.1', () => resolve()));
  proxy.port = (listener.address() as net.AddressInfo).port;
  return proxy;
}

const client = createHttpPlaneClient({ fetch: planeFetch() });
after(() => client.close());

async function call(address: TransportAddress, n: number): Promise<unknown[]> {
  const items: unknown[] = [];
  const stream = await client.send(address, {
    id: crypto.randomUUID(),
    headers: {},
    body: { n },
  }, { signal: new AbortController().signal });
  for await (const item of stream) items.push(item);
  return items;
}

const through = (proxy: Proxy, url: URL): TransportAddress => ({
  http: `http://127.0.0.1:${proxy.port}${url.pathname}`,
});

describe(`the HTTP request plane's connections on ${currentRuntime()}`, () => {
  test('20 requests one after another reuse connections: the worker sees at most 4', async () => {
    const worker = await startWorker();
    const proxy = await startProxy(Number(worker.url.port));
    try {
      for (let i = 0; i < 20; i++) {
        assert.deepEqual(
          await call(through(proxy, worker.url), 3),
          [
            { data: { i: 0 } },
            { data: { i: 1 } },
            { data: { i: 2 } },
          ].map((x) => x.data),
        );
      }
      assert.ok(proxy.connections <= 4, `${proxy.connections} connections for 20 requests`);
    } finally {
      await proxy.close();
      await worker.server.close();
    }
  });

  test('a worker restarted on the same port is called again through the same client', async () => {
    const first = await startWorker();
    assert.equal((await call({ http: first.url.href }, 2)).length, 2);
    await first.server.close();
    const second = await startWorker(Number(first.url.port));
    try {
      assert.equal(second.url.port, first.url.port);
      assert.equal((await call({ http: second.url.href }, 2)).length, 2);
    } finally {
      await second.server.close();
    }
  });

  test('a pooled connection closed while idle is replaced: the next request succeeds', async () => {
    const worker = await startWorker();
    const proxy = await startProxy(Number(worker.url.port));
    try {
      assert.equal((await call(through(proxy, worker.url), 2)).length, 2);
      proxy.cutIdle();
      assert.equal((await call(through(proxy, worker.url), 2)).length, 2);
      assert.equal(proxy.cut, 1, 'the second request went out on the pooled connection');
      assert.equal(proxy.connections, 2);
    } finally {
      await proxy.close();
      await worker.server.close();
    }
  });
});
