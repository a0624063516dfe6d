// Ports of the router reference §8.1 radix-tree and indexer tests (names kept).
import assert from 'node:assert/strict';
import { before, describe, test } from 'node:test';
import type { KvStoredBlock, RouterEvent } from './events.ts';
import { type BlockHasher, createBlockHasher } from './hash.ts';
import { createKvIndexer, type KvIndexer, workerKey } from './indexer.ts';

const MASK = (1n << 64n) - 1n;
/** A stand-in chain hash for tests (the real one is XXH3; the indexer treats it as opaque). */
const chain = (parent: bigint | null, local: bigint): bigint =>
  parent === null ? local : ((parent * 0x100000001b3n) ^ (local + 0x9e3779b97f4a7c15n)) & MASK;
const seqHashes = (locals: readonly number[], parent: bigint | null = null): bigint[] => {
  const out: bigint[] = [];
  let previous = parent;
  for (const l of locals) out.push(previous = chain(previous, BigInt(l)));
  return out;
};

let eventId = 0;
const event = (worker: number | bigint, data: RouterEvent['event']['data'], dpRank = 0) => ({
  worker_id: BigInt(worker),
  event: { event_id: eventId++, data, dp_rank: dpRank },
});

/** Current convention: `block_hash` = the chained seq hash of the locals (from the root). */
const store = (worker: number | bigint, locals: readonly number[], dpRank = 0): RouterEvent => {
  const seq = seqHashes(locals);
  return event(worker, {
    stored: {
      parent_hash: null,
      blocks: locals.map((l, i) => ({ tokens_hash: BigInt(l), block_hash: seq[i]! })),
    },
  }, dpRank);
};
/** `make_store_event_with_parent`: `suffix` continues `prefix`. */
const storeWithParent = (
  worker: number | bigint,
  prefix: readonly number[],
  suffix: readonly number[],
  dpRank = 0,
): RouterEvent => {
  const parent = seqHashes(prefix).at(-1)!;
  const seq = seqHashes(suffix, parent);
  return event(worker, {
    stored: {
      parent_hash: parent,
      blocks: suffix.map((l, i) => ({ tokens_hash: BigInt(l), block_hash: seq[i]! })),
    },
  }, dpRank);
};
/** Removes the blocks at `positions` of the chain `locals`. */
const removeAt = (
  worker: number | bigint,
  locals: readonly number[],
  positions: readonly number[],
  dpRank = 0,
): RouterEvent => {
  const seq = seqHashes(locals);
  return event(worker, { removed: { block_hashes: positions.map((p) => seq[p]!) } }, dpRank);
};
/** Older convention: `block_hash = local * 100`. */
const storeOld = (worker: number, locals: number[], parent: bigint | null = null) =>
  event(worker, {
    stored: {
      parent_hash: parent,
      blocks: locals.map((l) => ({ tokens_hash: BigInt(l), block_hash: BigInt(l) * 100n })),
    },
  });
const removeOld = (worker: number, locals: number[]) =>
  event(worker, { removed: { block_hashes: locals.map((l) => BigInt(l) * 100n) } });

const q = (indexer: KvIndexer, locals: readonly number[], earlyExit = false) =>
  indexer.findMatches(locals.map(BigInt), { earlyExit }).scores;
const score = (indexer: KvIndexer, locals: readonly number[], worker: number, dpRank = 0) =>
  q(indexer, locals).get(workerKey(BigInt(worker), dpRank));
const range = (from: number, to: number) => Array.from({ length: to - from }, (_, i) => from + i);
const ok = (indexer: KvIndexer, e: RouterEvent) => assert.equal(indexer.applyEvent(e), 'ok');

