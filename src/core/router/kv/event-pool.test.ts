import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { RouterEvent } from './events.ts';
import { stringifyExactJson } from '../../json.ts';
import {
  type AppliedEvent,
  applyPackedEvents,
  packEvents,
  packJsonPayload,
  unpackEvents,
} from './event-pool.ts';
import { createKvIndexer, workerKey } from './indexer.ts';

const events: RouterEvent[] = [
  {
    worker_id: 18446744073709551615n,
    event: {
      event_id: 7,
      data: {
        stored: {
          parent_hash: null,
          blocks: [
            { tokens_hash: 14643705804678351452n, block_hash: 1n },
            { tokens_hash: 2n, block_hash: 9007199254740993n },
          ],
        },
      },
      dp_rank: 1,
    },
  },
  {
    worker_id: 5n,
    event: { event_id: 2 ** 40, data: { removed: { block_hashes: [3n, -1n] } }, dp_rank: 0 },
  },
  { worker_id: 5n, event: { event_id: 3, data: 'cleared', dp_rank: 2 } },
];

describe('packed KV events (event threads wire)', () => {
  test('packEvents() and unpackEvents() round-trip u64s exactly', () => {
    const unpacked = unpackEvents(packEvents(events));
    assert.deepEqual(unpacked[0], events[0]);
    assert.deepEqual(unpacked[2], events[2]);
    const removed = unpacked[1]!.event.data as { removed: { block_hashes: bigint[] } };
    assert.deepEqual(removed.removed.block_hashes, [3n, 18446744073709551615n]);
    assert.equal(unpacked[1]!.event.event_id, 2 ** 40);
  });

  test('packJsonPayload() decodes exact JSON of one event or an array', () => {
    const one = packJsonPayload(stringifyExactJson(events[0]));
    assert.deepEqual(unpackEvents(one), [events[0]]);
    const all = packJsonPayload(new TextEncoder().encode(stringifyExactJson(events)));
    assert.equal(all.count, 3);
    assert.throws(() => packJsonPayload('{nope'), SyntaxError);
  });

  test('malformed events become invalid records and the rest still apply', () => {
    const batch = packEvents([
      {
        worker_id: 1,
        event: {
          event_id: 0,
          data: { stored: { parent_hash: null, blocks: [{ tokens_hash: 'x' }] } },
        },
      },
      { worker_id: 1, event: { event_id: 1, data: { removed: { block_hashes: [1.5] } } } },
      { nonsense: true },
      {
        worker_id: 1,
        event: {
          event_id: 2,
          data: { stored: { parent_hash: null, blocks: [{ tokens_hash: 4, block_hash: 40 }] } },
        },
      },
    ]);
    const seen: AppliedEvent[] = [];
    const indexer = createKvIndexer();
    applyPackedEvents(indexer, batch, (e) => seen.push(e));
    assert.deepEqual(seen.map((e) => [e.kind, e.status, e.eventId]), [
      ['invalid', 'invalid_block', 0],
      ['invalid', 'invalid_block', 1],
      ['invalid', 'invalid_block', 0],
      ['stored', 'ok', 2],
    ]);
    assert.equal(indexer.findMatches([4n]).scores.get(workerKey(1n, 0)), 1);
  });

  test('applyPackedEvents() gives the same tree as applyEvent()', () => {
    const direct = createKvIndexer();
    const packed = createKvIndexer();
    const statuses: string[] = [];
    for (const e of events) statuses.push(direct.applyEvent(e));
    applyPackedEvents(packed, packEvents(events), (e) => statuses.push(e.status));
    assert.deepEqual(statuses.slice(3), statuses.slice(0, 3));
    assert.deepEqual(packed.dump(), direct.dump());
    assert.equal(packed.currentSize(), direct.currentSize());
  });
});
