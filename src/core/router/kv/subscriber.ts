/**
 * Feeds the KV indexer from workers' events (router reference §5.3): events are applied in
 * per-(worker, dp rank) order; duplicates are dropped; a gap in event ids, or a first event that
 * is not the worker's first, pauses that worker's stream while the missing range (or, when the
 * worker no longer has it, a full dump of its blocks) is fetched from the worker's
 * `worker_kv_indexer_query` endpoint. A worker that leaves discovery leaves the index.
 */
import type { KvCacheEvent, RouterEvent } from './events.ts';
import type { Logger } from '../../logger.ts';

/** What the worker's recovery endpoint answers (Dynamo's `WorkerKvQueryResponse`). */
export type KvQueryResponse =
  | { Events: { events: RouterEvent[]; last_event_id: number | null } }
  | { TreeDump: { events: RouterEvent[]; last_event_id: number | null } }
  | { TooNew: { requested_start: number; requested_end: number | null; newest_available: number } }
  | { InvalidRange: { start_id: number; end_id: number } }
  | { Error: string };

export interface KvQuery {
  dp_rank: number;
  start_event_id?: number | null;
  end_event_id?: number | null;
}

export type ApplyOutcome = 'ok' | 'parent_block_not_found' | 'block_not_found' | 'invalid_block';

/** The part of the indexer the subscriber drives. */
export interface IndexerSink {
  applyEvent(event: RouterEvent): ApplyOutcome;
  removeWorker(workerId: bigint): void;
  removeWorkerDpRank(workerId: bigint, dpRank: number): void;
}

export interface KvSubscriberOptions {
  indexer: IndexerSink;
  /** Asks a worker's recovery endpoint; rejects when the worker cannot be reached. */
  query(workerId: bigint, request: KvQuery): Promise<KvQueryResponse>;
  logger: Logger;
  /** Each applied event, for `kv_cache_events_applied{event_type,status}`. @default none */
  onApplied?: (eventType: 'stored' | 'removed' | 'cleared', status: ApplyOutcome) => void;
  /** Each dropped duplicate. @default none */
  onDuplicate?: () => void;
  /** Each gap (or late start) sent to the worker for recovery. @default none */
  onGap?: () => void;
  /**
   * Whether a worker's first event with an id above 0 is a gap to recover (the router started
   * after the worker). false (`--router-reset-states`): the first event seen is the baseline.
   * @default true
   */
  recoverOnFirstEvent?: boolean;
}

export interface KvSubscriber {
  /** An event from the event plane (`{worker_id, event}`; ids may be number or bigint). */
  onEvent(payload: unknown): void;
  /** A worker appeared in discovery: load its blocks (dump) for each of its dp ranks. */
  workerAdded(workerId: bigint, dpRanks?: number): Promise<void>;
  /** A worker left discovery: forget it. */
  workerRemoved(workerId: bigint): void;
  /** Recoveries in flight (tests wait for 0). */
  pending(): number;
}

interface Stream {
  /** Id of the last event applied; undefined before the first. */
  last: number | undefined;
  /** Set while a recovery runs: events that arrive meanwhile wait here. */
  held: KvCacheEvent[] | undefined;
}

const toBigInt = (v: unknown): bigint | undefined => {
  if (typeof v === 'bigint') return v;
  if (typeof v === 'number' && Number.isInteger(v) && v >= 0) return BigInt(v);
  if (typeof v === 'string' && /^\d+$/.test(v)) return BigInt(v);
  return undefined;
};

const kindOf = (event: KvCacheEvent): 'stored' | 'removed' | 'cleared' =>
  event.data === 'cleared' ? 'cleared' : 'stored' in event.data ? 'stored' : 'removed';

