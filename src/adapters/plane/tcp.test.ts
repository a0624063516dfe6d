import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Connection } from '../../core/net.ts';
import { readFrames } from './wire/frame-reader.ts';
import { encodeRequest } from './wire/messages.ts';
import { encodeTcpRequest, lengthPrefixedDecoder } from './wire/tcp-frames.ts';
import { twoPartDecoder } from './wire/two-part.ts';
import { createNodeNetwork } from '../../runtime/net.ts';
import { createTcpPlaneServer, parseTcpAddress } from './tcp.ts';

test('parseTcpAddress() splits host:port from the routing path', () => {
  assert.deepEqual(parseTcpAddress('127.0.0.1:1/7/router'), {
    host: '127.0.0.1',
    port: 1,
    path: '7/router',
  });
  assert.deepEqual(parseTcpAddress('[::1]:9999/694d98147d54be25/generate'), {
    host: '::1',
    port: 9999,
    path: '694d98147d54be25/generate',
  });
  assert.throws(() => parseTcpAddress('no-port/x'), /Invalid address/);
  assert.throws(() => parseTcpAddress('127.0.0.1:80'), /Invalid TCP address/);
});

const text = (bytes: Uint8Array) => new TextDecoder().decode(bytes);

test("the TCP worker speaks Dynamo's bytes: ACK, call-home handshake, prologue, items, end", async () => {
  const network = createNodeNetwork();
  const server = createTcpPlaneServer({ network });
  let callHome: ((connection: Connection) => void) | undefined;
  const dialled = new Promise<Connection>((resolve) => (callHome = resolve));
  const frontend = await network.listen('127.0.0.1', 0, (connection) => callHome?.(connection));
  let worker: Connection | undefined;
  try {
    const address = await server.serve(
      { namespace: 'dynamo', component: 'backend', endpoint: 'generate' },
      '7',
      async function* (body) {
        yield { echo: body };
      },
    );
    const { host, port, path } = parseTcpAddress('tcp' in address ? address.tcp : '');
    assert.equal(path, '7/generate');
    worker = await network.connect(host, port);
    const acks = readFrames(worker.readable, lengthPrefixedDecoder());

    // A request for an endpoint the worker does not serve: refused by text.
    await worker.write(
      encodeTcpRequest({ path: '7/nope', headers: {}, payload: new Uint8Array() }),
    );
    assert.equal(text((await acks.next()).value as Uint8Array), 'Unknown endpoint: 7/nope');

    const info = {
      address: `127.0.0.1:${frontend.port}`,
      subject: 's-1',
      context: 'r-1',
      stream_type: 'response',
    };
    const payload = encodeRequest({
      id: 'r-1',
      request_type: 'single_in',
      response_type: 'many_out',
      connection_info: { transport: 'tcp_server', info: JSON.stringify(info) },
    }, { token_ids: [1, 2] });
    await worker.write(encodeTcpRequest({ path, headers: { 'request-id': 'r-1' }, payload }));
    assert.equal(((await acks.next()).value as Uint8Array).length, 0, 'empty ACK');

    const stream = await dialled;
    const frames = readFrames(stream.readable, twoPartDecoder());
    const seen: string[] = [];
    for await (const frame of frames) {
      seen.push(
        frame.header.length > 0 ? `header ${text(frame.header)}` : `body ${text(frame.body)}`,
      );
      if (frame.header.length > 0 && text(frame.header) === '"sentinel"') break;
    }
    assert.deepEqual(seen, [
      'header {"subject":"s-1","stream_type":"response"}',
      'header {"error":null}',
      'body {"data":{"echo":{"token_ids":[1,2]}},"complete_final":false}',
      'body {"complete_final":true}',
      'header "sentinel"',
    ]);
    stream.close();
  } finally {
    worker?.close();
    await frontend.close();
    await server.close();
  }
});
