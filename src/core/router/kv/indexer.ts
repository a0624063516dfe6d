/**
 * The KV indexer (router reference §3.1): a radix tree keyed by local block hash, each node
 * holding the set of (worker, dp rank) that cache it, plus a per-worker lookup from the engine's
 * external sequence hash to its node. `findMatches` gives each worker the depth of its cached
 * prefix of a prompt.
 *
 * Data layout (for millions of block events per second and a 1M-block tree in a few hundred MB):
 * there is no object per node. A node is an index into typed arrays (struct of arrays): its
 * parent, the edge key it hangs under (the local hash as two u32 halves), its external block hash
 * (two u32 halves), its worker count, its first child and siblings (for clearing children), and a
 * bitset of worker slots (`stride` u32 words per node). Edges live in one open-addressing table
 * keyed by (parent node, local hash halves); each worker's lookup is its own open-addressing table
 * keyed by the external hash halves. u64 hashes never become BigInt on the hot paths: a query
 * takes a `BigUint64Array` and reads it through a `Uint32Array` view.
 *
 * Semantics follow the reference exactly where it is specified: a Stored chain whose parent is
 * unknown applies nothing (`parent_block_not_found`); Removed continues past unknown hashes and
 * reports the first error (`block_not_found`); a node whose last worker leaves loses its children
 * (they are detached; nodes that no worker holds any more are freed) but stays linked under its
 * parent; Cleared empties one (worker, dp rank) and keeps its key. Deliberate differences, all in
 * cases a consistent engine never produces: a chain that would re-link an ancestor of its own
 * parent (a cycle) is rejected as `invalid_block` (the reference only catches the direct
 * self-reference), and re-linking a node that is still linked elsewhere moves it.
 */
import type { RouterEvent } from './events.ts';

/** The map key of a (worker, dp rank): `${workerId in hex}:${dpRank}`. */
export const workerKey = (workerId: bigint, dpRank: number): string =>
  `${workerId.toString(16)}:${dpRank}`;

export type ApplyStatus = 'ok' | 'parent_block_not_found' | 'block_not_found' | 'invalid_block';

export interface OverlapScores {
  /** Matched prefix depth (blocks) per `workerKey`; workers matching nothing are absent. */
  scores: Map<string, number>;
  /** Blocks held (`treeSize`) per scored `workerKey`. */
  treeSizes: Map<string, number>;
}

export interface FindMatchesOptions {
  /** Stop as soon as a single worker is left (the router passes false). @default false */
  earlyExit?: boolean;
}

/** What one node looks like, for tests and diagnostics. */
export interface NodeInfo {
  /** `workerKey` of each worker holding the node. */
  workers: string[];
  /** Number of children linked under it. */
  children: number;
  blockHash: bigint;
}

export interface IndexerStats {
  /** Live nodes (the root excluded). */
  nodes: number;
  /** Stored events whose every block the worker already held (reference: `duplicate_store`). */
  duplicateStores: number;
}

export interface KvIndexer {
  /** Applies one event for `(worker_id, dp_rank)`; hashes may be bigint or safe integers. */
  applyEvent(event: RouterEvent): ApplyStatus;
  /**
   * Applies a Stored chain given as u32 halves: `blocks` holds `[tokensLo, tokensHi, blockLo,
   * blockHi]` per block from `offset`. `parent` null is the root. (The decoded-batch fast path.)
   */
  applyStoredHalves(
    workerId: bigint,
    dpRank: number,
    parent: { lo: number; hi: number } | null,
    blocks: { data: Uint32Array; offset: number; count: number },
  ): ApplyStatus;
  /** Applies a Removed event given as `[lo, hi]` pairs of external hashes from `offset`. */
  applyRemovedHalves(
    workerId: bigint,
    dpRank: number,
    hashes: { data: Uint32Array; offset: number; count: number },
  ): ApplyStatus;
  /** Applies Cleared for one (worker, dp rank): every block leaves, the key stays. */
  clearWorkerDpRank(workerId: bigint, dpRank: number): void;
  /** Each worker's matched prefix depth for a prompt's local block hashes. */
  findMatches(
    local: BigUint64Array | readonly bigint[],
    options?: FindMatchesOptions,
  ): OverlapScores;
  /** Removes every dp rank of a worker (it left discovery). */
  removeWorker(workerId: bigint): void;
  removeWorkerDpRank(workerId: bigint, dpRank: number): void;
  /** The tree as single-block Stored events, breadth first (reference `dump_tree_as_events`). */
  dump(): RouterEvent[];
  /** Blocks held, summed over workers. */
  currentSize(): number;
  /** Blocks held by one (worker, dp rank); 0 when unknown. */
  treeSize(workerId: bigint, dpRank: number): number;
  /** Every (worker, dp rank) known to the index (cleared ones included). */
  workers(): Array<{ workerId: bigint; dpRank: number }>;
  /** The node reached from the root by a path of local hashes, if any. */
  nodeAt(path: readonly bigint[]): NodeInfo | undefined;
  stats(): IndexerStats;
}

