/**
 * A worker's memory of its own KV events, for routers that missed some (router reference §5.3):
 * the last `bufferSize` events with their ids, and the worker's current blocks as a local tree
 * so a router that knows nothing (it just started, or the gap is older than the buffer) can be
 * sent a full dump instead. One log per data-parallel rank. The `worker_kv_indexer_query`
 * endpoint answers `WorkerKvQueryRequest`s from it.
 */
import type { KvCacheEvent, RouterEvent } from '../core/router/kv/events.ts';

/** Dynamo's `WORKER_KV_INDEXER_BUFFER_SIZE`. */
export const KV_EVENT_BUFFER_SIZE = 1024;

/** The recovery endpoint's name, in the worker's component. */
export const KV_QUERY_ENDPOINT = 'worker_kv_indexer_query';

export interface WorkerKvQueryRequest {
  worker_id?: bigint | number | string;
  dp_rank?: number;
  /** First event id wanted; absent or null asks for a full tree dump. */
  start_event_id?: number | null;
  /** Last event id wanted (inclusive). @default the newest */
  end_event_id?: number | null;
}

/** Externally tagged, as Dynamo's `WorkerKvQueryResponse`. */
export type WorkerKvQueryResponse =
  | { Events: { events: RouterEvent[]; last_event_id: number | null } }
  | { TreeDump: { events: RouterEvent[]; last_event_id: number | null } }
  | { TooNew: { requested_start: number; requested_end: number | null; newest_available: number } }
  | { InvalidRange: { start_id: number; end_id: number } }
  | { Error: string };

interface LocalBlock {
  parent: bigint | null;
  tokensHash: bigint;
}

export interface KvEventLog {
  /** Remembers `event` (already published, with its id). */
  record(event: KvCacheEvent): void;
  query(request: WorkerKvQueryRequest): WorkerKvQueryResponse;
  /** Blocks currently held. */
  size(): number;
}

const toBig = (v: bigint | number): bigint => (typeof v === 'bigint' ? v : BigInt(v));

export function createKvEventLog(
  workerId: bigint,
  options: { dpRank?: number; bufferSize?: number } = {},
): KvEventLog {
  const dpRank = options.dpRank ?? 0;
  const capacity = options.bufferSize ?? KV_EVENT_BUFFER_SIZE;
  const ring: KvCacheEvent[] = [];
  let head = 0;
  let newest: number | null = null;
  const blocks = new Map<bigint, LocalBlock>();

  const apply = (event: KvCacheEvent) => {
    const data = event.data;
    if (data === 'cleared') return blocks.clear();
    if ('removed' in data) {
      for (const hash of data.removed.block_hashes) blocks.delete(toBig(hash));
      return;
    }
    let parent = data.stored.parent_hash === null ? null : toBig(data.stored.parent_hash);
    for (const block of data.stored.blocks) {
      const hash = toBig(block.block_hash);
      blocks.set(hash, { parent, tokensHash: toBig(block.tokens_hash) });
      parent = hash;
    }
  };

  /** Every held block as a one-block Stored event, parents before children; orphans skipped. */
  const dump = (): RouterEvent[] => {
    const children = new Map<bigint | null, bigint[]>();
    for (const [hash, block] of blocks) {
      const parent = block.parent !== null && blocks.has(block.parent) ? block.parent : null;
      if (parent === null && block.parent !== null) continue; // parent evicted: unreachable
      const list = children.get(parent);
      if (list) list.push(hash);
      else children.set(parent, [hash]);
    }
    const out: RouterEvent[] = [];
    const queue: Array<bigint | null> = [null];
    for (let i = 0; i < queue.length; i++) {
      const parent = queue[i] as bigint | null;
      for (const hash of children.get(parent) ?? []) {
        const block = blocks.get(hash) as LocalBlock;
        out.push({
          worker_id: workerId,
          event: {
            event_id: out.length,
            dp_rank: dpRank,
            data: {
              stored: {
                parent_hash: parent,
                blocks: [{ block_hash: hash, tokens_hash: block.tokensHash }],
              },
            },
          },
        });
        queue.push(hash);
      }
    }
    return out;
  };

  const ordered = (): KvCacheEvent[] =>
    ring.length < capacity ? ring : [...ring.slice(head), ...ring.slice(0, head)];

  return {
    record(event) {
      apply(event);
      if (ring.length < capacity) ring.push(event);
      else {
        ring[head] = event;
        head = (head + 1) % capacity;
      }
      newest = newest === null ? event.event_id : Math.max(newest, event.event_id);
    },
    size: () => blocks.size,
    query(request) {
      const start = request.start_event_id ?? null;
      const end = request.end_event_id ?? null;
      if (start === null) return { TreeDump: { events: dump(), last_event_id: newest } };
      if (end !== null && end < start) return { InvalidRange: { start_id: start, end_id: end } };
      if (newest === null || start > newest) {
        return {
          TooNew: { requested_start: start, requested_end: end, newest_available: newest ?? -1 },
        };
      }
      const events = ordered();
      const oldest = events[0]?.event_id ?? 0;
      // Fallen out of the buffer: only a dump can bring the router up to date.
      if (start < oldest) return { TreeDump: { events: dump(), last_event_id: newest } };
      const last = end === null ? newest : Math.min(end, newest);
      return {
        Events: {
          events: events
            .filter((e) => e.event_id >= start && e.event_id <= last)
            .map((event) => ({ worker_id: workerId, event })),
          last_event_id: last,
        },
      };
    },
  };
}
