// Ports of the router reference §8.2 approximate-mode tests (names kept). Time is a fake clock.
import assert from 'node:assert/strict';
import { before, describe, test } from 'node:test';
import { type BlockHasher, createBlockHasher } from './hash.ts';
import { createApproxIndexer } from './approx.ts';
import { createKvIndexer, type KvIndexer, workerKey } from './indexer.ts';

const clock = () => {
  let t = 0;
  return { now: () => t, advance: (ms: number) => (t += ms) };
};
const range = (from: number, to: number) => Array.from({ length: to - from }, (_, i) => from + i);
const W1 = workerKey(1n, 0);

describe('ApproxIndexer (reference §8.2)', () => {
  let hasher: BlockHasher;
  before(async () => {
    hasher = await createBlockHasher();
  });
  const hashes = (tokens: number[]) => {
    const local = hasher.localHashes64(tokens, { blockSize: 4 });
    return { local, seq: hasher.sequenceHashes64(local) };
  };
  const route = (
    approx: ReturnType<typeof createApproxIndexer>,
    tokens: number[],
    worker = 1n,
    dpRank = 0,
  ) => {
    const { local, seq } = hashes(tokens);
    assert.equal(approx.recordRouting(worker, dpRank, local, seq), 'ok');
    return local;
  };

  test('test_prune_manager_expiry', () => {
    const c = clock();
    const approx = createApproxIndexer({ indexer: createKvIndexer(), ttlMs: 50, now: c.now });
    route(approx, range(0, 12)); // 3 blocks
    assert.equal(approx.tracked(), 3);
    c.advance(30);
    assert.equal(approx.expire(), 0);
    c.advance(40); // 70 ms
    assert.equal(approx.expire(), 3);
    assert.equal(approx.tracked(), 0);
    assert.equal(approx.indexer.currentSize(), 0);
  });

  test('test_prune_manager_update_resets_ttl', () => {
    const c = clock();
    const approx = createApproxIndexer({ indexer: createKvIndexer(), ttlMs: 50, now: c.now });
    const local = route(approx, range(0, 4));
    c.advance(25);
    route(approx, range(0, 4)); // re-insert: expires at 75
    c.advance(30); // 55 ms
    assert.equal(approx.expire(), 0);
    assert.equal(approx.indexer.findMatches(local).scores.get(W1), 1);
    assert.equal(approx.nextExpiry(), 75);
    c.advance(20); // 75 ms
    assert.equal(approx.expire(), 1);
    assert.equal(approx.indexer.findMatches(local).scores.size, 0);
  });

  test('test_approx_kv_indexer_basic_flow', () => {
    const c = clock();
    const approx = createApproxIndexer({ indexer: createKvIndexer(), ttlMs: 1000, now: c.now });
    const tokens = range(0, 8);
    const { local } = hashes(tokens);
    assert.equal(approx.indexer.findMatches(local).scores.size, 0);
    route(approx, tokens.slice(0, 4));
    assert.equal(approx.indexer.findMatches(local).scores.get(W1), 1);
    c.advance(1000);
    approx.expire();
    assert.equal(approx.indexer.findMatches(local).scores.size, 0);
  });

  test('test_remove_worker', () => {
    const c = clock();
    const approx = createApproxIndexer({ indexer: createKvIndexer(), ttlMs: 1000, now: c.now });
    const local = route(approx, range(0, 8), 1n);
    route(approx, range(0, 8), 2n);
    approx.removeWorker(1n);
    const scores = approx.indexer.findMatches(local).scores;
    assert.equal(scores.get(W1), undefined);
    assert.equal(scores.get(workerKey(2n, 0)), 2);
  });

  test('test_approx_routing_decision_creates_match', () => {
    const approx = createApproxIndexer({ indexer: createKvIndexer(), now: () => 0 });
    const local = route(approx, range(0, 16), 7n, 1);
    const { scores, treeSizes } = approx.indexer.findMatches(local);
    assert.equal(scores.get(workerKey(7n, 1)), 4);
    assert.equal(treeSizes.get(workerKey(7n, 1)), 4);
  });

  test('test_approx_ttl_expiry_removes_match', () => {
    const c = clock();
    const approx = createApproxIndexer({ indexer: createKvIndexer(), ttlMs: 100, now: c.now });
    const local = route(approx, range(0, 16));
    c.advance(99);
    approx.expire();
    assert.equal(approx.indexer.findMatches(local).scores.get(W1), 4);
    c.advance(1);
    assert.equal(approx.expire(), 4);
    assert.equal(approx.indexer.findMatches(local).scores.size, 0);
    assert.equal(approx.indexer.treeSize(1n, 0), 0);
  });

  test('test_approx_remove_worker_cleans_prune_metadata', () => {
    const c = clock();
    const approx = createApproxIndexer({ indexer: createKvIndexer(), ttlMs: 100, now: c.now });
    route(approx, range(0, 16), 1n);
    route(approx, range(0, 8), 2n);
    approx.removeWorker(1n);
    assert.equal(approx.tracked(), 2);
    // A new worker 1 is not touched by the old worker's timers.
    const local = route(approx, range(100, 108), 1n);
    c.advance(50);
    route(approx, range(100, 108), 1n);
    c.advance(60);
    assert.equal(approx.expire(), 2, 'only worker 2 blocks expire');
    assert.equal(approx.indexer.findMatches(local).scores.get(W1), 2);
  });

  test('test_approx_remove_worker_dp_rank_cleans_prune_metadata', () => {
    const c = clock();
    const approx = createApproxIndexer({ indexer: createKvIndexer(), ttlMs: 100, now: c.now });
    const local = route(approx, range(0, 8), 1n, 0);
    route(approx, range(0, 8), 1n, 1);
    approx.removeWorkerDpRank(1n, 1);
    assert.equal(approx.tracked(), 2);
    assert.equal(approx.indexer.findMatches(local).scores.get(workerKey(1n, 1)), undefined);
    c.advance(100);
    assert.equal(approx.expire(), 2);
  });

  test('test_kv_store_events_do_not_expire_through_approx_ttl', () => {
    const c = clock();
    const approx = createApproxIndexer({ indexer: createKvIndexer(), ttlMs: 10, now: c.now });
    const { local, seq } = hashes(range(0, 8));
    approx.indexer.applyEvent({
      worker_id: 3n,
      event: {
        event_id: 0,
        data: {
          stored: {
            parent_hash: null,
            blocks: [...local].map((l, i) => ({ tokens_hash: l, block_hash: seq[i]! })),
          },
        },
        dp_rank: 0,
      },
    });
    route(approx, range(0, 8), 1n);
    c.advance(1000);
    assert.equal(approx.expire(), 2);
    const scores = approx.indexer.findMatches(local).scores;
    assert.equal(scores.get(workerKey(3n, 0)), 2);
    assert.equal(scores.get(W1), undefined);
  });

  test('test_failed_threaded_approx_event_ack_does_not_register', () => {
    // An indexer that rejects the synthetic event: nothing is registered for expiry.
    const inner = createKvIndexer();
    const failing: KvIndexer = { ...inner, applyEvent: () => 'invalid_block' };
    const approx = createApproxIndexer({ indexer: failing, ttlMs: 10, now: () => 0 });
    const { local, seq } = hashes(range(0, 8));
    assert.equal(approx.recordRouting(1n, 0, local, seq), 'invalid_block');
    assert.equal(approx.tracked(), 0);
    assert.equal(approx.nextExpiry(), undefined);
  });

  test('prunes past maxTreeSize down to floor(max * ratio), earliest expiry first', () => {
    const c = clock();
    const approx = createApproxIndexer({
      indexer: createKvIndexer(),
      ttlMs: 1000,
      maxTreeSize: 10,
      pruneTargetRatio: 0.5,
      now: c.now,
    });
    const old = route(approx, range(0, 24), 1n); // 6 blocks at t=0
    c.advance(10);
    const young = route(approx, range(1000, 1024), 2n); // 6 blocks at t=10: 12 > 10
    assert.equal(approx.indexer.currentSize(), 5);
    assert.equal(approx.indexer.findMatches(old).scores.size, 0);
    assert.equal(approx.indexer.findMatches(young).scores.get(workerKey(2n, 0)), 5);
  });

  test('prunes leaves before their ancestors on equal expiry', () => {
    const approx = createApproxIndexer({
      indexer: createKvIndexer(),
      ttlMs: 1000,
      maxTreeSize: 6,
      pruneTargetRatio: 0.5,
      now: () => 0,
    });
    const local = route(approx, range(0, 28), 1n); // 7 blocks > 6: prune 4 deepest
    assert.equal(approx.indexer.currentSize(), 3);
    assert.equal(approx.indexer.findMatches(local).scores.get(W1), 3);
  });

  test('rebuilds its heap instead of growing without bound under re-inserts', () => {
    const c = clock();
    const approx = createApproxIndexer({ indexer: createKvIndexer(), ttlMs: 100, now: c.now });
    for (let i = 0; i < 200; i++) {
      route(approx, range(0, 64));
      c.advance(1);
    }
    assert.equal(approx.tracked(), 16);
    c.advance(100);
    assert.equal(approx.expire(), 16);
    assert.equal(approx.indexer.currentSize(), 0);
  });
});