export interface KvIndexerOptions {
  /** Initial node capacity (grows by doubling). @default 1024 */
  initialNodes?: number;
}

const ROOT = 0;
const NONE = -1;
const U32 = 0x1_0000_0000;

const LITTLE_ENDIAN = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;
/** Index of the low / high u32 half of a u64 in a `Uint32Array` view of a `BigUint64Array`. */
export const LO = LITTLE_ENDIAN ? 0 : 1;
export const HI = LITTLE_ENDIAN ? 1 : 0;

const big = new BigUint64Array(1);
const bigHalves = new Uint32Array(big.buffer);
let splitLo = 0;
let splitHi = 0;
/** Splits a u64 (bigint, wrapped mod 2^64, or a safe integer) into `splitLo`/`splitHi`. */
function split(value: unknown): boolean {
  if (typeof value === 'number') {
    if (!Number.isSafeInteger(value)) return false;
    if (value >= 0) {
      splitLo = value >>> 0;
      splitHi = Math.floor(value / U32);
      return true;
    }
    value = BigInt(value);
  }
  if (typeof value !== 'bigint') return false;
  big[0] = value;
  splitLo = bigHalves[LO]!;
  splitHi = bigHalves[HI]!;
  return true;
}

const toBig = (lo: number, hi: number): bigint => {
  bigHalves[LO] = lo;
  bigHalves[HI] = hi;
  return big[0]!;
};

const mix = (a: number, lo: number, hi: number): number => {
  let h = Math.imul(a, 0x9e3779b1) ^ lo;
  h = Math.imul(h ^ (h >>> 16), 0x85ebca6b) ^ hi;
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
  return h ^ (h >>> 16);
};

const popcount = (x: number): number => {
  x -= (x >>> 1) & 0x55555555;
  x = (x & 0x33333333) + ((x >>> 2) & 0x33333333);
  return (Math.imul((x + (x >>> 4)) & 0x0f0f0f0f, 0x01010101) >>> 24);
};

/**
 * One worker's lookup: external hash halves -> node id, open addressing with linear probing and
 * backward-shift deletion. Each slot is `[lo, hi, node + 1]` (0 = empty).
 */
