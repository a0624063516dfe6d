import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { KvCacheEvent } from '../core/router/kv/events.ts';
import { createKvEventLog } from './kv-event-log.ts';

const stored = (id: number, parent: bigint | null, hashes: number[]): KvCacheEvent => ({
  event_id: id,
  dp_rank: 0,
  data: {
    stored: {
      parent_hash: parent,
      blocks: hashes.map((h) => ({ block_hash: BigInt(h), tokens_hash: BigInt(h * 10) })),
    },
  },
});
const removed = (id: number, hashes: number[]): KvCacheEvent => ({
  event_id: id,
  dp_rank: 0,
  data: { removed: { block_hashes: hashes.map(BigInt) } },
});

test('a range inside the buffer is answered with the original events and ids', () => {
  const log = createKvEventLog(7n);
  log.record(stored(0, null, [1, 2]));
  log.record(stored(1, 2n, [3]));
  log.record(removed(2, [3]));
  const answer = log.query({ start_event_id: 1, end_event_id: 2 });
  assert.ok('Events' in answer);
  assert.deepEqual(answer.Events.events.map((e) => e.event.event_id), [1, 2]);
  assert.equal(answer.Events.last_event_id, 2);
  assert.ok(answer.Events.events.every((e) => e.worker_id === 7n));
});

test('no start asks for a dump: one Stored per held block, parents first, ids from 0', () => {
  const log = createKvEventLog(7n, { dpRank: 1 });
  log.record({ ...stored(0, null, [1, 2, 3]), dp_rank: 1 });
  log.record({ ...stored(1, 1n, [4]), dp_rank: 1 });
  log.record({ ...removed(2, [3]), dp_rank: 1 });
  const answer = log.query({});
  assert.ok('TreeDump' in answer);
  const { events, last_event_id } = answer.TreeDump;
  assert.equal(last_event_id, 2);
  assert.deepEqual(events.map((e) => e.event.event_id), [0, 1, 2]);
  const chain = events.map((e) => {
    const data = e.event.data as unknown as {
      stored: { parent_hash: bigint | null; blocks: [{ block_hash: bigint }] };
    };
    return [data.stored.parent_hash, data.stored.blocks[0].block_hash];
  });
  assert.deepEqual(chain, [[null, 1n], [1n, 2n], [1n, 4n]]);
  assert.ok(events.every((e) => e.event.dp_rank === 1));
});

test('a range older than the buffer falls back to a dump; a future range is TooNew', () => {
  const log = createKvEventLog(7n, { bufferSize: 2 });
  log.record(stored(0, null, [1]));
  log.record(stored(1, 1n, [2]));
  log.record(stored(2, 2n, [3]));
  const old = log.query({ start_event_id: 0, end_event_id: 2 });
  assert.ok('TreeDump' in old);
  assert.equal(old.TreeDump.events.length, 3);
  const kept = log.query({ start_event_id: 1 });
  assert.ok('Events' in kept);
  assert.deepEqual(kept.Events.events.map((e) => e.event.event_id), [1, 2]);
  assert.deepEqual(log.query({ start_event_id: 5 }), {
    TooNew: { requested_start: 5, requested_end: null, newest_available: 2 },
  });
  assert.deepEqual(log.query({ start_event_id: 2, end_event_id: 1 }), {
    InvalidRange: { start_id: 2, end_id: 1 },
  });
});

test('cleared empties the dump; an evicted parent leaves its children out of it', () => {
  const log = createKvEventLog(7n);
  log.record(stored(0, null, [1, 2]));
  log.record(removed(1, [1]));
  const dump = log.query({});
  assert.ok('TreeDump' in dump);
  assert.equal(dump.TreeDump.events.length, 0);
  log.record(stored(2, null, [5]));
  log.record({ event_id: 3, dp_rank: 0, data: 'cleared' });
  assert.equal(log.size(), 0);
});
