/**
 * Interop with real libzmq (Debian's python3-zmq and python3-msgpack, run by /usr/bin/python3):
 * a python publisher of vLLM-format KV events feeds our SUB and engine-event decoder, and a
 * python SUB reads our PUB (raw frames, and the event plane's 4-frame envelope). Skipped when
 * /usr/bin/python3 cannot import zmq and msgpack.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { createMemKvServer, createMemStore } from '../../src/adapters/discovery/mem.ts';
import { createZmqEventPlane } from '../../src/adapters/events/zmq.ts';
import {
  createEngineEventDecoder,
  subscribeEngineEvents,
} from '../../src/adapters/events/engine-events.ts';
import type { RouterEvent } from '../../src/core/router/kv/events.ts';
import { createBlockHasher } from '../../src/core/router/kv/hash.ts';
import { parseExactJson } from '../../src/core/json.ts';
import { createZmqPublisher } from '../../src/adapters/events/zmtp/socket.ts';
import { createNodeNetwork } from '../../src/runtime/net.ts';
import { waitFor } from '../helpers/wait.ts';

const PYTHON = '/usr/bin/python3';
const FIXTURES = fileURLToPath(new URL('../fixtures/zmq/', import.meta.url));

const probe = spawnSync(PYTHON, ['-c', 'import zmq, msgpack'], { encoding: 'utf8' });
const skip = probe.status === 0
  ? false
  : `${PYTHON} cannot import zmq and msgpack (apt-get install python3-zmq python3-msgpack)`;

/** A python child whose stdout lines are collected; always killed by `stop()`. */
function python(script: string, args: string[] = []) {
  const child: ChildProcess = spawn(PYTHON, [FIXTURES + script, ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const lines: string[] = [];
  let stderr = '';
  let buffer = '';
  child.stdout!.setEncoding('utf8');
  child.stdout!.on('data', (chunk: string) => {
    buffer += chunk;
    const parts = buffer.split('\n');
    buffer = parts.pop()!;
    lines.push(...parts.filter((l) => l !== ''));
  });
  child.stderr!.setEncoding('utf8');
  child.stderr!.on('data', (chunk: string) => void (stderr += chunk));
  const exited = new Promise<number | null>((resolve) =>
    child.once('exit', (code) => resolve(code))
  );
  return {
    lines,
    exited,
    stderr: () => stderr,
    line: (match: (line: string) => boolean, what: string) =>
      waitFor(() => lines.find(match), { timeoutMs: 10_000, what: `${what}; stderr: ${stderr}` }),
    async stop() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      await exited;
    },
  };
}

const U64 = 1n << 64n;

/** What sub.py prints for a 4-frame event-plane message. */
interface PlaneLine {
  frames: number;
  topic: string;
  publisher_id: string;
  sequence: number;
  header: number[];
  envelope_topic: string;
  envelope_publisher_id: string;
  published_at: number;
  payload: { data: { removed: { block_hashes: bigint[] } } };
}

test('a libzmq publisher of vLLM-format events feeds our SUB and decoder', { skip }, async () => {
  const hasher = await createBlockHasher();
  const workerId = 0x694d98147d54be25n;
  const decoder = createEngineEventDecoder({ hasher, blockSize: 4, workerId });
  const pub = python('vllm_pub.py');
  const received: RouterEvent[] = [];
  const seqs: bigint[] = [];
  let subscription: ReturnType<typeof subscribeEngineEvents> | undefined;
  try {
    const port = Number((await pub.line((l) => l.startsWith('port '), 'port')).slice(5));
    subscription = subscribeEngineEvents({
      network: createNodeNetwork(),
      endpoint: `tcp://127.0.0.1:${port}`,
      topic: 'kv@',
      decoder,
      onEvents: (events, message) => {
        received.push(...events);
        seqs.push(message.seq);
      },
    });
    await subscription.ready(10_000);
    const sub = subscription;
    await waitFor(() => seqs.length === 3 && sub.skipped === 1, {
      timeoutMs: 10_000,
      what: `3 batches and 1 skipped message (got ${seqs.length}, ${sub.skipped})`,
    });
    assert.deepEqual(seqs, [0n, 1n, 2n]);
    const local = hasher.localHashes([1, 2, 3, 4, 5, 6, 7, 8], { blockSize: 4 });
    const lora = await hasher.prepare({ loraName: 'my-adapter' });
    const loraLocal = hasher.localHashes([9, 10, 11, 12], { blockSize: 4, seed: lora });
    assert.equal(local[0], 14643705804678351452n); // router reference §1.4
    assert.deepEqual(received, [
      {
        worker_id: workerId,
        event: {
          event_id: 0,
          dp_rank: 0,
          data: {
            stored: {
              parent_hash: null,
              blocks: [
                { block_hash: U64 - 5n, tokens_hash: local[0] },
                { block_hash: 1n << 40n, tokens_hash: local[1] },
              ],
            },
          },
        },
      },
      {
        worker_id: workerId,
        event: {
          event_id: 0,
          dp_rank: 1,
          data: {
            stored: {
              parent_hash: 1n << 40n,
              blocks: [{ block_hash: 77n, tokens_hash: loraLocal[0] }],
            },
          },
        },
      },
      {
        worker_id: workerId,
        event: { event_id: 1, dp_rank: 0, data: { removed: { block_hashes: [U64 - 5n] } } },
      },
      { worker_id: workerId, event: { event_id: 2, dp_rank: 0, data: 'cleared' } },
    ]);
    assert.equal(await pub.exited, 0, pub.stderr());
  } finally {
    await subscription?.close();
    await pub.stop();
  }
});

test(
  'a libzmq SUB reads our PUB: prefix filtering, multipart and long frames',
  { skip },
  async () => {
    const publisher = await createZmqPublisher({ network: createNodeNetwork() });
    const sub = python('sub.py', [publisher.endpoint, 'kv', '2']);
    try {
      await sub.line((l) => l === 'ready', 'ready');
      assert.equal(await publisher.waitForSubscriber('kv', 10_000), true);
      const big = new Uint8Array(70_000).fill(7);
      const te = new TextEncoder();
      publisher.send([te.encode('other'), te.encode('not for you')]);
      publisher.send([te.encode('kv-events'), te.encode('a'), big]);
      publisher.send([te.encode('kv'), new Uint8Array(0)]);
      await waitFor(() => sub.lines.length >= 3, { timeoutMs: 10_000, what: '2 messages' });
      const [first, second] = sub.lines.slice(1).map((l) => JSON.parse(l));
      assert.equal(first.frames, 3);
      assert.equal(first.topic, 'kv-events');
      assert.equal(first.hex[1], '61');
      assert.equal(first.hex[2], '07'.repeat(70_000));
      assert.deepEqual(second, { frames: 2, topic: 'kv', hex: ['6b76', ''] });
      assert.equal(await sub.exited, 0, sub.stderr());
    } finally {
      await sub.stop();
      await publisher.close();
    }
  },
);

test(
  'a libzmq SUB reads the event plane: 4 frames and the msgpack envelope',
  { skip },
  async () => {
    const server = createMemKvServer();
    const store = createMemStore({ server });
    const plane = createZmqEventPlane({
      store,
      network: createNodeNetwork(),
      publisherId: '694d98147d54be25',
      now: () => 1_700_000,
    });
    let sub: ReturnType<typeof python> | undefined;
    try {
      const subject = 'namespace.dynamo.component.backend.kv-events';
      const key = await plane.advertise(subject);
      assert.equal(
        key,
        'v1/event_channels/namespace/dynamo/component/backend/topic/kv-events/694d98147d54be25',
      );
      const value = JSON.parse(server.list(key)[0]!.value);
      const endpoint = value.transport.config.endpoint as string;
      assert.match(endpoint, /^tcp:\/\/127\.0\.0\.1:\d+$/);
      assert.deepEqual(value.scope, {
        kind: 'component',
        namespace: 'dynamo',
        component: 'backend',
      });
      sub = python('sub.py', [endpoint, 'kv-events', '1']);
      await sub.line((l) => l === 'ready', 'ready');
      const s = sub;
      // The channel is already open, so wait for the python SUB before publishing.
      await waitFor(() => s.lines.length > 0, { what: 'ready' });
      const payload = { event_id: 3, data: { removed: { block_hashes: [2n ** 63n + 1n] } } };
      // Publish until the SUB (which may still be joining) has one: PUB/SUB has no backlog.
      await waitFor(async () => {
        await plane.publish(subject, payload);
        return s.lines.length >= 2;
      }, { timeoutMs: 10_000, intervalMs: 50, what: 'an event at the python SUB' });
      const got = parseExactJson(s.lines[1]!) as PlaneLine;
      assert.equal(got.frames, 4);
      assert.equal(got.topic, 'kv-events');
      assert.equal(got.publisher_id, '694d98147d54be25');
      assert.equal(got.envelope_publisher_id, '694d98147d54be25');
      assert.equal(got.envelope_topic, 'kv-events');
      assert.equal(got.published_at, 1_700_000);
      assert.equal(got.header[0], 1);
      assert.deepEqual(got.payload.data.removed.block_hashes, [2n ** 63n + 1n]);
    } finally {
      await sub?.stop();
      await plane.close();
      await store.close();
    }
  },
);
