/**
 * Dynamo's KV event model (router reference §2.1, runtime reference §4.4): what a worker publishes
 * on `kv-events` when blocks are stored, removed or cleared. Hashes are u64, held as BigInt; use
 * `stringifyJson()` to put them on the wire as exact decimal numbers.
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

/**
 * `JSON.stringify` that writes BigInts as exact decimal numbers (not strings), as Dynamo's serde
 * does for u64. Skips `undefined` object fields, like JSON.stringify; functions and symbols are
 * not supported.
 */
export function stringifyJson(value: unknown): string {
  const parts: string[] = [];
  const write = (v: unknown): void => {
    switch (typeof v) {
      case 'bigint':
        parts.push(v.toString());
        return;
      case 'number':
        parts.push(Number.isFinite(v) ? String(v) : 'null');
        return;
      case 'string':
      case 'boolean':
        parts.push(JSON.stringify(v));
        return;
      case 'object':
        break;
      default:
        parts.push('null');
        return;
    }
    if (v === null) {
      parts.push('null');
      return;
    }
    const withToJson = v as { toJSON?: () => unknown };
    if (typeof withToJson.toJSON === 'function') {
      write(withToJson.toJSON());
      return;
    }
    if (Array.isArray(v)) {
      parts.push('[');
      v.forEach((item, i) => {
        if (i > 0) parts.push(',');
        write(item === undefined ? null : item);
      });
      parts.push(']');
      return;
    }
    parts.push('{');
    let first = true;
    for (const [key, item] of Object.entries(v)) {
      if (item === undefined || typeof item === 'function' || typeof item === 'symbol') continue;
      if (!first) parts.push(',');
      first = false;
      parts.push(JSON.stringify(key), ':');
      write(item);
    }
    parts.push('}');
  };
  write(value);
  return parts.join('');
}
