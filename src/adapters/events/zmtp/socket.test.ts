import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createNodeNetwork } from '../../../runtime/net.ts';
import { waitFor } from '../../../../tests/helpers/wait.ts';
import { createZmqPublisher, createZmqSubscriber } from './socket.ts';
import {
  decodeCommand,
  decodeGreeting,
  decodeMetadata,
  encodeGreeting,
  encodeMessage,
  encodeReady,
  parseTcpEndpoint,
  ZmtpReader,
} from './zmtp.ts';

const te = new TextEncoder();
const td = new TextDecoder();
const network = createNodeNetwork();

test('ZMTP: the greeting says 3.1 NULL and reads back', () => {
  const greeting = encodeGreeting();
  assert.equal(greeting.length, 64);
  assert.deepEqual(decodeGreeting(greeting), { major: 3, minor: 1, mechanism: 'NULL' });
  const bad = greeting.slice();
  bad[10] = 2;
  assert.throws(() => decodeGreeting(bad), /version/);
});

test('ZMTP: frames split across chunks reassemble, short and long, with MORE', () => {
  const long = new Uint8Array(300).fill(9);
  const wire = new Uint8Array([
    ...encodeGreeting(),
    ...encodeReady({ 'Socket-Type': 'PUB' }),
    ...encodeMessage([te.encode('topic'), long, new Uint8Array(0)]),
  ]);
  const reader = new ZmtpReader();
  const frames = [];
  for (let i = 0; i < wire.length; i += 7) {
    reader.push(wire.subarray(i, i + 7));
    if (!reader.readGreeting()) continue;
    for (let f = reader.next(); f; f = reader.next()) frames.push(f);
  }
  assert.equal(frames.length, 4);
  assert.equal(frames[0]!.command, true);
  const ready = decodeCommand(frames[0]!.body);
  assert.equal(ready.name, 'READY');
  assert.equal(decodeMetadata(ready.data).get('socket-type'), 'PUB');
  assert.deepEqual(frames.slice(1).map((f) => [f.more, f.body.length]), [
    [true, 5],
    [true, 300],
    [false, 0],
  ]);
  assert.equal(wire[64 + encodeReady({ 'Socket-Type': 'PUB' }).length + 7], 0x03); // MORE|LONG
});

test('ZMTP: endpoints parse, and bad ones are refused', () => {
  assert.deepEqual(parseTcpEndpoint('tcp://127.0.0.1:5557'), { host: '127.0.0.1', port: 5557 });
  assert.deepEqual(parseTcpEndpoint('tcp://[::1]:9'), { host: '::1', port: 9 });
  assert.throws(() => parseTcpEndpoint('ipc:///tmp/x'), /Invalid ZMQ endpoint/);
});

test('PUB/SUB: topic prefixes filter, unsubscribe stops a prefix', async () => {
  const pub = await createZmqPublisher({ network });
  const got: string[][] = [];
  const sub = createZmqSubscriber({
    network,
    onMessage: (frames) => got.push(frames.map((f) => td.decode(f))),
  });
  try {
    sub.subscribe('a.');
    sub.subscribe('b.');
    sub.connect(pub.endpoint);
    await sub.ready(5000);
    assert.equal(await pub.waitForSubscriber('b.x', 5000), true);
    pub.send([te.encode('a.1'), te.encode('x')]);
    pub.send([te.encode('c.1'), te.encode('y')]);
    pub.send([te.encode('b.1'), te.encode('z')]);
    await waitFor(() => got.length >= 2, { what: '2 messages' });
    assert.deepEqual(got, [['a.1', 'x'], ['b.1', 'z']]);
    sub.unsubscribe('a.');
    await waitFor(() => pub.subscribers('a.2') === 0, { what: 'the unsubscribe' });
    pub.send([te.encode('a.2'), te.encode('gone')]);
    pub.send([te.encode('b.2'), te.encode('kept')]);
    await waitFor(() => got.length >= 3, { what: 'the third message' });
    assert.deepEqual(got[2], ['b.2', 'kept']);
    assert.equal(got.length, 3);
  } finally {
    await sub.close();
    await pub.close();
  }
});

test('PUB: a subscriber over the high-water mark loses messages; publishing never waits', async () => {
  const pub = await createZmqPublisher({ network, highWaterMark: 10 });
  let received = 0;
  const sub = createZmqSubscriber({ network, onMessage: () => void received++ });
  try {
    sub.subscribe('');
    sub.connect(pub.endpoint);
    await sub.ready(5000);
    await pub.waitForSubscriber('', 5000);
    const payload = new Uint8Array(1024);
    for (let i = 0; i < 1000; i++) pub.send([te.encode('t'), payload]); // synchronous
    assert.ok(pub.dropped > 0, `dropped ${pub.dropped}`);
    await pub.flush();
    await waitFor(() => received === 1000 - pub.dropped, { what: 'the kept messages' });
  } finally {
    await sub.close();
    await pub.close();
  }
});

test('SUB: reconnects with backoff when the publisher comes back on the same port', async () => {
  const first = await createZmqPublisher({ network });
  const port = first.port;
  const got: string[] = [];
  const sub = createZmqSubscriber({
    network,
    reconnectMinMs: 10,
    reconnectMaxMs: 50,
    onMessage: (frames) => got.push(td.decode(frames[1])),
  });
  let second: Awaited<ReturnType<typeof createZmqPublisher>> | undefined;
  try {
    sub.subscribe('');
    sub.connect(first.endpoint);
    await sub.ready(5000);
    await first.waitForSubscriber('', 5000);
    first.send([te.encode('t'), te.encode('one')]);
    await waitFor(() => got.length === 1, { what: 'the first message' });
    await first.close();
    await waitFor(() => !sub.isReady(first.endpoint), { what: 'the disconnect' });
    second = await createZmqPublisher({ network, port });
    await sub.ready(5000);
    assert.equal(await second.waitForSubscriber('', 5000), true);
    second.send([te.encode('t'), te.encode('two')]);
    await waitFor(() => got.length === 2, { what: 'the message after reconnecting' });
    assert.deepEqual(got, ['one', 'two']);
  } finally {
    await sub.close();
    await second?.close();
  }
});

test('SUB: ready() is bounded when nothing listens', async () => {
  const pub = await createZmqPublisher({ network });
  const endpoint = pub.endpoint;
  await pub.close();
  const sub = createZmqSubscriber({ network, onMessage: () => {}, reconnectMinMs: 20 });
  try {
    sub.connect(endpoint);
    await assert.rejects(sub.ready(200), /not ready/);
  } finally {
    await sub.close();
  }
});
