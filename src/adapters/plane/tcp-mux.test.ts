/**
 * The response mux beyond the shared request-plane contract: its bytes on the wire, the
 * negotiation between old and new frontends and workers, connection reuse, back-pressure, and a
 * frontend going away mid-stream.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { TransportAddress } from '../../core/discovery/types.ts';
import type { Connection, Network } from '../../core/net.ts';
import { type DecodeResult, readFrames } from './wire/frame-reader.ts';
import { decodeRequest, encodeRequest } from './wire/messages.ts';
import { encodeTcpRequest, lengthPrefixedDecoder, tcpRequestDecoder } from './wire/tcp-frames.ts';
import { encodeTwoPart, twoPartDecoder } from './wire/two-part.ts';
import type { HandlerContext } from '../../core/plane/types.ts';
import { createNodeNetwork } from '../../runtime/net.ts';
import { waitFor } from '../../../tests/helpers/wait.ts';
import {
  createTcpPlaneClient,
  createTcpPlaneServer,
  parseTcpAddress,
  responseTransports,
} from './tcp.ts';
import { MUX_WINDOW } from './tcp-mux.ts';
import {
  encodeMuxFrame,
  encodeU32,
  muxBatchDecoder,
  MuxKind,
  streamKey,
} from './tcp-mux-frames.ts';

const ENDPOINT = { namespace: 'test', component: 'backend', endpoint: 'generate' };
const text = (bytes: Uint8Array) => new TextDecoder().decode(bytes);
const tcpOf = (address: TransportAddress) => ('tcp' in address ? address.tcp : '');

/** A real network that counts the connections each listener accepted. */
function countingNetwork(): Network & { accepted: () => number } {
  const network = createNodeNetwork();
  let accepted = 0;
  return {
    accepted: () => accepted,
    connect: (host, port) => network.connect(host, port),
    listen: (host, port, onConnection) =>
      network.listen(host, port, (connection) => {
        accepted++;
        onConnection(connection);
      }),
  };
}

async function collect(items: AsyncIterable<unknown>): Promise<unknown[]> {
  const out: unknown[] = [];
  for await (const item of items) out.push(item);
  return out;
}

const request = (body: unknown) => ({ id: crypto.randomUUID(), headers: {}, body });
const signal = () => new AbortController().signal;

test('mux frames: 24-byte header, big-endian length, kind, zero flags, the stream UUID', () => {
  const id = '0123abcd-4567-89ef-0123-456789abcdef';
  const frame = encodeMuxFrame(MuxKind.WindowUpdate, streamKey(id), encodeU32(65536));
  assert.deepEqual(
    [...frame.subarray(0, 8)],
    [0, 0, 0, 4, 6, 0, 0, 0],
  );
  assert.equal(
    [...frame.subarray(8, 24)].map((b) => b.toString(16).padStart(2, '0')).join(''),
    '0123abcd456789ef0123456789abcdef',
  );
  assert.deepEqual([...frame.subarray(24)], [0, 1, 0, 0]);
  // Two frames and half a third in one read decode as one batch; the rest waits.
  const data = encodeMuxFrame(MuxKind.Data, streamKey(id), new TextEncoder().encode('{"a":1}'));
  const bytes = new Uint8Array([...frame, ...data, ...data.subarray(0, 10)]);
  const result = muxBatchDecoder().decode(bytes);
  assert.ok('frame' in result);
  assert.equal(result.size, frame.length + data.length);
  assert.deepEqual(result.frame.map((f) => [f.kind, f.stream, text(f.payload)]), [
    [MuxKind.WindowUpdate, streamKey(id), '\u0000\u0001\u0000\u0000'],
    [MuxKind.Data, streamKey(id), '{"a":1}'],
  ]);
  assert.deepEqual(muxBatchDecoder().decode(data.subarray(0, 10)), { need: 24 });
  assert.throws(
    () => muxBatchDecoder({ maxSize: 4 }).decode(data),
    /Mux frame too large: 7 bytes exceeds the 4-byte limit/,
  );
});