/** A canonical view of the whole index: every (worker, chain of locals) the dump holds. */
const snapshot = (indexer: KvIndexer) => {
  const paths = new Map<bigint, string>();
  const out: string[] = [];
  for (const e of indexer.dump()) {
    const data = e.event.data as {
      stored: { parent_hash: bigint | null; blocks: KvStoredBlock[] };
    };
    const { parent_hash: parent, blocks } = data.stored;
    const block = blocks[0]!;
    const path = `${parent === null ? '' : paths.get(parent)}/${block.tokens_hash}`;
    paths.set(block.block_hash, path);
    out.push(`${workerKey(e.worker_id, e.event.dp_rank)} ${path}`);
  }
  return out.sort();
};

describe('KvIndexer (radix tree, reference §8.1)', () => {
  let hasher: BlockHasher;
  before(async () => {
    hasher = await createBlockHasher();
  });

  test('test_radix_tree', () => {
    const t = createKvIndexer();
    ok(t, storeOld(1, [1, 2, 3]));
    ok(t, storeOld(2, [1, 4, 5]));
    const scores = q(t, [1, 2, 3]);
    assert.equal(scores.get(workerKey(1n, 0)), 3);
    assert.equal(scores.get(workerKey(2n, 0)), 1);
    assert.equal(t.treeSize(2n, 0), 3);
    ok(t, removeOld(2, [5]));
    ok(t, removeOld(2, [4]));
    assert.equal(t.treeSize(2n, 0), 1);
    const node1 = t.nodeAt([1n])!;
    assert.equal(node1.workers.length, 2);
    assert.equal(node1.children, 2);
    ok(t, storeOld(2, [2, 6, 7], 100n));
    assert.equal(score(t, [1, 2, 6], 2), 3);
    assert.equal(q(t, [1, 2, 3]).get(workerKey(2n, 0)), 2);
  });

  test('test_radix_tree_apply_event_errors', () => {
    const t = createKvIndexer();
    assert.equal(t.applyEvent(storeOld(1, [1, 2], 999n)), 'parent_block_not_found');
    assert.equal(t.currentSize(), 0, 'an event with an unknown parent applies nothing');
    assert.equal(t.applyEvent(removeOld(1, [7])), 'block_not_found');
    ok(t, storeOld(1, [1]));
    // Removed continues past a missing hash and reports the error at the end.
    assert.equal(t.applyEvent(removeOld(1, [7, 1])), 'block_not_found');
    assert.equal(t.treeSize(1n, 0), 0);
    ok(t, storeOld(1, [1]));
    // The parent (block hash 100) appears again among the blocks it parents.
    const selfRef = event(1, {
      stored: { parent_hash: 100n, blocks: [{ tokens_hash: 1n, block_hash: 100n }] },
    });
    assert.equal(t.applyEvent(selfRef), 'invalid_block');
  });

  test('test_clear_all_blocks', () => {
    const t = createKvIndexer();
    ok(t, store(1, [1, 2, 3]));
    ok(t, store(2, [1, 2]));
    ok(t, event(1, 'cleared'));
    assert.equal(t.treeSize(1n, 0), 0);
    assert.ok(t.workers().some((w) => w.workerId === 1n), 'the key stays');
    assert.equal(score(t, [1, 2, 3], 1), undefined);
    assert.equal(score(t, [1, 2, 3], 2), 2, 'other workers are unaffected');
    ok(t, store(1, [1, 2, 3]));
    assert.equal(score(t, [1, 2, 3], 1), 3, 'the worker can store again');
    ok(t, event(1, 'cleared'));
    ok(t, event(1, 'cleared'));
    ok(t, event(99, 'cleared'));
    t.removeWorker(2n);
    ok(t, event(2, 'cleared'));
    assert.equal(t.currentSize(), 0);
  });

  test('test_remove_worker_verifies_hash_removal', () => {
    const t = createKvIndexer();
    ok(t, store(1, [1, 2, 3]));
    ok(t, store(2, [1, 2, 4]));
    t.removeWorker(1n);
    assert.ok(!t.workers().some((w) => w.workerId === 1n));
    for (const path of [[1n], [1n, 2n]]) {
      assert.deepEqual(t.nodeAt(path)!.workers, [workerKey(2n, 0)]);
    }
    assert.deepEqual(t.nodeAt([1n, 2n, 3n])?.workers, [], 'an emptied node stays linked');
    assert.equal(score(t, [1, 2, 4], 2), 3);
    assert.equal(t.currentSize(), 3);
  });

  test('test_store_and_find', () => {
    const t = createKvIndexer();
    ok(t, store(1, [1, 2, 3]));
    assert.equal(score(t, [1, 2, 3], 1), 3);
  });

  test('test_partial_match', () => {
    const t = createKvIndexer();
    ok(t, store(1, [1, 2, 3]));
    assert.equal(score(t, [1, 2, 999], 1), 2);
  });

  test('test_remove', () => {
    const t = createKvIndexer();
    ok(t, store(1, [1, 2, 3]));
    ok(t, removeAt(1, [1, 2, 3], [0, 1, 2]));
    assert.equal(q(t, [1, 2, 3]).size, 0);
    assert.equal(t.stats().nodes, 1, 'only the emptied root-level node stays linked');
  });

  test('test_multiple_workers_shared_prefix', () => {
    const t = createKvIndexer();
    ok(t, store(1, [1, 2]));
    ok(t, store(2, [1, 3]));
    assert.equal(score(t, [1], 1), 1);
    assert.equal(score(t, [1], 2), 1);
    assert.equal(score(t, [1, 2], 1), 2);
    assert.equal(score(t, [1, 2], 2), 1);
  });

  test('test_remove_worker', () => {
    const t = createKvIndexer();
    ok(t, store(1, [1, 2]));
    ok(t, store(2, [1, 2]));
    t.removeWorker(1n);
    const scores = q(t, [1, 2]);
    assert.equal(scores.get(workerKey(1n, 0)), undefined);
    assert.equal(scores.get(workerKey(2n, 0)), 2);
  });

  test('test_remove_nonexistent_worker', () => {
    const t = createKvIndexer();
    ok(t, store(1, [1, 2]));
    t.removeWorker(42n);
    t.removeWorkerDpRank(1n, 5);
    assert.equal(score(t, [1, 2], 1), 2);
  });

  test('test_remove_nonexistent_blocks', () => {
    const t = createKvIndexer();
    ok(t, store(1, [1, 2]));
    assert.equal(t.applyEvent(removeAt(1, [7, 8], [0, 1])), 'block_not_found');
    assert.equal(score(t, [1, 2], 1), 2);
  });

  test('test_dump_and_restore', () => {
    const t = createKvIndexer();
    ok(t, store(1, [1, 2, 3]));
    ok(t, store(2, [1, 2, 4, 5]));
    ok(t, store(3, [6], 1));
    ok(t, storeOld(4, [9, 8]));
    const restored = createKvIndexer();
    for (const e of t.dump()) ok(restored, e);
    assert.deepEqual(snapshot(restored), snapshot(t));
    assert.equal(restored.currentSize(), t.currentSize());
    for (const w of t.workers()) {
      assert.equal(restored.treeSize(w.workerId, w.dpRank), t.treeSize(w.workerId, w.dpRank));
    }
    assert.deepEqual(q(restored, [1, 2, 4, 5]), q(t, [1, 2, 4, 5]));
  });

  test('test_flat_dump_replay_preserves_start_positions', () => {
    // No positional indexer here: the dump carries each block's parent, so replay rebuilds
    // every depth; a 70-block chain matches at each prefix length after replay.
    const t = createKvIndexer();
    const chainLocals = range(1, 71);
    ok(t, store(1, chainLocals));
    const restored = createKvIndexer();
    for (const e of t.dump()) ok(restored, e);
    for (const length of [1, 32, 33, 64, 70]) {
      assert.equal(score(restored, chainLocals.slice(0, length), 1), length);
    }
  });

  test('test_clear_then_reuse', () => {
    const t = createKvIndexer();
    ok(t, store(1, [1, 2, 3]));
    ok(t, event(1, 'cleared'));
    ok(t, store(1, [4, 5]));
    assert.equal(score(t, [4, 5], 1), 2);
    assert.equal(score(t, [1, 2, 3], 1), undefined);
    assert.equal(t.treeSize(1n, 0), 2);
  });

  test('test_clear_only_removes_target_dp_rank', () => {
    const t = createKvIndexer();
    ok(t, store(1, [1, 2], 0));
    ok(t, store(1, [1, 2], 1));
    ok(t, event(1, 'cleared', 1));
    assert.equal(score(t, [1, 2], 1, 0), 2);
    assert.equal(score(t, [1, 2], 1, 1), undefined);
  });

  test('test_multiple_dp_ranks', () => {
    const t = createKvIndexer();
    ok(t, store(1, [1, 2, 3], 0));
    ok(t, store(1, [1, 2], 1));
    ok(t, store(1, [1], 2));
    const scores = q(t, [1, 2, 3]);
    assert.equal(scores.get(workerKey(1n, 0)), 3);
    assert.equal(scores.get(workerKey(1n, 1)), 2);
    assert.equal(scores.get(workerKey(1n, 2)), 1);
  });

  test('test_remove_worker_dp_rank_only_clears_target_rank', () => {
    const t = createKvIndexer();
    ok(t, store(1, [1, 2], 0));
    ok(t, store(1, [1, 2], 1));
    t.removeWorkerDpRank(1n, 1);
    assert.deepEqual(t.workers(), [{ workerId: 1n, dpRank: 0 }]);
    assert.equal(score(t, [1, 2], 1, 0), 2);
    assert.equal(score(t, [1, 2], 1, 1), undefined);
  });

  test('test_acknowledged_rank_reset_orders_after_accepted_events', () => {
    // Events accepted before a rank reset are applied before it; later ones after it.
    const t = createKvIndexer();
    ok(t, store(1, [1, 2], 1));
    ok(t, storeWithParent(1, [1, 2], [3], 1));
    t.removeWorkerDpRank(1n, 1);
    assert.equal(t.treeSize(1n, 1), 0);
    ok(t, store(1, [5], 1));
    assert.equal(score(t, [5], 1, 1), 1);
    assert.equal(score(t, [1, 2, 3], 1, 1), undefined);
  });

  test('test_empty_query', () => {
    const t = createKvIndexer();
    ok(t, store(1, [1]));
    const { scores, treeSizes } = t.findMatches(new BigUint64Array(0));
    assert.equal(scores.size, 0);
    assert.equal(treeSizes.size, 0);
  });

  test('test_miss_query', () => {
    const t = createKvIndexer();
    ok(t, store(1, [1, 2]));
    assert.equal(q(t, [9, 1, 2]).size, 0);
  });

  test('test_shutdown_idempotent', () => {
    // The synchronous indexer has nothing to shut down; the threaded pool's close() is tested
    // in src/adapters/threads/kv-event-pool.test.ts. Dropping every worker twice is idempotent.
    const t = createKvIndexer();
    ok(t, store(1, [1]));
    t.removeWorker(1n);
    t.removeWorker(1n);
    assert.equal(t.currentSize(), 0);
  });

  test('test_find_matches_for_request', () => {
    const t = createKvIndexer();
    const tokens = range(0, 96);
    const local = hasher.localHashes64(tokens, { blockSize: 32 });
    assert.equal(local.length, 3);
    const seq = hasher.sequenceHashes64(local);
    ok(
      t,
      event(1, {
        stored: {
          parent_hash: null,
          blocks: [...local].map((l, i) => ({ tokens_hash: l, block_hash: seq[i]! })),
        },
      }),
    );
    assert.equal(t.findMatches(local).scores.get(workerKey(1n, 0)), 3);
    assert.equal(t.findMatches(local).treeSizes.get(workerKey(1n, 0)), 3);
  });

  test('test_parent_hash_chains', () => {
    const t = createKvIndexer();
    ok(t, store(1, [1, 2, 3]));
    ok(t, storeWithParent(1, [1, 2, 3], [4, 5]));
    assert.equal(score(t, [1, 2, 3, 4, 5], 1), 5);
    assert.equal(score(t, [1, 2, 3], 1), 3);
  });

  test('test_partial_block_removal', () => {
    const t = createKvIndexer();
    ok(t, store(1, [1, 2, 3]));
    ok(t, removeAt(1, [1, 2, 3], [2]));
    assert.equal(score(t, [1, 2, 3], 1), 2);
  });

  test('test_remove_mid_chain_block', () => {
    const t = createKvIndexer();
    const locals = [1, 2, 3, 4, 5];
    ok(t, store(1, locals));
    ok(t, removeAt(1, locals, [2]));
    assert.equal(score(t, locals, 1), 2);
    ok(t, storeWithParent(1, [1, 2], [3]));
    assert.equal(score(t, locals, 1), 3, 'blocks 4 and 5 stay orphaned');
    assert.equal(t.treeSize(1n, 0), 5);
  });

  test('test_multiple_sequences_per_worker', () => {
    const t = createKvIndexer();
    ok(t, store(1, [1, 2, 3]));
    ok(t, store(1, [4, 5]));
    assert.equal(score(t, [1, 100], 1), 1);
    assert.equal(score(t, [4, 5], 1), 2);
  });

  test('test_duplicate_store_replay_warns_without_error', () => {
    const t = createKvIndexer();
    ok(t, store(1, [1, 2, 3]));
    assert.equal(t.stats().duplicateStores, 0);
    ok(t, store(1, [1, 2, 3]));
    assert.equal(t.stats().duplicateStores, 1);
    assert.equal(t.treeSize(1n, 0), 3);
    assert.equal(score(t, [1, 2, 3], 1), 3);
  });

  test('test_continuation_store_does_not_warn', () => {
    const t = createKvIndexer();
    ok(t, store(1, [1, 2, 3]));
    ok(t, storeWithParent(1, [1, 2, 3], [4, 5]));
    assert.equal(t.stats().duplicateStores, 0);
  });

  test('test_tree_size_accounting_stays_stable', () => {
    const t = createKvIndexer();
    const size = () => t.treeSize(1n, 0);
    ok(t, store(1, [1, 2, 3]));
    ok(t, store(1, [1, 2, 3]));
    assert.equal(size(), 3);
    ok(t, storeWithParent(1, [1, 2, 3], [4, 5]));
    ok(t, storeWithParent(1, [1, 2, 3], [4, 5]));
    assert.equal(size(), 5);
    ok(t, removeAt(1, [1, 2, 3, 4, 5], [3, 4]));
    assert.equal(t.applyEvent(removeAt(1, [1, 2, 3, 4, 5], [3, 4])), 'block_not_found');
    assert.equal(size(), 3);
    ok(t, removeAt(1, [1, 2, 3], [0, 1, 2]));
    assert.equal(size(), 0);
    assert.equal(t.currentSize(), 0);
  });

  test('test_shared_prefix_branch_rejects_invalid_suffix_parent', () => {
    const t = createKvIndexer();
    ok(t, store(1, [1, 2, 3]));
    ok(t, store(2, [1, 2]));
    // Worker 2 never stored block 3: a suffix under it is rejected, and nothing is applied.
    assert.equal(t.applyEvent(storeWithParent(2, [1, 2, 3], [4])), 'parent_block_not_found');
    assert.equal(t.treeSize(2n, 0), 2);
    assert.equal(score(t, [1, 2, 3, 4], 2), 2);
    assert.equal(score(t, [1, 2, 3, 4], 1), 3);
  });

  test('test_prefix_suffix_reuse_then_tail_append', () => {
    const t = createKvIndexer();
    ok(t, store(1, [1, 2]));
    ok(t, store(2, [1, 2, 3, 4]));
    ok(t, storeWithParent(1, [1, 2], [3, 4]));
    ok(t, storeWithParent(1, [1, 2, 3, 4], [5]));
    const scores = q(t, [1, 2, 3, 4, 5]);
    assert.equal(scores.get(workerKey(1n, 0)), 5);
    assert.equal(scores.get(workerKey(2n, 0)), 4);
    assert.equal(t.stats().nodes, 5, 'the shared prefix is one path');
  });

  const storeReal = (worker: number, local: BigUint64Array) => {
    const seq = hasher.sequenceHashes64(local);
    return event(worker, {
      stored: {
        parent_hash: null,
        blocks: [...local].map((l, i) => ({ tokens_hash: l, block_hash: seq[i]! })),
      },
    });
  };

  test('test_lora_base_same_tokens_no_seq_hash_mismatch', async () => {
    const t = createKvIndexer();
    const tokens = range(0, 64);
    const base = hasher.localHashes64(tokens, { blockSize: 16 });
    const seed = await hasher.prepare({ loraName: 'my-adapter' });
    const adapter = hasher.localHashes64(tokens, { blockSize: 16, seed });
    assert.notEqual(base[0], adapter[0]);
    ok(t, storeReal(1, base));
    ok(t, storeReal(2, adapter));
    assert.deepEqual([...t.findMatches(base).scores], [[workerKey(1n, 0), 4]]);
    assert.deepEqual([...t.findMatches(adapter).scores], [[workerKey(2n, 0), 4]]);
  });

  test('test_different_lora_adapters_do_not_conflict', async () => {
    const t = createKvIndexer();
    const tokens = range(100, 164);
    const a = hasher.localHashes64(tokens, {
      blockSize: 16,
      seed: await hasher.prepare({ loraName: 'a' }),
    });
    const b = hasher.localHashes64(tokens, {
      blockSize: 16,
      seed: await hasher.prepare({ loraName: 'b' }),
    });
    ok(t, storeReal(1, a));
    ok(t, storeReal(2, b));
    assert.deepEqual([...t.findMatches(a).scores], [[workerKey(1n, 0), 4]]);
    assert.deepEqual([...t.findMatches(b).scores], [[workerKey(2n, 0), 4]]);
  });

  test('test_different_cache_namespaces_do_not_conflict', async () => {
    const t = createKvIndexer();
    const tokens = range(7, 71);
    const a = hasher.localHashes64(tokens, {
      blockSize: 16,
      seed: await hasher.prepare({ cacheSalt: 'tenant-a' }),
    });
    const b = hasher.localHashes64(tokens, {
      blockSize: 16,
      seed: await hasher.prepare({ cacheSalt: 'tenant-b' }),
    });
    ok(t, storeReal(1, a));
    ok(t, storeReal(2, b));
    assert.deepEqual([...t.findMatches(a).scores], [[workerKey(1n, 0), 4]]);
    assert.deepEqual([...t.findMatches(b).scores], [[workerKey(2n, 0), 4]]);
  });

  test('test_long_sequence_branching_continuations', () => {
    const t = createKvIndexer();
    const prefix = range(1, 31);
    ok(t, store(1, prefix));
    ok(t, storeWithParent(1, prefix, range(1000, 1030)));
    ok(t, store(2, prefix));
    ok(t, storeWithParent(2, prefix, range(2000, 2030)));
    const scores = q(t, [...prefix, ...range(1000, 1030)]);
    assert.equal(scores.get(workerKey(1n, 0)), 60);
    assert.equal(scores.get(workerKey(2n, 0)), 30);
  });

  test('test_long_sequence_partial_removal', () => {
    const t = createKvIndexer();
    const locals = range(1, 101);
    ok(t, store(1, locals));
    ok(t, removeAt(1, locals, range(79, 100)));
    assert.equal(score(t, locals, 1), 79);
  });

  test('test_long_sequence_jump_boundaries', () => {
    for (const length of [31, 32, 33, 63, 64, 65, 96]) {
      const t = createKvIndexer();
      const locals = range(1, length + 1);
      ok(t, store(1, locals));
      assert.equal(score(t, locals, 1), length);
      assert.equal(score(t, [...locals, 5000], 1), length);
      assert.equal(score(t, locals.slice(0, length - 1), 1), length - 1);
    }
  });

  test('test_long_sequence_divergence_at_jump_boundaries', () => {
    for (const p of [1, 31, 32, 33, 63, 64, 65, 95]) {
      const t = createKvIndexer();
      const locals = range(1, 97);
      ok(t, store(1, locals));
      const query = [...locals];
      query[p] = 9999;
      assert.equal(score(t, query, 1), p);
    }
  });

  test('test_long_sequence_deep_continuation_chain', () => {
    const t = createKvIndexer();
    const all: number[] = [];
    for (let part = 0; part < 20; part++) {
      const suffix = range(part * 10 + 1, part * 10 + 11);
      ok(t, part === 0 ? store(1, suffix) : storeWithParent(1, all, suffix));
      all.push(...suffix);
    }
    assert.equal(score(t, all, 1), 200);
    ok(t, store(2, all.slice(0, 75)));
    assert.equal(score(t, all, 2), 75);
    assert.equal(t.treeSize(1n, 0), 200);
  });

  test('test_long_sequence_clear_and_rebuild', () => {
    const t = createKvIndexer();
    const locals = range(1, 129);
    ok(t, store(1, locals));
    ok(t, event(1, 'cleared'));
    assert.equal(score(t, locals, 1), undefined);
    assert.equal(t.stats().nodes, 1);
    ok(t, store(1, locals));
    assert.equal(score(t, locals, 1), 128);
    assert.equal(t.treeSize(1n, 0), 128);
  });

  test('test_long_sequence_multiple_workers_diverging', () => {
    const t = createKvIndexer();
    const shared = range(1, 41);
    for (let w = 0; w < 8; w++) {
      ok(t, store(w, [...shared.slice(0, w * 5), ...range(10000 * (w + 1), 10000 * (w + 1) + 20)]));
    }
    const scores = q(t, shared);
    for (let w = 0; w < 8; w++) {
      assert.equal(scores.get(workerKey(BigInt(w), 0)), w === 0 ? undefined : w * 5);
    }
  });
});

