/**
 * Dynamo's KV event model (router reference §2.1, runtime reference §4.4): what a worker publishes
 * on `kv-events` when blocks are stored, removed or cleared. Hashes are u64, held as BigInt; use
 * `stringifyExactJson()` (src/core/json.ts) to put them on the wire as exact decimal numbers.
 */

/** One stored block: its sequence (chained) hash and its local (tokens) hash. */
export interface KvStoredBlock {
  block_hash: bigint;
  tokens_hash: bigint;
  mm_extra_info?: unknown;
}

export interface KvStoredData {
  /** Sequence hash of the block before `blocks[0]`; null when `blocks[0]` is a root block. */
  parent_hash: bigint | null;
  /** A chain: `blocks[i + 1]` is the child of `blocks[i]`. */
  blocks: KvStoredBlock[];
}

export type KvCacheEventData =
  | { stored: KvStoredData }
  | { removed: { block_hashes: bigint[] } }
  | 'cleared';

export interface KvCacheEvent {
  /** Monotonic per publisher (worker and dp rank), starting at 0. */
  event_id: number;
  data: KvCacheEventData;
  dp_rank: number;
}

export interface RouterEvent {
  worker_id: bigint;
  event: KvCacheEvent;
}