test("a mux worker speaks Dynamo's bytes: handshake, open, prologue, data, end", async () => {
  const network = createNodeNetwork();
  const server = createTcpPlaneServer({ network });
  let dialled: ((connection: Connection) => void) | undefined;
  const incoming = new Promise<Connection>((resolve) => (dialled = resolve));
  const frontend = await network.listen('127.0.0.1', 0, (connection) => dialled?.(connection));
  let worker: Connection | undefined;
  let stream: Connection | undefined;
  try {
    const address = await server.serve(ENDPOINT, '7', async function* (body) {
      yield { echo: body };
    });
    assert.deepEqual(responseTransports(tcpOf(address)), ['tcp_server', 'tcp_response_mux_v1']);
    const { host, port } = parseTcpAddress(tcpOf(address));
    worker = await network.connect(host, port);
    const acks = readFrames(worker.readable, lengthPrefixedDecoder());
    const streamId = '11111111-2222-3333-4444-555555555555';
    const info = {
      address: `127.0.0.1:${frontend.port}`,
      frontend_server_id: 'f-1',
      stream_id: streamId,
      context: 'r-1',
      version: 1,
    };
    const payload = encodeRequest({
      id: 'r-1',
      request_type: 'single_in',
      response_type: 'many_out',
      connection_info: { transport: 'tcp_response_mux_v1', info: JSON.stringify(info) },
    }, { token_ids: [1] });
    // The path as an old frontend sends it: with the query the worker published.
    const path = tcpOf(address).slice(tcpOf(address).indexOf('/') + 1);
    assert.match(path, /^7\/generate\?response_transports=/);
    await worker.write(encodeTcpRequest({ path, headers: {}, payload }));
    assert.equal(((await acks.next()).value as Uint8Array).length, 0, 'empty ACK');

    stream = await incoming;
    // One reader for both framings: a TwoPart handshake, then mux frames.
    let mux = false;
    const two = twoPartDecoder();
    const batches = muxBatchDecoder();
    const frames = readFrames<unknown>(stream.readable, {
      decode: (bytes): DecodeResult<unknown> => (mux ? batches : two).decode(bytes),
    });
    const first = await frames.next();
    const handshake = JSON.parse(text((first.value as { header: Uint8Array }).header));
    assert.equal(handshake.kind, 'response_mux');
    assert.equal(handshake.version, 1);
    assert.equal(handshake.frontend_server_id, 'f-1');
    assert.equal(typeof handshake.connection_id, 'string');
    mux = true;
    const seen: string[] = [];
    for await (const batch of frames) {
      for (const frame of batch as { kind: number; stream: string; payload: Uint8Array }[]) {
        assert.equal(frame.stream, streamKey(streamId));
        seen.push(`${frame.kind} ${text(frame.payload)}`);
      }
      if (seen.at(-1)?.startsWith(`${MuxKind.End} `)) break;
    }
    assert.deepEqual(seen, [
      `${MuxKind.Prologue} `,
      `${MuxKind.Prologue} {"error":null}`,
      `${MuxKind.Data} {"data":{"echo":{"token_ids":[1]}},"complete_final":false}`,
      `${MuxKind.End} `,
    ]);
  } finally {
    stream?.close();
    worker?.close();
    await frontend.close();
    await server.close();
  }
});

test('a Dynamo-style frontend that sends the published path with its query is called home', async () => {
  const network = createNodeNetwork();
  const server = createTcpPlaneServer({ network });
  let dialled: ((connection: Connection) => void) | undefined;
  const incoming = new Promise<Connection>((resolve) => (dialled = resolve));
  const frontend = await network.listen('127.0.0.1', 0, (connection) => dialled?.(connection));
  let worker: Connection | undefined;
  let stream: Connection | undefined;
  try {
    const address = tcpOf(
      await server.serve(ENDPOINT, '7', async function* () {
        yield 'ok';
      }),
    );
    const { host, port } = parseTcpAddress(address);
    worker = await network.connect(host, port);
    const acks = readFrames(worker.readable, lengthPrefixedDecoder());
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
    }, {});
    const path = address.slice(address.indexOf('/') + 1);
    await worker.write(encodeTcpRequest({ path, headers: {}, payload }));
    assert.equal(((await acks.next()).value as Uint8Array).length, 0, 'empty ACK');
    stream = await incoming;
    const first = await readFrames(stream.readable, twoPartDecoder()).next();
    assert.equal(
      text((first.value as { header: Uint8Array }).header),
      '{"subject":"s-1","stream_type":"response"}',
    );
  } finally {
    stream?.close();
    worker?.close();
    await frontend.close();
    await server.close();
  }
});