describe('KvIndexer data layout', () => {
  test('findMatches() with earlyExit stops once one worker is left', () => {
    const t = createKvIndexer();
    ok(t, store(1, [1, 2, 3, 4]));
    ok(t, store(2, [1]));
    const scores = q(t, [1, 2, 3, 4], true);
    assert.equal(scores.get(workerKey(1n, 0)), 2);
    assert.equal(scores.get(workerKey(2n, 0)), 1);
    const alone = createKvIndexer();
    ok(alone, store(1, [1, 2, 3]));
    assert.equal(q(alone, [1, 2, 3], true).get(workerKey(1n, 0)), 1);
  });

  test('holds u64 hashes beyond 2^53 exactly, and signed i64 as their u64 bits', () => {
    const t = createKvIndexer();
    const big = 18446744073709551615n;
    ok(
      t,
      event(1, { stored: { parent_hash: null, blocks: [{ tokens_hash: big, block_hash: -1n }] } }),
    );
    assert.equal(t.findMatches(new BigUint64Array([big])).scores.get(workerKey(1n, 0)), 1);
    assert.equal(t.findMatches([big - 1n]).scores.size, 0);
    ok(t, event(1, { removed: { block_hashes: [big] } }));
    assert.equal(t.treeSize(1n, 0), 0);
  });

  test('accepts hashes as plain numbers', () => {
    const t = createKvIndexer();
    const e = event(1, {
      stored: {
        parent_hash: null,
        blocks: [{ tokens_hash: 5 as unknown as bigint, block_hash: 2 ** 40 as unknown as bigint }],
      },
    });
    ok(t, e);
    assert.equal(score(t, [5], 1), 1);
    ok(t, event(1, { removed: { block_hashes: [2n ** 40n] } }));
    assert.equal(
      t.applyEvent(event(1, { removed: { block_hashes: [0.5 as unknown as bigint] } })),
      'invalid_block',
    );
  });

  test('grows past 32 worker slots and reuses freed nodes', () => {
    const t = createKvIndexer({ initialNodes: 16 });
    for (let w = 0; w < 100; w++) ok(t, store(w, range(1, 1 + (w % 50) + 1)));
    const scores = q(t, range(1, 51));
    for (let w = 0; w < 100; w++) assert.equal(scores.get(workerKey(BigInt(w), 0)), (w % 50) + 1);
    const nodes = t.stats().nodes;
    for (let w = 0; w < 100; w++) t.removeWorker(BigInt(w));
    assert.equal(t.currentSize(), 0);
    for (let w = 0; w < 100; w++) ok(t, store(w, range(1, 1 + (w % 50) + 1)));
    assert.equal(t.stats().nodes, nodes);
  });

  test('a chain that would re-link an ancestor of its parent is rejected, not looped', () => {
    const t = createKvIndexer();
    ok(t, storeOld(1, [1, 2]));
    // Under block 2 (hash 200), a block whose hash is 100 (block 1's) with a new tokens hash.
    const cyclic = event(1, {
      stored: { parent_hash: 200n, blocks: [{ tokens_hash: 3n, block_hash: 100n }] },
    });
    assert.equal(t.applyEvent(cyclic), 'invalid_block');
    assert.equal(score(t, [1, 2], 1), 2);
  });

  test('a randomized event stream keeps lookups consistent with a reference model', () => {
    let seed = 12345;
    const rand = (n: number) => {
      seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
      return seed % n;
    };
    const t = createKvIndexer({ initialNodes: 16 });
    // Model: per worker, the set of chains (as local paths) it holds, as seq-hash keys.
    const held = new Map<number, Map<bigint, number[]>>();
    for (let step = 0; step < 3000; step++) {
      const w = rand(6);
      const mine = held.get(w) ?? new Map<bigint, number[]>();
      held.set(w, mine);
      const op = rand(10);
      if (op < 6) {
        const locals = Array.from({ length: 1 + rand(8) }, () => 1 + rand(3));
        ok(t, store(w, locals));
        const seq = seqHashes(locals);
        seq.forEach((h, i) => mine.set(h, locals.slice(0, i + 1)));
      } else if (op < 9 && mine.size > 0) {
        const keys = [...mine.keys()];
        const key = keys[rand(keys.length)]!;
        ok(t, event(w, { removed: { block_hashes: [key] } }));
        mine.delete(key);
      } else if (op === 9) {
        t.removeWorker(BigInt(w));
        held.delete(w);
      }
      assert.equal(t.treeSize(BigInt(w), 0), held.get(w)?.size ?? 0);
    }
    // A worker scores depth d only if it holds every prefix up to d (children of emptied nodes
    // are detached, so it may score less than the model's longest prefix, never more).
    for (let i = 0; i < 200; i++) {
      const query = Array.from({ length: 8 }, () => 1 + rand(3));
      const scores = q(t, query);
      for (const [key, depth] of scores) {
        const w = Number.parseInt(key.split(':')[0]!, 16);
        const mine = held.get(w)!;
        const seq = seqHashes(query);
        for (let d = 0; d < depth; d++) assert.ok(mine.has(seq[d]!), `${key} at ${d}`);
      }
    }
  });
});