class HashTable {
  data: Uint32Array;
  mask: number;
  size = 0;
  constructor(capacity = 16) {
    this.data = new Uint32Array(capacity * 3);
    this.mask = capacity - 1;
  }
  get(lo: number, hi: number): number {
    const data = this.data;
    let i = mix(0, lo, hi) & this.mask;
    for (;;) {
      const at = i * 3;
      const node = data[at + 2]!;
      if (node === 0) return NONE;
      if (data[at] === lo && data[at + 1] === hi) return node - 1;
      i = (i + 1) & this.mask;
    }
  }
  /** Sets and returns the node it replaced (NONE if new). */
  set(lo: number, hi: number, node: number): number {
    if ((this.size + 1) * 4 > (this.mask + 1) * 3) this.grow();
    const data = this.data;
    let i = mix(0, lo, hi) & this.mask;
    for (;;) {
      const at = i * 3;
      const old = data[at + 2]!;
      if (old === 0) {
        data[at] = lo;
        data[at + 1] = hi;
        data[at + 2] = node + 1;
        this.size++;
        return NONE;
      }
      if (data[at] === lo && data[at + 1] === hi) {
        data[at + 2] = node + 1;
        return old - 1;
      }
      i = (i + 1) & this.mask;
    }
  }
  delete(lo: number, hi: number): number {
    const data = this.data;
    const mask = this.mask;
    let i = mix(0, lo, hi) & mask;
    for (;;) {
      const at = i * 3;
      const node = data[at + 2]!;
      if (node === 0) return NONE;
      if (data[at] === lo && data[at + 1] === hi) break;
      i = (i + 1) & mask;
    }
    const removed = data[i * 3 + 2]! - 1;
    // Backward-shift: pull later entries of the probe run into the hole.
    let hole = i;
    let j = (i + 1) & mask;
    for (;;) {
      const at = j * 3;
      if (data[at + 2] === 0) break;
      const home = mix(0, data[at]!, data[at + 1]!) & mask;
      if (((j - home) & mask) >= ((j - hole) & mask)) {
        const h = hole * 3;
        data[h] = data[at]!;
        data[h + 1] = data[at + 1]!;
        data[h + 2] = data[at + 2]!;
        hole = j;
      }
      j = (j + 1) & mask;
    }
    data[hole * 3 + 2] = 0;
    this.size--;
    return removed;
  }
  /** Node ids of every entry (a snapshot). */
  nodes(): Int32Array {
    const out = new Int32Array(this.size);
    let n = 0;
    const data = this.data;
    for (let at = 2; at < data.length; at += 3) if (data[at] !== 0) out[n++] = data[at]! - 1;
    return out;
  }
  clear(): void {
    this.data = new Uint32Array(16 * 3);
    this.mask = 15;
    this.size = 0;
  }
  private grow(): void {
    const old = this.data;
    const capacity = (this.mask + 1) * 2;
    this.data = new Uint32Array(capacity * 3);
    this.mask = capacity - 1;
    this.size = 0;
    for (let at = 0; at < old.length; at += 3) {
      if (old[at + 2] !== 0) this.set(old[at]!, old[at + 1]!, old[at + 2]! - 1);
    }
  }
}

interface Slot {
  index: number;
  key: string;
  workerId: bigint;
  dpRank: number;
  lookup: HashTable;
  /** A lookup entry was overwritten by another node, which may keep a stale bit of this slot. */
  stale: boolean;
}

