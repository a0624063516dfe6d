import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { KvCacheEventData } from '../../core/router/kv/events.ts';
import { createKvManager, type FullBlock, type KvManagerOptions } from './kv-manager.ts';

/** Full blocks with sequence hashes `hashes` and local hashes `hash + 1000`. */
const blocks = (...hashes: number[]): FullBlock[] =>
  hashes.map((h) => ({ hash: BigInt(h), tokensHash: BigInt(h + 1000) }));

function setup(options: Partial<KvManagerOptions> = {}) {
  const events: KvCacheEventData[] = [];
  const kv = createKvManager({ capacity: 4, onEvent: (e) => events.push(e), ...options });
  return { kv, events };
}

describe('createKvManager()', () => {
  test('use() stores fresh full blocks as one chained event and counts them active', () => {
    const { kv, events } = setup();
    assert.deepEqual(kv.use(blocks(1, 2), { anonymous: 1 }), [0]);
    assert.equal(kv.activeBlocks(), 3);
    assert.equal(kv.freeBlocks(), 1);
    assert.deepEqual(events, [{
      stored: {
        parent_hash: null,
        blocks: [{ block_hash: 1n, tokens_hash: 1001n }, { block_hash: 2n, tokens_hash: 1002n }],
      },
    }]);
  });

  test('use() shares active blocks by refcount and publishes nothing for them', () => {
    const { kv, events } = setup();
    kv.use(blocks(1, 2));
    kv.use(blocks(1, 3));
    assert.equal(kv.refCount(1n), 2);
    assert.equal(kv.activeBlocks(), 3);
    assert.deepEqual(events[1], {
      stored: { parent_hash: 1n, blocks: [{ block_hash: 3n, tokens_hash: 1003n }] },
    });
    assert.deepEqual(kv.stats(), { queriedBlocks: 4, hitBlocks: 1, evictedBlocks: 0 });
    assert.equal(kv.overlap([1n, 3n, 9n]), 2);
  });

  test('deref() keeps blocks cached as inactive, last block first in LRU order', () => {
    const { kv } = setup();
    kv.use(blocks(1, 2, 3));
    kv.deref([1n, 2n, 3n]);
    assert.equal(kv.activeBlocks(), 0);
    assert.equal(kv.inactiveBlocks(), 3);
    assert.deepEqual(kv.inactiveOrder(), [3n, 2n, 1n]);
    assert.equal(kv.overlap([1n, 2n]), 2);
  });

  test('reactivating an inactive block publishes no stored event', () => {
    const { kv, events } = setup();
    kv.use(blocks(1, 2));
    kv.deref([1n, 2n]);
    kv.use(blocks(1, 2));
    assert.equal(events.length, 1);
    assert.equal(kv.inactiveBlocks(), 0);
    assert.equal(kv.refCount(2n), 1);
  });

  test('evicts the least recently used inactive block and publishes removed', () => {
    const { kv, events } = setup();
    kv.use(blocks(1, 2));
    kv.deref([1n, 2n]); // inactive: 2, 1
    kv.use(blocks(3));
    kv.deref([3n]); // inactive: 2, 1, 3
    kv.use(blocks(4)); // fills the 4th slot, no eviction
    assert.deepEqual(kv.use(blocks(5)), []);
    assert.deepEqual(events.at(-2), { removed: { block_hashes: [2n] } });
    assert.deepEqual(kv.inactiveOrder(), [1n, 3n]);
    assert.notEqual(kv.allocate(), null);
    assert.deepEqual(events.at(-1), { removed: { block_hashes: [1n] } });
    assert.deepEqual(kv.stats().evictedBlocks, 2);
  });

  test('never evicts a shared prefix block that is still referenced', () => {
    const { kv, events } = setup();
    kv.use(blocks(1, 2)); // request A
    kv.use(blocks(1, 3)); // request B shares block 1
    kv.deref([1n, 2n]); // A finishes: 2 inactive, 1 still held by B
    assert.equal(kv.refCount(1n), 1);
    assert.deepEqual(kv.use(blocks(6, 7)), []); // needs two slots: one free, one evicted
    assert.deepEqual(events.at(-2), { removed: { block_hashes: [2n] } });
    assert.equal(kv.has(1n), true);
    assert.equal(kv.use(blocks(8)), null); // nothing evictable left
    assert.equal(kv.allocate(), null);
  });

  test('use() is all or nothing and does not evict the blocks it reactivates', () => {
    const { kv, events } = setup();
    kv.use(blocks(1, 2, 3));
    kv.deref([1n, 2n, 3n]); // inactive: 3, 2, 1
    kv.use(blocks(4)); // cache full: 4 active + 3 inactive would be 4 slots
    const before = events.length;
    assert.equal(kv.use(blocks(1, 2, 3), { anonymous: 1 }), null); // 3 reactivated + 1 new > 4
    assert.equal(events.length, before);
    assert.equal(kv.inactiveBlocks(), 3);
    assert.deepEqual(kv.use(blocks(1, 9)), []); // evicts 3 (LRU), spares 1
    assert.deepEqual(events.at(-2), { removed: { block_hashes: [3n] } });
    assert.deepEqual(events.at(-1), {
      stored: { parent_hash: 1n, blocks: [{ block_hash: 9n, tokens_hash: 1009n }] },
    });
    assert.deepEqual(kv.inactiveOrder(), [2n]);
  });

  test('promote() turns a partial block into a stored full block with its parent', () => {
    const { kv, events } = setup();
    kv.use(blocks(1));
    const id = kv.allocate()!;
    assert.equal(kv.promote(id, { hash: 2n, tokensHash: 1002n }, 1n), 2n);
    assert.equal(kv.refCount(id), 0);
    assert.equal(kv.refCount(2n), 1);
    assert.equal(kv.activeBlocks(), 2);
    assert.deepEqual(events.at(-1), {
      stored: { parent_hash: 1n, blocks: [{ block_hash: 2n, tokens_hash: 1002n }] },
    });
  });

  test('promote() onto a cached hash shares it, frees the partial block and stays quiet', () => {
    const { kv, events } = setup();
    kv.use(blocks(1, 2));
    kv.deref([2n]);
    const id = kv.allocate()!;
    assert.equal(kv.promote(id, { hash: 2n, tokensHash: 1002n }, 1n), 2n);
    assert.equal(kv.activeBlocks(), 2);
    assert.equal(kv.inactiveBlocks(), 0);
    assert.equal(events.length, 1);
  });

  test('release() derefs full blocks and destroys partial ones', () => {
    const { kv } = setup();
    const [id] = kv.use(blocks(1), { anonymous: 1 })!;
    kv.release([1n, id!]);
    assert.equal(kv.activeBlocks(), 0);
    assert.deepEqual(kv.inactiveOrder(), [1n]);
    assert.throws(() => kv.destroy([id!]), /not allocated/);
    assert.throws(() => kv.deref([1n]), /not in use/);
  });

  test('clear() is refused while blocks are in use, then drops the cache with cleared', () => {
    const { kv, events } = setup();
    kv.use(blocks(1, 2));
    assert.equal(kv.clear(), false);
    kv.deref([1n, 2n]);
    assert.equal(kv.clear(), true);
    assert.equal(kv.inactiveBlocks(), 0);
    assert.equal(kv.freeBlocks(), 4);
    assert.equal(events.at(-1), 'cleared');
  });

  test('with prefix caching off nothing is reused or published', () => {
    const { kv, events } = setup({ enablePrefixCaching: false });
    const ids = kv.use([], { anonymous: 2 })!;
    assert.equal(kv.promote(ids[0]!, { hash: 1n, tokensHash: 1001n }, null), ids[0]);
    assert.equal(kv.overlap([1n]), 0);
    assert.throws(() => kv.use(blocks(1)), /prefix caching/);
    kv.destroy(ids);
    assert.equal(kv.freeBlocks(), 4);
    assert.equal(kv.clear(), true);
    assert.deepEqual(events, []);
  });
});
