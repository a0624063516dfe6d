import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { KvCacheEvent, RouterEvent } from './events.ts';
import { silentLogger } from '../../logger.ts';
import { createKvSubscriber, type KvQuery, type KvQueryResponse } from './subscriber.ts';

const stored = (id: number, hash: number, dpRank = 0): KvCacheEvent => ({
  event_id: id,
  dp_rank: dpRank,
  data: {
    stored: {
      parent_hash: null,
      blocks: [{ block_hash: BigInt(hash), tokens_hash: BigInt(hash) }],
    },
  },
});

function harness(answer: (id: bigint, q: KvQuery) => Promise<KvQueryResponse>) {
  const applied: Array<[string, number]> = [];
  const removed: string[] = [];
  const queries: KvQuery[] = [];
  const subscriber = createKvSubscriber({
    indexer: {
      applyEvent: (e: RouterEvent) => {
        applied.push([e.worker_id.toString(16), e.event.event_id]);
        return 'ok';
      },
      removeWorker: (id) => void removed.push(`${id.toString(16)}`),
      removeWorkerDpRank: (id, rank) => void removed.push(`${id.toString(16)}:${rank}`),
    },
    query: (id, q) => {
      queries.push(q);
      return answer(id, q);
    },
    logger: silentLogger,
  });
  return { subscriber, applied, removed, queries };
}

const settle = async (s: { pending(): number }) => {
  for (let i = 0; i < 100 && s.pending() > 0; i++) await Promise.resolve();
  await new Promise((r) => setTimeout(r, 0));
};

test('in-order events are applied; duplicates are dropped', () => {
  const h = harness(() => Promise.reject(new Error('no query expected')));
  for (const id of [0, 1, 1, 0, 2]) h.subscriber.onEvent({ worker_id: 10, event: stored(id, id) });
  assert.deepEqual(h.applied, [['a', 0], ['a', 1], ['a', 2]]);
  assert.equal(h.queries.length, 0);
});

test('a gap is filled from the worker before later events apply, in order', async () => {
  let release!: () => void;
  const gate = new Promise<void>((r) => (release = r));
  const h = harness(async (id, q) => {
    await gate;
    const events = [];
    for (let e = q.start_event_id!; e <= q.end_event_id!; e++) {
      events.push({ worker_id: id, event: stored(e, e) });
    }
    return { Events: { events, last_event_id: q.end_event_id! } };
  });
  h.subscriber.onEvent({ worker_id: 10n, event: stored(0, 0) });
  h.subscriber.onEvent({ worker_id: 10n, event: stored(3, 3) });
  h.subscriber.onEvent({ worker_id: 10n, event: stored(4, 4) });
  assert.deepEqual(h.queries, [{ dp_rank: 0, start_event_id: 1, end_event_id: 2 }]);
  assert.deepEqual(h.applied, [['a', 0]]);
  release();
  await settle(h.subscriber);
  assert.deepEqual(h.applied.map(([, id]) => id), [0, 1, 2, 3, 4]);
});

test('a range the worker no longer has comes back as a dump that replaces its blocks', async () => {
  const h = harness((id) =>
    Promise.resolve({
      TreeDump: {
        events: [{ worker_id: id, event: stored(0, 77) }, { worker_id: id, event: stored(1, 78) }],
        last_event_id: 41,
      },
    })
  );
  h.subscriber.onEvent({ worker_id: 10n, event: stored(40, 40) });
  h.subscriber.onEvent({ worker_id: 10n, event: stored(42, 42) });
  await settle(h.subscriber);
  assert.deepEqual(h.removed, ['a:0']);
  // The dump (2 events), then 42; 40 was older than the dump's last id (41).
  assert.deepEqual(h.applied.map(([, id]) => id), [0, 1, 42]);
});

test('a failed recovery does not stall the worker: later events still apply', async () => {
  const h = harness(() => Promise.reject(new Error('worker unreachable')));
  h.subscriber.onEvent({ worker_id: 10n, event: stored(5, 5) });
  h.subscriber.onEvent({ worker_id: 10n, event: stored(6, 6) });
  await settle(h.subscriber);
  assert.deepEqual(h.applied.map(([, id]) => id), [5, 6]);
});

test('a new worker is loaded from a dump per dp rank; a removed one leaves the index', async () => {
  const h = harness((id, q) =>
    Promise.resolve({
      TreeDump: { events: [{ worker_id: id, event: stored(0, 1, q.dp_rank) }], last_event_id: 3 },
    })
  );
  await h.subscriber.workerAdded(11n, 2);
  assert.deepEqual(h.queries.map((q) => [q.dp_rank, q.start_event_id]), [[0, null], [1, null]]);
  h.subscriber.onEvent({ worker_id: 11n, event: stored(3, 3) }); // already in the dump
  h.subscriber.onEvent({ worker_id: 11n, event: stored(4, 4) });
  assert.deepEqual(h.applied.map(([, id]) => id), [0, 0, 4]);
  h.subscriber.workerRemoved(11n);
  assert.ok(h.removed.includes('b'));
});

test('--router-reset-states: the first event seen is the baseline, not a gap', () => {
  const applied: number[] = [];
  const subscriber = createKvSubscriber({
    indexer: {
      applyEvent: (e) => {
        applied.push(e.event.event_id);
        return 'ok';
      },
      removeWorker: () => {},
      removeWorkerDpRank: () => {},
    },
    query: () => Promise.reject(new Error('no recovery expected')),
    logger: silentLogger,
    recoverOnFirstEvent: false,
  });
  subscriber.onEvent({ worker_id: 10n, event: stored(40, 40) });
  subscriber.onEvent({ worker_id: 10n, event: stored(41, 41) });
  assert.deepEqual(applied, [40, 41]);
  assert.equal(subscriber.pending(), 0);
});
