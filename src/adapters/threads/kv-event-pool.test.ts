import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { RouterEvent } from '../../core/router/kv/events.ts';
import { stringifyExactJson } from '../../core/json.ts';
import type { AppliedEvent } from '../../core/router/kv/event-pool.ts';
import { createKvIndexer, workerKey } from '../../core/router/kv/indexer.ts';
import { createKvEventPool, KvEventPoolClosedError } from './kv-event-pool.ts';

const stored = (worker: bigint, eventId: number, locals: number[], parent: bigint | null = null) =>
  ({
    worker_id: worker,
    event: {
      event_id: eventId,
      data: {
        stored: {
          parent_hash: parent,
          blocks: locals.map((l) => ({ tokens_hash: BigInt(l), block_hash: BigInt(l) * 100n })),
        },
      },
      dp_rank: 0,
    },
  }) satisfies RouterEvent;
const removed = (worker: bigint, eventId: number, locals: number[]) =>
  ({
    worker_id: worker,
    event: {
      event_id: eventId,
      data: { removed: { block_hashes: locals.map((l) => BigInt(l) * 100n) } },
      dp_rank: 0,
    },
  }) satisfies RouterEvent;

describe('createKvEventPool()', () => {
  for (const threads of [1, 3]) {
    test(`applies payloads in submission order (${threads} thread(s)), like applyEvent()`, async () => {
      const indexer = createKvIndexer();
      const reference = createKvIndexer();
      const seen: AppliedEvent[] = [];
      const pool = await createKvEventPool({ threads, indexer, onApplied: (e) => seen.push(e) });
      try {
        const ids = new Map<bigint, number>();
        let seed = 7;
        const rand = (n: number) => (seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) % n;
        for (let i = 0; i < 400; i++) {
          const worker = BigInt(1 + rand(4));
          const id = ids.get(worker) ?? 0;
          ids.set(worker, id + 1);
          const locals = Array.from({ length: 1 + rand(6) }, () => 1 + rand(5));
          const event = rand(3) === 0
            ? removed(worker, id, locals.slice(0, 2))
            : stored(worker, id, locals);
          pool.submit(stringifyExactJson(i % 2 ? [event] : event));
          reference.applyEvent(event);
          if (i === 200) {
            pool.removeWorker(2n);
            reference.removeWorker(2n);
          }
        }
        assert.ok(pool.pending >= 0);
        await pool.flush();
        assert.equal(pool.pending, 0);
        assert.equal(seen.length, 400);
        // Per worker, event ids are seen in order.
        for (const w of [1n, 2n, 3n, 4n]) {
          const mine = seen.filter((e) => e.workerId === w).map((e) => e.eventId);
          assert.deepEqual(mine, [...mine].sort((a, b) => a - b));
        }
        assert.deepEqual(indexer.dump(), reference.dump());
        assert.equal(indexer.currentSize(), reference.currentSize());
      } finally {
        await pool.close();
      }
    });
  }

  test('test_acknowledged_rank_reset_orders_after_accepted_events', async () => {
    const indexer = createKvIndexer();
    const pool = await createKvEventPool({ threads: 2, indexer });
    try {
      pool.submit(stringifyExactJson(stored(1n, 0, [1, 2])));
      pool.submit(stringifyExactJson(stored(1n, 1, [3], 200n)));
      pool.removeWorkerDpRank(1n, 0);
      pool.submit(stringifyExactJson(stored(1n, 2, [5])));
      await pool.flush();
      assert.equal(indexer.treeSize(1n, 0), 1);
      assert.equal(indexer.findMatches([5n]).scores.get(workerKey(1n, 0)), 1);
      assert.equal(indexer.findMatches([1n]).scores.size, 0);
    } finally {
      await pool.close();
    }
  });

  test('reports undecodable payloads and keeps going', async () => {
    const indexer = createKvIndexer();
    const errors: string[] = [];
    const pool = await createKvEventPool({
      threads: 2,
      indexer,
      onDecodeError: (e) => errors.push(e),
    });
    try {
      pool.submit('{broken');
      pool.submit(new TextEncoder().encode(stringifyExactJson(stored(9n, 0, [4]))));
      await pool.flush();
      assert.equal(errors.length, 1);
      assert.match(errors[0]!, /Invalid JSON/);
      assert.equal(indexer.treeSize(9n, 0), 1);
    } finally {
      await pool.close();
    }
  });

  test('test_shutdown_idempotent', async () => {
    const pool = await createKvEventPool({ threads: 2, indexer: createKvIndexer() });
    await pool.close();
    await pool.close();
    assert.equal(pool.threads, 0);
    assert.throws(() => pool.submit('{}'), KvEventPoolClosedError);
  });
});
