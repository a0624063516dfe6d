/**
 * `--http-max-connections` on this runtime: with the cap reached by requests that are in flight
 * (two bodies that never finish arriving), the next request is turned away (Bun and Deno: a 503
 * `too_many_connections` in the API's error shape; Node: the connection is refused at accept),
 * and once those requests end the server answers again.
 */
import assert from 'node:assert/strict';
import { connect, type Socket } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { currentRuntime } from '../helpers/process.ts';
import { type Stack, startStack } from '../helpers/stack.ts';
import { waitFor } from '../helpers/wait.ts';

/** A request whose body never finishes: its handler stays in flight until the body deadline. */
function stalledRequest(port: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1', () => {
      socket.write(
        'POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n' +
          'Content-Length: 100\r\n\r\n{',
      );
      resolve(socket);
    });
    socket.on('error', () => {});
    socket.once('error', reject);
  });
}

describe(`--http-max-connections on ${currentRuntime()}`, () => {
  let stack: Stack;
  before(async () => {
    stack = await startStack({ frontendArgs: ['--http-max-connections', '2'] });
  });
  after(async () => {
    await stack?.close();
  });

  test('past the cap a request is turned away; after, the server answers again', async () => {
    const port = stack.frontend.server.port;
    const models = () => fetch(`${stack.url}/v1/models`, { headers: { connection: 'close' } });
    const before = await models();
    assert.equal(before.status, 200, 'under the cap');
    await before.arrayBuffer();
    const stalled = [await stalledRequest(port), await stalledRequest(port)];
    try {
      // The two stalled requests reach the server (and its handler, on Bun and Deno) first.
      const refused = await waitFor(async () => {
        try {
          const res = await models();
          if (res.status === 503) return { status: 503, body: await res.json() };
          await res.arrayBuffer();
          return undefined;
        } catch (error) {
          return { error };
        }
      }, { timeoutMs: 10_000, intervalMs: 20, what: 'a request turned away at the cap' });
      if (currentRuntime() === 'node') {
        assert.ok('error' in refused, 'Node refuses the connection at accept');
      } else {
        assert.ok('body' in refused, JSON.stringify(refused));
        const { error } = refused.body as { error: { code: string; type: string } };
        assert.equal(error.code, 'too_many_connections');
        assert.equal(error.type, 'service_unavailable');
      }
    } finally {
      for (const socket of stalled) socket.destroy();
    }
    // Their handlers end (the client is gone), and the server takes requests again.
    const res = await waitFor(async () => {
      try {
        const r = await models();
        if (r.status === 200) return r;
        await r.arrayBuffer();
      } catch {
        // still at the cap
      }
      return undefined;
    }, { timeoutMs: 30_000, intervalMs: 50, what: 'the server to answer again' });
    assert.equal(res.status, 200);
    await res.arrayBuffer();
  });
});
