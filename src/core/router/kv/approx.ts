/**
 * Approximate (no-events) mode (router reference §3.3): the router learns nothing from workers, so
 * after each routing decision it inserts the prompt's chain for the chosen worker as a synthetic
 * Stored event from the root, and remembers each block with an expiry `now + ttl`. Re-inserting a
 * block resets its expiry. `expire()` removes expired blocks (grouped per worker, sorted by
 * position) as Removed events; when the tree grows past `maxTreeSize`, the earliest-expiring
 * blocks are removed (leaves before their ancestors on equal expiry) down to
 * `floor(maxTreeSize * pruneTargetRatio)`. Real KV events applied to the same indexer are not
 * tracked here and never expire.
 *
 * The expiry structure (the reference's `PruneManager`) is a timer map plus a lazy min-heap:
 * stale heap entries are skipped, and the heap is rebuilt once it holds more than
 * `heapRebuildFactor` times the live timers.
 */
import { type KvIndexer, workerKey } from './indexer.ts';

export interface ApproxIndexerOptions {
  /** The indexer the synthetic events go to (it may also receive real events). */
  indexer: KvIndexer;
  /** Block lifetime after the last routing decision that touched it. @default 120_000 */
  ttlMs?: number;
  /** Prune once `indexer.currentSize()` exceeds this. @default 1_048_576 */
  maxTreeSize?: number;
  /** Prune down to `floor(maxTreeSize * pruneTargetRatio)`. @default 0.8 */
  pruneTargetRatio?: number;
  /** Clock in milliseconds. @default Date.now */
  now?: () => number;
  /** Rebuild the heap when it holds more than this many times the live timers. @default 2 */
  heapRebuildFactor?: number;
}

export interface ApproxIndexer {
  readonly indexer: KvIndexer;
  /**
   * Records that a prompt with these local and sequence hashes was routed to a worker: applies
   * the chain as Stored from the root and (re)arms each block's TTL. Returns the apply status;
   * on failure nothing is registered for expiry.
   */
  recordRouting(
    workerId: bigint,
    dpRank: number,
    local: BigUint64Array,
    seq: BigUint64Array,
  ): ReturnType<KvIndexer['applyEvent']>;
  /** Removes every expired block; returns how many were removed. */
  expire(): number;
  /** Prunes to the target size if the tree is over `maxTreeSize`; returns blocks removed. */
  prune(): number;
  removeWorker(workerId: bigint): void;
  removeWorkerDpRank(workerId: bigint, dpRank: number): void;
  /** Blocks with a live TTL entry. */
  tracked(): number;
  /** When the next block expires (ms, the clock's scale), or undefined when none is tracked. */
  nextExpiry(): number | undefined;
}

interface Timer {
  expiry: number;
  position: number;
  workerId: bigint;
  dpRank: number;
}

interface HeapEntry {
  expiry: number;
  position: number;
  worker: string;
  hash: bigint;
}

/** Earlier expiry first; on a tie the deeper block (a leaf) first. */
const before = (a: HeapEntry, b: HeapEntry) =>
  a.expiry < b.expiry || (a.expiry === b.expiry && a.position > b.position);

class MinHeap {
  items: HeapEntry[] = [];
  push(entry: HeapEntry): void {
    const items = this.items;
    items.push(entry);
    let i = items.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!before(items[i]!, items[parent]!)) break;
      [items[i], items[parent]] = [items[parent]!, items[i]!];
      i = parent;
    }
  }
  peek(): HeapEntry | undefined {
    return this.items[0];
  }
  pop(): HeapEntry | undefined {
    const items = this.items;
    const top = items[0];
    const last = items.pop();
    if (items.length > 0 && last !== undefined) {
      items[0] = last;
      this.down(0);
    }
    return top;
  }
  rebuild(entries: HeapEntry[]): void {
    this.items = entries;
    for (let i = (entries.length >> 1) - 1; i >= 0; i--) this.down(i);
  }
  private down(i: number): void {
    const items = this.items;
    const n = items.length;
    for (;;) {
      const l = i * 2 + 1;
      const r = l + 1;
      let best = i;
      if (l < n && before(items[l]!, items[best]!)) best = l;
      if (r < n && before(items[r]!, items[best]!)) best = r;
      if (best === i) return;
      [items[i], items[best]] = [items[best]!, items[i]!];
      i = best;
    }
  }
}

