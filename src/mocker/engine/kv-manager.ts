/**
 * The simulated paged KV cache (runtime reference §6.3). `capacity` blocks, each either:
 *
 * - anonymous, keyed by a number: a partial block still filling, or any block when prefix caching
 *   is off. Owned by one sequence; freed (`destroy`) when released; never published.
 * - full, keyed by its sequence hash (a bigint): shared by refcount. At refcount 0 it stays cached
 *   as an inactive block for prefix reuse until evicted, least recently used first, when a new
 *   block needs the room.
 *
 * Only fresh allocations of full blocks publish `stored`; reactivating a cached block does not.
 * Evictions publish `removed`; `clear()` publishes `cleared`. With prefix caching off nothing is
 * shared or published.
 */
import type { KvCacheEventData, KvStoredBlock } from '../../core/router/kv/events.ts';

/** A held block: a sequence hash (full block) or an anonymous block id. */
export type BlockKey = bigint | number;

/** A full block as the cache sees it. */
export interface FullBlock {
  /** Sequence (chained) hash: the block's identity. */
  hash: bigint;
  /** Local hash of the block's tokens. */
  tokensHash: bigint;
}

export interface KvManagerOptions {
  /** Total blocks (`--num-gpu-blocks-override`). */
  capacity: number;
  /** Reuse full blocks across sequences and publish events. @default true */
  enablePrefixCaching?: boolean;
  /** Called with each event's data, synchronously, as it happens. @default no-op */
  onEvent?: (data: KvCacheEventData) => void;
}

export interface UseOptions {
  /** Sequence hash of the block before `blocks[0]` (null: `blocks[0]` is a root). @default null */
  parent?: bigint | null;
  /** Anonymous blocks to allocate as well (a partial tail). @default 0 */
  anonymous?: number;
}

export interface KvCacheStats {
  /** Full blocks `use()` asked for. */
  queriedBlocks: number;
  /** Of those, blocks already cached (active or inactive). */
  hitBlocks: number;
  /** Blocks evicted so far. */
  evictedBlocks: number;
}

export interface KvManager {
  readonly capacity: number;
  readonly enablePrefixCaching: boolean;
  /** Blocks with refcount > 0 (full and anonymous). */
  activeBlocks(): number;
  /** Cached full blocks with refcount 0. */
  inactiveBlocks(): number;
  /** Blocks not allocated at all. */
  freeBlocks(): number;
  /** Refcount of a block; 0 for an inactive or absent one. */
  refCount(key: BlockKey): number;
  /** Whether a full block is cached (active or inactive). */
  has(hash: bigint): boolean;
  /** Inactive blocks, least recently used first (the next to be evicted first). */
  inactiveOrder(): bigint[];
  /** How many leading `hashes` are cached (active or inactive); 0 with prefix caching off. */
  overlap(hashes: readonly bigint[]): number;
  /**
   * Takes a reference on each full block (reactivating cached ones, allocating the rest) and
   * allocates `anonymous` blocks. All or nothing: returns the anonymous ids, or null, changing
   * nothing, when evicting every inactive block would still not make room.
   */
  use(blocks: readonly FullBlock[], options?: UseOptions): number[] | null;
  /** One anonymous block, or null when full. */
  allocate(): number | null;
  /** Drops a reference on each full block, last first; at 0 a block becomes inactive. */
  deref(hashes: readonly bigint[]): void;
  /** Frees anonymous blocks. */
  destroy(ids: readonly number[]): void;
  /** `deref` the full and `destroy` the anonymous blocks of a sequence, last first. */
  release(keys: readonly BlockKey[]): void;
  /**
   * Turns a filled anonymous block into a full block and returns the key to hold now. If the
   * block is already cached, the sequence shares it (no event) and the anonymous block is freed.
   * With prefix caching off the block stays anonymous and its id is returned.
   */
  promote(id: number, block: FullBlock, parent: bigint | null): BlockKey;
  /**
   * Drops every cached block and publishes `cleared`, like vLLM's `reset_prefix_cache`: refused
   * (false, nothing changes) while any block is in use.
   */
  clear(): boolean;
  stats(): KvCacheStats;
}