test('a new frontend calls a classic-only worker home, one connection per request', async () => {
  const network = countingNetwork();
  const client = createTcpPlaneClient({ network });
  const server = createTcpPlaneServer({ network: createNodeNetwork(), responseMux: false });
  try {
    const address = await server.serve(ENDPOINT, '7', async function* (body) {
      yield body;
    });
    assert.doesNotMatch(tcpOf(address), /\?/, 'a classic worker publishes no query');
    assert.deepEqual(responseTransports(tcpOf(address)), ['tcp_server']);
    for (let n = 0; n < 3; n++) {
      assert.deepEqual(
        await collect(await client.send(address, request(n), { signal: signal() })),
        [n],
      );
    }
    assert.equal(network.accepted(), 3);
  } finally {
    await client.close();
    await server.close();
  }
});

test('an old frontend (mux off) calls a mux worker home classically', async () => {
  const network = countingNetwork();
  const client = createTcpPlaneClient({ network, responseMux: false });
  const server = createTcpPlaneServer({ network: createNodeNetwork() });
  try {
    const address = await server.serve(ENDPOINT, '7', async function* (body) {
      yield body;
    });
    assert.match(tcpOf(address), /\?response_transports=tcp_server,tcp_response_mux_v1$/);
    for (let n = 0; n < 3; n++) {
      assert.deepEqual(
        await collect(await client.send(address, request(n), { signal: signal() })),
        [n],
      );
    }
    assert.equal(network.accepted(), 3);
  } finally {
    await client.close();
    await server.close();
  }
});

test('mux: many streams share at most 4 persistent connections, reused by later streams', async () => {
  const network = countingNetwork();
  const client = createTcpPlaneClient({ network });
  const server = createTcpPlaneServer({ network: createNodeNetwork() });
  try {
    const address = await server.serve(ENDPOINT, '7', async function* (body) {
      for (let i = 0; i < 3; i++) yield { body, i };
    });
    const round = () =>
      Promise.all(
        Array.from({ length: 32 }, async (_, n) =>
          assert.deepEqual(
            await collect(await client.send(address, request(n), { signal: signal() })),
            [0, 1, 2].map((i) => ({ body: n, i })),
          )),
      );
    await round();
    const opened = network.accepted();
    assert.ok(opened >= 1 && opened <= 4, `${opened} connections`);
    await round();
    assert.equal(network.accepted(), opened, 'the second round opened no connection');
  } finally {
    await client.close();
    await server.close();
  }
});

test('mux: a frontend that stops reading holds the worker at one window (back-pressure)', async () => {
  const network = createNodeNetwork();
  const client = createTcpPlaneClient({ network });
  const server = createTcpPlaneServer({ network });
  const item = 'x'.repeat(16 * 1024);
  let produced = 0;
  try {
    const address = await server.serve(ENDPOINT, '7', async function* (_body, context) {
      while (!context.signal.aborted) {
        produced++;
        yield item;
        // A producer that lets the event loop run, so unbounded buffering would show.
        await new Promise((resolve) => setTimeout(resolve, 0));
      }
    });
    const controller = new AbortController();
    const stream = await client.send(address, request({}), { signal: controller.signal });
    const iterator = stream[Symbol.asyncIterator]();
    assert.equal((await iterator.next()).value, item);
    // The worker fills the window, then waits for credits that never come.
    const perWindow = Math.ceil(MUX_WINDOW / item.length);
    await waitFor(() => produced >= perWindow, { what: 'the worker to fill its window' });
    // Let the worker run: a full round trip through the same worker and connection.
    const other = await server.serve({ ...ENDPOINT, endpoint: 'ping' }, '7', async function* () {
      yield 'pong';
    });
    for (let i = 0; i < 3; i++) {
      assert.deepEqual(await collect(await client.send(other, request(i), { signal: signal() })), [
        'pong',
      ]);
    }
    assert.ok(produced <= perWindow + 2, `${produced} items produced, window is ${perWindow}`);
    // Reading on returns credits: the stream moves again, in order.
    for (let i = 0; i < 3 * perWindow; i++) {
      assert.equal((await iterator.next()).value, item);
    }
    assert.ok(produced > 3 * perWindow);
    controller.abort();
  } finally {
    await client.close();
    await server.close();
  }
});