/** Wraps an indexer with TTL expiry and size pruning of routed prompts. */
export function createApproxIndexer(options: ApproxIndexerOptions): ApproxIndexer {
  const { indexer } = options;
  const ttlMs = options.ttlMs ?? 120_000;
  const maxTreeSize = options.maxTreeSize ?? 1_048_576;
  const pruneTargetRatio = options.pruneTargetRatio ?? 0.8;
  const now = options.now ?? Date.now;
  const rebuildFactor = options.heapRebuildFactor ?? 2;
  /** workerKey -> seq hash -> timer. */
  const timers = new Map<string, Map<bigint, Timer>>();
  let live = 0;
  const heap = new MinHeap();

  const isLive = (e: HeapEntry): Timer | undefined => {
    const timer = timers.get(e.worker)?.get(e.hash);
    return timer !== undefined && timer.expiry === e.expiry && timer.position === e.position
      ? timer
      : undefined;
  };

  const maybeRebuild = () => {
    if (heap.items.length <= rebuildFactor * Math.max(live, 16)) return;
    const entries: HeapEntry[] = [];
    for (const [worker, map] of timers) {
      for (const [hash, t] of map) {
        entries.push({ expiry: t.expiry, position: t.position, worker, hash });
      }
    }
    heap.rebuild(entries);
  };

  /** Pops live entries while `take(entry)` says so; removes them from the timers. */
  const popWhile = (take: (e: HeapEntry, taken: number) => boolean) => {
    const out: Array<HeapEntry & Timer> = [];
    for (;;) {
      const top = heap.peek();
      if (top === undefined) break;
      const timer = isLive(top);
      if (timer === undefined) {
        heap.pop();
        continue;
      }
      if (!take(top, out.length)) break;
      heap.pop();
      const map = timers.get(top.worker)!;
      map.delete(top.hash);
      if (map.size === 0) timers.delete(top.worker);
      live--;
      out.push({ ...top, ...timer });
    }
    return out;
  };

  /** Applies removals grouped per worker, each group sorted by position. */
  const removeAll = (removed: Array<HeapEntry & Timer>) => {
    const groups = new Map<string, Array<HeapEntry & Timer>>();
    for (const entry of removed) {
      const group = groups.get(entry.worker);
      if (group) group.push(entry);
      else groups.set(entry.worker, [entry]);
    }
    for (const group of groups.values()) {
      group.sort((a, b) => a.position - b.position);
      const { workerId, dpRank } = group[0]!;
      indexer.applyEvent({
        worker_id: workerId,
        event: {
          event_id: 0,
          data: { removed: { block_hashes: group.map((e) => e.hash) } },
          dp_rank: dpRank,
        },
      });
    }
    return removed.length;
  };

  const expire = () => {
    const at = now();
    return removeAll(popWhile((e) => e.expiry <= at));
  };

  const prune = () => {
    const size = indexer.currentSize();
    if (size <= maxTreeSize) return 0;
    const excess = size - Math.floor(maxTreeSize * pruneTargetRatio);
    return removeAll(popWhile((_, taken) => taken < excess));
  };

  const forget = (predicate: (timer: Timer) => boolean) => {
    for (const [key, map] of timers) {
      const first = map.values().next().value;
      if (first === undefined || !predicate(first)) continue;
      live -= map.size;
      timers.delete(key);
    }
    maybeRebuild();
  };

  return {
    indexer,
    recordRouting(workerId, dpRank, local, seq) {
      const n = Math.min(local.length, seq.length);
      const blocks = new Array<{ tokens_hash: bigint; block_hash: bigint }>(n);
      for (let i = 0; i < n; i++) blocks[i] = { tokens_hash: local[i]!, block_hash: seq[i]! };
      const status = indexer.applyEvent({
        worker_id: workerId,
        event: { event_id: 0, data: { stored: { parent_hash: null, blocks } }, dp_rank: dpRank },
      });
      if (status !== 'ok') return status;
      const key = workerKey(workerId, dpRank);
      let map = timers.get(key);
      if (map === undefined) timers.set(key, map = new Map());
      const expiry = now() + ttlMs;
      for (let i = 0; i < n; i++) {
        const hash = seq[i]!;
        const timer = map.get(hash);
        if (timer === undefined) {
          map.set(hash, { expiry, position: i, workerId, dpRank });
          live++;
        } else {
          timer.expiry = expiry;
          timer.position = i;
        }
        heap.push({ expiry, position: i, worker: key, hash });
      }
      maybeRebuild();
      prune();
      return status;
    },
    expire,
    prune,
    removeWorker(workerId) {
      indexer.removeWorker(workerId);
      forget((t) => t.workerId === workerId);
    },
    removeWorkerDpRank(workerId, dpRank) {
      indexer.removeWorkerDpRank(workerId, dpRank);
      forget((t) => t.workerId === workerId && t.dpRank === dpRank);
    },
    tracked: () => live,
    nextExpiry() {
      for (;;) {
        const top = heap.peek();
        if (top === undefined) return undefined;
        if (isLive(top)) return top.expiry;
        heap.pop();
      }
    },
  };
}