export function createKvManager(options: KvManagerOptions): KvManager {
  const capacity = options.capacity;
  const caching = options.enablePrefixCaching ?? true;
  const emit = caching ? (options.onEvent ?? (() => {})) : () => {};
  /** Full blocks in use, by sequence hash, with their refcount. */
  const active = new Map<bigint, number>();
  /** Cached full blocks with refcount 0, least recently used first. */
  const inactive = new Set<bigint>();
  const anonymous = new Set<number>();
  let nextId = 0;
  const stats: KvCacheStats = { queriedBlocks: 0, hitBlocks: 0, evictedBlocks: 0 };

  const used = () => active.size + anonymous.size + inactive.size;

  /**
   * Frees room for `count` new blocks by evicting LRU inactive blocks, sparing `keep` (blocks the
   * caller is about to reactivate); publishes one `removed` for them.
   */
  const makeRoom = (count: number, keep?: ReadonlySet<bigint>) => {
    const evicted: bigint[] = [];
    let free = capacity - used();
    for (const hash of inactive) {
      if (free >= count) break;
      if (keep?.has(hash)) continue;
      inactive.delete(hash);
      evicted.push(hash);
      free++;
    }
    stats.evictedBlocks += evicted.length;
    if (evicted.length > 0) emit({ removed: { block_hashes: evicted } });
  };

  const newAnonymous = (): number => {
    const id = nextId++;
    anonymous.add(id);
    return id;
  };

  const deref = (hashes: readonly bigint[]) => {
    for (let i = hashes.length - 1; i >= 0; i--) {
      const hash = hashes[i]!;
      const count = active.get(hash);
      if (count === undefined) throw new Error(`Block "${hash}" is not in use`);
      if (count > 1) {
        active.set(hash, count - 1);
      } else {
        active.delete(hash);
        inactive.add(hash);
      }
    }
  };

  const destroy = (ids: readonly number[]) => {
    for (const id of ids) {
      if (!anonymous.delete(id)) throw new Error(`Block ${id} is not allocated`);
    }
  };

  return {
    capacity,
    enablePrefixCaching: caching,
    activeBlocks: () => active.size + anonymous.size,
    inactiveBlocks: () => inactive.size,
    freeBlocks: () => capacity - used(),
    refCount: (key) =>
      typeof key === 'bigint' ? (active.get(key) ?? 0) : anonymous.has(key) ? 1 : 0,
    has: (hash) => active.has(hash) || inactive.has(hash),
    inactiveOrder: () => [...inactive],
    overlap: (hashes) => {
      if (!caching) return 0;
      let n = 0;
      while (n < hashes.length && (active.has(hashes[n]!) || inactive.has(hashes[n]!))) n++;
      return n;
    },
    use: (blocks, useOptions = {}) => {
      const extra = useOptions.anonymous ?? 0;
      if (!caching && blocks.length > 0) {
        throw new Error('Full blocks need prefix caching; allocate anonymous blocks instead');
      }
      let fresh = 0;
      const keep = new Set<bigint>();
      for (const { hash } of blocks) {
        if (inactive.has(hash)) keep.add(hash);
        else if (!active.has(hash)) fresh++;
      }
      // Reactivated blocks leave the evictable pool; fresh and anonymous ones need a free slot.
      const room = capacity - used() + (inactive.size - keep.size);
      if (fresh + extra > room) return null;
      makeRoom(fresh + extra, keep);
      stats.queriedBlocks += blocks.length;
      stats.hitBlocks += blocks.length - fresh;
      let parent = useOptions.parent ?? null;
      let run: KvStoredBlock[] = [];
      let runParent: bigint | null = parent;
      const flush = () => {
        if (run.length > 0) emit({ stored: { parent_hash: runParent, blocks: run } });
        run = [];
      };
      for (const { hash, tokensHash } of blocks) {
        const count = active.get(hash);
        if (count !== undefined) {
          active.set(hash, count + 1);
          flush();
        } else if (inactive.delete(hash)) {
          active.set(hash, 1);
          flush();
        } else {
          if (run.length === 0) runParent = parent;
          active.set(hash, 1);
          run.push({ block_hash: hash, tokens_hash: tokensHash });
        }
        parent = hash;
      }
      flush();
      const ids: number[] = [];
      for (let i = 0; i < extra; i++) ids.push(newAnonymous());
      return ids;
    },
    allocate: () => {
      if (capacity - used() + inactive.size < 1) return null;
      makeRoom(1);
      return newAnonymous();
    },
    deref,
    destroy,
    release: (keys) => {
      for (let i = keys.length - 1; i >= 0; i--) {
        const key = keys[i]!;
        if (typeof key === 'bigint') deref([key]);
        else destroy([key]);
      }
    },
    promote: (id, block, parent) => {
      if (!anonymous.has(id)) throw new Error(`Block ${id} is not allocated`);
      if (!caching) return id;
      anonymous.delete(id);
      const count = active.get(block.hash);
      if (count !== undefined) {
        active.set(block.hash, count + 1);
      } else if (inactive.delete(block.hash)) {
        active.set(block.hash, 1);
      } else {
        active.set(block.hash, 1);
        emit({
          stored: {
            parent_hash: parent,
            blocks: [{ block_hash: block.hash, tokens_hash: block.tokensHash }],
          },
        });
      }
      return block.hash;
    },
    clear: () => {
      if (active.size + anonymous.size > 0) return false;
      inactive.clear();
      emit('cleared');
      return true;
    },
    stats: () => ({ ...stats }),
  };
}