test('mux: a frontend that dies mid-stream aborts the worker handler', async () => {
  const network = createNodeNetwork();
  const client = createTcpPlaneClient({ network });
  const server = createTcpPlaneServer({ network });
  const seen: HandlerContext[] = [];
  try {
    const address = await server.serve(ENDPOINT, '7', async function* (_body, context) {
      seen.push(context);
      yield 'first';
      await new Promise((resolve) => context.signal.addEventListener('abort', resolve));
    });
    const stream = await client.send(address, request({}), { signal: signal() });
    const iterator = stream[Symbol.asyncIterator]();
    assert.deepEqual(await iterator.next(), { done: false, value: 'first' });
    // The reader on the closed frontend is not left hanging either.
    const failed = assert.rejects(
      iterator.next(),
      (error: Error & { kind?: string }) => error.kind === 'disconnected',
    );
    await client.close();
    await waitFor(() => seen[0]?.signal.aborted, { what: 'the handler to abort' });
    await failed;
    assert.match(String(seen[0]!.signal.reason?.message), /cancelled by the frontend/);
  } finally {
    await client.close();
    await server.close();
  }
});

test('mux: a stream the frontend gave up before it opened is killed when it opens', async () => {
  const network = createNodeNetwork();
  const client = createTcpPlaneClient({ network, callHomeTimeoutMs: 50 });
  let requested: ((payload: Uint8Array) => void) | undefined;
  const request$ = new Promise<Uint8Array>((resolve) => (requested = resolve));
  // A fake worker: it acknowledges the request but opens the stream only when told to.
  const worker = await network.listen('127.0.0.1', 0, (connection) => {
    void (async () => {
      const decoder = tcpRequestDecoder();
      for await (const frame of readFrames(connection.readable, decoder)) {
        await connection.write(new Uint8Array(4));
        requested?.(frame.payload);
      }
    })();
  });
  let back: Connection | undefined;
  try {
    const address = {
      tcp: `127.0.0.1:${worker.port}/7/generate?response_transports=tcp_response_mux_v1`,
    };
    await assert.rejects(
      client.send(address, request({}), { signal: signal() }),
      /did not open its response stream within 50 ms/,
    );
    const control = decodeRequest(await request$).control;
    assert.equal(control.connection_info?.transport, 'tcp_response_mux_v1');
    const info = JSON.parse(control.connection_info!.info);
    const { host, port } = parseTcpAddress(`${info.address}/x`);
    back = await network.connect(host, port);
    const handshake = {
      kind: 'response_mux',
      version: 1,
      frontend_server_id: info.frontend_server_id,
      connection_id: 'c-1',
    };
    await back.write(
      encodeTwoPart({ header: new TextEncoder().encode(JSON.stringify(handshake)) }),
    );
    await back.write(encodeMuxFrame(MuxKind.Prologue, streamKey(info.stream_id)));
    const kinds: number[] = [];
    for await (const batch of readFrames(back.readable, muxBatchDecoder())) {
      for (const frame of batch) {
        kinds.push(frame.kind);
        if (frame.kind === MuxKind.Kill) assert.equal(frame.stream, streamKey(info.stream_id));
      }
      if (kinds.includes(MuxKind.Kill)) break;
    }
    assert.deepEqual(kinds, [MuxKind.ConnectionAck, MuxKind.Kill]);
  } finally {
    back?.close();
    await client.close();
    await worker.close();
  }
});