/** Creates an empty indexer. */
export function createKvIndexer(options: KvIndexerOptions = {}): KvIndexer {
  let capacity = Math.max(16, options.initialNodes ?? 1024);
  // Node columns.
  let parentOf = new Int32Array(capacity);
  let edgeLo = new Uint32Array(capacity);
  let edgeHi = new Uint32Array(capacity);
  let blockLo = new Uint32Array(capacity);
  let blockHi = new Uint32Array(capacity);
  let count = new Uint32Array(capacity);
  let firstChild = new Int32Array(capacity);
  let nextSibling = new Int32Array(capacity);
  let prevSibling = new Int32Array(capacity);
  let stride = 1;
  let bits = new Uint32Array(capacity * stride);
  let used = 1; // node 0 is the root
  let freeHead = NONE;
  let liveNodes = 0;
  parentOf[ROOT] = NONE;
  firstChild[ROOT] = NONE;

  // Edge table: `[parent + 1, lo, hi, child]` per slot (child 0 = empty; the root is no child).
  let edges = new Uint32Array(64 * 4);
  let edgeMask = 63;
  let edgeCount = 0;

  const slots: Array<Slot | undefined> = [];
  const slotByKey = new Map<string, Slot>();
  const freeSlots: number[] = [];
  let duplicateStores = 0;

  const growNodes = () => {
    const next = capacity * 2;
    const grown = <T extends Int32Array | Uint32Array>(a: T): T => {
      const b = new (a.constructor as { new (n: number): T })(next);
      b.set(a);
      return b;
    };
    parentOf = grown(parentOf);
    edgeLo = grown(edgeLo);
    edgeHi = grown(edgeHi);
    blockLo = grown(blockLo);
    blockHi = grown(blockHi);
    count = grown(count);
    firstChild = grown(firstChild);
    nextSibling = grown(nextSibling);
    prevSibling = grown(prevSibling);
    const b = new Uint32Array(next * stride);
    b.set(bits);
    bits = b;
    capacity = next;
  };

  const growStride = (needed: number) => {
    let next = stride;
    while (next * 32 < needed) next *= 2;
    const b = new Uint32Array(capacity * next);
    for (let n = 0; n < used; n++) {
      for (let w = 0; w < stride; w++) b[n * next + w] = bits[n * stride + w]!;
    }
    bits = b;
    stride = next;
    active = new Uint32Array(stride);
  };

  const allocNode = (lo: number, hi: number): number => {
    let node: number;
    if (freeHead !== NONE) {
      node = freeHead;
      freeHead = nextSibling[node]!;
    } else {
      if (used === capacity) growNodes();
      node = used++;
    }
    parentOf[node] = NONE;
    blockLo[node] = lo;
    blockHi[node] = hi;
    count[node] = 0;
    firstChild[node] = NONE;
    nextSibling[node] = NONE;
    prevSibling[node] = NONE;
    liveNodes++;
    return node;
  };

  const freeNode = (node: number) => {
    // count is 0, so its bits are all 0.
    parentOf[node] = NONE;
    nextSibling[node] = freeHead;
    freeHead = node;
    liveNodes--;
  };

  // --- edge table -----------------------------------------------------------------------------
  const edgeGet = (parent: number, lo: number, hi: number): number => {
    // Chains are mostly allocated in order: try the next node id first (sequential memory).
    const next = parent + 1;
    if (next < used && parentOf[next] === parent && edgeLo[next] === lo && edgeHi[next] === hi) {
      return next;
    }
    const e = edges;
    const p = parent + 1;
    let i = mix(p, lo, hi) & edgeMask;
    for (;;) {
      const at = i << 2;
      const child = e[at + 3]!;
      if (child === 0) return NONE;
      if (e[at + 1] === lo && e[at] === p && e[at + 2] === hi) return child;
      i = (i + 1) & edgeMask;
    }
  };
  const edgeInsert = (parent: number, lo: number, hi: number, child: number) => {
    if ((edgeCount + 1) * 2 > edgeMask + 1) edgeGrow();
    const e = edges;
    const p = parent + 1;
    let i = mix(p, lo, hi) & edgeMask;
    while (e[(i << 2) + 3] !== 0) i = (i + 1) & edgeMask;
    const at = i << 2;
    e[at] = p;
    e[at + 1] = lo;
    e[at + 2] = hi;
    e[at + 3] = child;
    edgeCount++;
  };
  const edgeDelete = (parent: number, lo: number, hi: number) => {
    const e = edges;
    const mask = edgeMask;
    const p = parent + 1;
    let i = mix(p, lo, hi) & mask;
    for (;;) {
      const at = i << 2;
      if (e[at + 3] === 0) return;
      if (e[at + 1] === lo && e[at] === p && e[at + 2] === hi) break;
      i = (i + 1) & mask;
    }
    let hole = i;
    let j = (i + 1) & mask;
    for (;;) {
      const at = j << 2;
      if (e[at + 3] === 0) break;
      const home = mix(e[at]!, e[at + 1]!, e[at + 2]!) & mask;
      if (((j - home) & mask) >= ((j - hole) & mask)) {
        e.copyWithin(hole << 2, at, at + 4);
        hole = j;
      }
      j = (j + 1) & mask;
    }
    e[(hole << 2) + 3] = 0;
    edgeCount--;
  };
  const edgeGrow = () => {
    const old = edges;
    edgeMask = (edgeMask + 1) * 2 - 1;
    edges = new Uint32Array((edgeMask + 1) * 4);
    edgeCount = 0;
    for (let at = 0; at < old.length; at += 4) {
      if (old[at + 3] !== 0) edgeInsert(old[at]! - 1, old[at + 1]!, old[at + 2]!, old[at + 3]!);
    }
  };

  // --- tree structure ---------------------------------------------------------------------------
  const link = (parent: number, child: number, lo: number, hi: number) => {
    parentOf[child] = parent;
    edgeLo[child] = lo;
    edgeHi[child] = hi;
    const first = firstChild[parent]!;
    nextSibling[child] = first;
    prevSibling[child] = NONE;
    if (first !== NONE) prevSibling[first] = child;
    firstChild[parent] = child;
    edgeInsert(parent, lo, hi, child);
  };
  const unlink = (child: number) => {
    const parent = parentOf[child]!;
    if (parent === NONE) return;
    edgeDelete(parent, edgeLo[child]!, edgeHi[child]!);
    const prev = prevSibling[child]!;
    const next = nextSibling[child]!;
    if (prev === NONE) firstChild[parent] = next;
    else nextSibling[prev] = next;
    if (next !== NONE) prevSibling[next] = prev;
    parentOf[child] = NONE;
    nextSibling[child] = NONE;
    prevSibling[child] = NONE;
  };
  /** Detaches every child; children no worker holds any more are freed (with their subtrees). */
  const clearChildren = (node: number) => {
    let child = firstChild[node]!;
    firstChild[node] = NONE;
    while (child !== NONE) {
      const next = nextSibling[child]!;
      edgeDelete(node, edgeLo[child]!, edgeHi[child]!);
      parentOf[child] = NONE;
      nextSibling[child] = NONE;
      prevSibling[child] = NONE;
      if (count[child] === 0) {
        clearChildren(child);
        freeNode(child);
      }
      child = next;
    }
  };
  const isAncestorOrSelf = (candidate: number, node: number): boolean => {
    for (let n = node; n !== NONE; n = parentOf[n]!) if (n === candidate) return true;
    return false;
  };

  const addWorker = (node: number, slot: number) => {
    const at = node * stride + (slot >>> 5);
    const bit = 1 << (slot & 31);
    if ((bits[at]! & bit) === 0) {
      bits[at] = bits[at]! | bit;
      count[node] = count[node]! + 1;
    }
  };
  const dropWorker = (node: number, slot: number) => {
    const at = node * stride + (slot >>> 5);
    const bit = 1 << (slot & 31);
    if ((bits[at]! & bit) === 0) return;
    bits[at] = bits[at]! & ~bit;
    const left = count[node]! - 1;
    count[node] = left;
    if (left === 0) {
      clearChildren(node);
      if (parentOf[node] === NONE) freeNode(node);
    }
  };

  // --- slots ------------------------------------------------------------------------------------
  const slotFor = (workerId: bigint, dpRank: number): Slot => {
    const key = workerKey(workerId, dpRank);
    let slot = slotByKey.get(key);
    if (slot === undefined) {
      const index = freeSlots.length > 0 ? freeSlots.pop()! : slots.length;
      if (index >= stride * 32) growStride(index + 1);
      slot = { index, key, workerId, dpRank, lookup: new HashTable(), stale: false };
      slots[index] = slot;
      slotByKey.set(key, slot);
    }
    return slot;
  };
  const clearSlot = (slot: Slot) => {
    const nodes = slot.lookup.nodes();
    slot.lookup.clear();
    for (let i = 0; i < nodes.length; i++) dropWorker(nodes[i]!, slot.index);
  };
  const deleteSlot = (slot: Slot) => {
    clearSlot(slot);
    slotByKey.delete(slot.key);
    slots[slot.index] = undefined;
    // A slot that may have stale bits somewhere is never reused (its bits are ignored).
    if (!slot.stale) freeSlots.push(slot.index);
  };

  // --- events -----------------------------------------------------------------------------------
  const storeChain = (
    slot: Slot,
    hasParent: boolean,
    parentLo: number,
    parentHi: number,
    data: Uint32Array,
    offset: number,
    blocks: number,
  ): ApplyStatus => {
    const lookup = slot.lookup;
    let parent = ROOT;
    if (hasParent) {
      parent = lookup.get(parentLo, parentHi);
      if (parent === NONE) return 'parent_block_not_found';
    }
    let duplicate = blocks > 0;
    for (let b = 0, at = offset; b < blocks; b++, at += 4) {
      const tLo = data[at]!;
      const tHi = data[at + 1]!;
      const bLo = data[at + 2]!;
      const bHi = data[at + 3]!;
      let child = edgeGet(parent, tLo, tHi);
      if (child === NONE) {
        duplicate = false;
        child = lookup.get(bLo, bHi);
        if (child === NONE) {
          child = allocNode(bLo, bHi);
        } else {
          if (isAncestorOrSelf(child, parent)) return 'invalid_block';
          unlink(child);
        }
        link(parent, child, tLo, tHi);
      } else if (child === parent) {
        return 'invalid_block';
      }
      addWorker(child, slot.index);
      const previous = lookup.set(bLo, bHi, child);
      if (previous !== child) {
        duplicate = false;
        if (previous !== NONE) slot.stale = true;
      }
      parent = child;
    }
    if (duplicate) duplicateStores++;
    return 'ok';
  };

  const removeBlocks = (slot: Slot, data: Uint32Array, offset: number, n: number): ApplyStatus => {
    let status: ApplyStatus = 'ok';
    for (let i = 0, at = offset; i < n; i++, at += 2) {
      const node = slot.lookup.delete(data[at]!, data[at + 1]!);
      if (node === NONE) {
        status = 'block_not_found';
        continue;
      }
      dropWorker(node, slot.index);
    }
    return status;
  };

  let scratch = new Uint32Array(256);
  const ensureScratch = (n: number) => {
    if (scratch.length < n) scratch = new Uint32Array(Math.max(n, scratch.length * 2));
  };

  const applyEvent = (event: RouterEvent): ApplyStatus => {
    const { worker_id: workerId, event: inner } = event;
    const dpRank = inner.dp_rank ?? 0;
    const data = inner.data;
    if (data === 'cleared') {
      clearSlot(slotFor(workerId, dpRank));
      return 'ok';
    }
    if ('stored' in data) {
      const { parent_hash: parentHash, blocks } = data.stored;
      ensureScratch(blocks.length * 4);
      for (let i = 0, at = 0; i < blocks.length; i++, at += 4) {
        const block = blocks[i]!;
        if (!split(block.tokens_hash)) return 'invalid_block';
        scratch[at] = splitLo;
        scratch[at + 1] = splitHi;
        if (!split(block.block_hash)) return 'invalid_block';
        scratch[at + 2] = splitLo;
        scratch[at + 3] = splitHi;
      }
      const hasParent = parentHash !== null && parentHash !== undefined;
      if (hasParent && !split(parentHash)) return 'invalid_block';
      const slot = slotFor(workerId, dpRank);
      return storeChain(slot, hasParent, splitLo, splitHi, scratch, 0, blocks.length);
    }
    if ('removed' in data) {
      const hashes = data.removed.block_hashes;
      ensureScratch(hashes.length * 2);
      for (let i = 0; i < hashes.length; i++) {
        if (!split(hashes[i])) return 'invalid_block';
        scratch[i * 2] = splitLo;
        scratch[i * 2 + 1] = splitHi;
      }
      return removeBlocks(slotFor(workerId, dpRank), scratch, 0, hashes.length);
    }
    return 'invalid_block';
  };

  let active = new Uint32Array(stride);
  let queryHalves = new Uint32Array(512);

  const findMatches = (
    local: BigUint64Array | readonly bigint[],
    options?: FindMatchesOptions,
  ): OverlapScores => {
    const scores = new Map<string, number>();
    const treeSizes = new Map<string, number>();
    const n = local.length;
    if (n === 0) return { scores, treeSizes };
    let halves: Uint32Array;
    if (local instanceof BigUint64Array) {
      halves = new Uint32Array(local.buffer, local.byteOffset, n * 2);
    } else {
      if (queryHalves.length < n * 2) queryHalves = new Uint32Array(n * 2);
      for (let i = 0; i < n; i++) {
        big[0] = local[i]!;
        queryHalves[i * 2] = bigHalves[LO]!;
        queryHalves[i * 2 + 1] = bigHalves[HI]!;
      }
      halves = queryHalves;
    }
    const earlyExit = options?.earlyExit ?? false;
    let node = edgeGet(ROOT, halves[LO]!, halves[HI]!);
    if (node === NONE) return { scores, treeSizes };
    const s = stride;
    const act = active;
    let activeCount = 0;
    for (let w = 0, at = node * s; w < s; w++) {
      const v = bits[at + w]!;
      act[w] = v;
      if (v !== 0) activeCount += popcount(v);
    }
    const score = (word: number, mask: number, depth: number) => {
      while (mask !== 0) {
        const low = mask & -mask;
        const slot = slots[(word << 5) + (31 - Math.clz32(low))];
        if (slot !== undefined) {
          scores.set(slot.key, depth);
          treeSizes.set(slot.key, slot.lookup.size);
        }
        mask ^= low;
      }
    };
    let depth = 1;
    if (!(earlyExit && activeCount === 1)) {
      for (let i = 1; i < n; i++) {
        const next = edgeGet(node, halves[i * 2 + LO]!, halves[i * 2 + HI]!);
        if (next === NONE) break;
        const at = next * s;
        let changed = false;
        for (let w = 0; w < s; w++) {
          const a = act[w]!;
          if (a === 0) continue;
          const b = a & bits[at + w]!;
          if (a !== b) {
            score(w, a & ~b, depth);
            act[w] = b;
            changed = true;
          }
        }
        if (changed) {
          activeCount = 0;
          for (let w = 0; w < s; w++) if (act[w] !== 0) activeCount += popcount(act[w]!);
          if (activeCount === 0) break;
        }
        depth = i + 1;
        if (earlyExit && activeCount === 1) break;
        node = next;
      }
    }
    for (let w = 0; w < s; w++) if (act[w] !== 0) score(w, act[w]!, depth);
    return { scores, treeSizes };
  };

  const dump = (): RouterEvent[] => {
    const out: RouterEvent[] = [];
    let eventId = 0;
    let level: number[] = [];
    for (let c = firstChild[ROOT]!; c !== NONE; c = nextSibling[c]!) level.push(c);
    while (level.length > 0) {
      const next: number[] = [];
      for (const node of level) {
        const parent = parentOf[node]!;
        const parentHash = parent === ROOT ? null : toBig(blockLo[parent]!, blockHi[parent]!);
        const tokensHash = toBig(edgeLo[node]!, edgeHi[node]!);
        const blockHash = toBig(blockLo[node]!, blockHi[node]!);
        for (let w = 0; w < stride; w++) {
          let mask = bits[node * stride + w]!;
          while (mask !== 0) {
            const low = mask & -mask;
            mask ^= low;
            const slot = slots[(w << 5) + (31 - Math.clz32(low))];
            if (slot === undefined) continue;
            out.push({
              worker_id: slot.workerId,
              event: {
                event_id: eventId++,
                data: {
                  stored: {
                    parent_hash: parentHash,
                    blocks: [{ block_hash: blockHash, tokens_hash: tokensHash }],
                  },
                },
                dp_rank: slot.dpRank,
              },
            });
          }
        }
        for (let c = firstChild[node]!; c !== NONE; c = nextSibling[c]!) next.push(c);
      }
      level = next;
    }
    return out;
  };

  return {
    applyEvent,
    applyStoredHalves: (workerId, dpRank, parent, blocks) =>
      storeChain(
        slotFor(workerId, dpRank),
        parent !== null,
        parent?.lo ?? 0,
        parent?.hi ?? 0,
        blocks.data,
        blocks.offset,
        blocks.count,
      ),
    applyRemovedHalves: (workerId, dpRank, hashes) =>
      removeBlocks(slotFor(workerId, dpRank), hashes.data, hashes.offset, hashes.count),
    clearWorkerDpRank: (workerId, dpRank) => clearSlot(slotFor(workerId, dpRank)),
    findMatches,
    removeWorker(workerId) {
      for (const slot of [...slotByKey.values()]) if (slot.workerId === workerId) deleteSlot(slot);
    },
    removeWorkerDpRank(workerId, dpRank) {
      const slot = slotByKey.get(workerKey(workerId, dpRank));
      if (slot) deleteSlot(slot);
    },
    dump,
    currentSize() {
      let total = 0;
      for (const slot of slotByKey.values()) total += slot.lookup.size;
      return total;
    },
    treeSize: (workerId, dpRank) => slotByKey.get(workerKey(workerId, dpRank))?.lookup.size ?? 0,
    workers: () => [...slotByKey.values()].map((s) => ({ workerId: s.workerId, dpRank: s.dpRank })),
    nodeAt(path) {
      let node = ROOT;
      for (const hash of path) {
        split(hash);
        node = edgeGet(node, splitLo, splitHi);
        if (node === NONE) return undefined;
      }
      if (node === ROOT) return undefined;
      const workers: string[] = [];
      for (let w = 0; w < stride; w++) {
        let mask = bits[node * stride + w]!;
        while (mask !== 0) {
          const low = mask & -mask;
          mask ^= low;
          const slot = slots[(w << 5) + (31 - Math.clz32(low))];
          if (slot) workers.push(slot.key);
        }
      }
      let children = 0;
      for (let c = firstChild[node]!; c !== NONE; c = nextSibling[c]!) children++;
      return { workers, children, blockHash: toBig(blockLo[node]!, blockHi[node]!) };
    },
    stats: () => ({ nodes: liveNodes, duplicateStores }),
  };
}