export function createKvSubscriber(options: KvSubscriberOptions): KvSubscriber {
  const { indexer, logger } = options;
  const streams = new Map<string, Stream>();
  const workersSeen = new Set<bigint>();
  let inFlight = 0;
  const key = (workerId: bigint, dpRank: number) => `${workerId.toString(16)}:${dpRank}`;
  const stream = (workerId: bigint, dpRank: number) => {
    const k = key(workerId, dpRank);
    let s = streams.get(k);
    if (!s) streams.set(k, s = { last: undefined, held: undefined });
    return s;
  };

  const apply = (workerId: bigint, event: KvCacheEvent) => {
    const status = indexer.applyEvent({ worker_id: workerId, event });
    options.onApplied?.(kindOf(event), status);
    if (status !== 'ok') {
      logger.debug('KV event not applied', {
        worker_id: workerId.toString(16),
        event_id: event.event_id,
        status,
      });
    }
  };

  /** Applies `event` if it is the next one; returns false when a gap needs recovery first. */
  const accept = (workerId: bigint, s: Stream, event: KvCacheEvent): boolean => {
    if (s.last !== undefined && event.event_id <= s.last) {
      options.onDuplicate?.();
      return true;
    }
    if (s.last === undefined && options.recoverOnFirstEvent === false) {
      apply(workerId, event);
      s.last = event.event_id;
      return true;
    }
    const expected = s.last === undefined ? 0 : s.last + 1;
    if (event.event_id > expected) return false;
    apply(workerId, event);
    s.last = event.event_id;
    return true;
  };

  const recover = async (workerId: bigint, dpRank: number, start: number | null, end?: number) => {
    const s = stream(workerId, dpRank);
    s.held ??= [];
    inFlight++;
    try {
      let answer: KvQueryResponse;
      try {
        answer = await options.query(workerId, {
          dp_rank: dpRank,
          start_event_id: start,
          end_event_id: end ?? null,
        });
      } catch (error) {
        answer = { Error: error instanceof Error ? error.message : String(error) };
      }
      if (!workersSeen.has(workerId)) return; // removed meanwhile
      if ('Events' in answer) {
        for (const e of answer.Events.events) {
          if (s.last === undefined || e.event.event_id > s.last) {
            apply(workerId, e.event);
            s.last = e.event.event_id;
          }
        }
      } else if ('TreeDump' in answer) {
        indexer.removeWorkerDpRank(workerId, dpRank);
        for (const e of answer.TreeDump.events) apply(workerId, { ...e.event, dp_rank: dpRank });
        const last = answer.TreeDump.last_event_id;
        s.last = last === null ? undefined : last;
      } else {
        logger.warn('KV event recovery failed; continuing with a gap', {
          worker_id: workerId.toString(16),
          dp_rank: dpRank,
          answer,
        });
      }
    } finally {
      inFlight--;
      const held = (s.held ?? []).sort((a, b) => a.event_id - b.event_id);
      s.held = undefined;
      if (!workersSeen.has(workerId)) held.length = 0;
      for (const event of held) {
        // After a failed recovery, skip the gap rather than stall the worker forever.
        if (!accept(workerId, s, event)) {
          apply(workerId, event);
          s.last = event.event_id;
        }
      }
    }
  };

  return {
    onEvent(payload) {
      const message = payload as { worker_id?: unknown; event?: KvCacheEvent } | null;
      const workerId = toBigInt(message?.worker_id);
      const event = message?.event;
      if (workerId === undefined || !event || typeof event.event_id !== 'number') {
        logger.debug('malformed KV event dropped', { payload });
        return;
      }
      const dpRank = typeof event.dp_rank === 'number' ? event.dp_rank : 0;
      const normalized: KvCacheEvent = { ...event, dp_rank: dpRank };
      workersSeen.add(workerId);
      const s = stream(workerId, dpRank);
      if (s.held) {
        s.held.push(normalized);
        return;
      }
      if (accept(workerId, s, normalized)) return;
      s.held = [normalized];
      options.onGap?.();
      const start = s.last === undefined ? 0 : s.last + 1;
      void recover(workerId, dpRank, start, normalized.event_id - 1);
    },
    async workerAdded(workerId, dpRanks = 1) {
      workersSeen.add(workerId);
      await Promise.all(
        Array.from({ length: dpRanks }, (_, rank) => recover(workerId, rank, null)),
      );
    },
    workerRemoved(workerId) {
      workersSeen.delete(workerId);
      const prefix = `${workerId.toString(16)}:`;
      for (const k of [...streams.keys()]) if (k.startsWith(prefix)) streams.delete(k);
      indexer.removeWorker(workerId);
    },
    pending: () => inFlight,
  };
}
