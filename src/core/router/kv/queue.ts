/**
 * The KV scheduler (router reference §4.1 step 2, §4.6): per request, potential loads from the
 * sequence tracker → the selector → booking on the chosen worker. With
 * `--router-queue-threshold f`, a request whose eligible workers are all busy (active prefill
 * tokens > f × max_num_batched_tokens) waits in a priority heap until `update()` finds room; the
 * scheduler calls `update()` itself after every prefill completion, free and peer event.
 *
 * Policies (max-heap, higher key first, FIFO among equal keys):
 * - `fcfs`: `priority_jump - arrival_offset_secs` (arrival measured from the scheduler's start);
 * - `wspt`: `(1 + priority_jump) / isl_tokens`.
 */
import { CancelledError } from '../../errors.ts';
import type { Logger } from '../../logger.ts';
import type { RouterConfigOverride, SelectionCandidate, WorkerSelector } from './selector.ts';
import type {
  ActiveSequenceEvent,
  PrefillLoadHint,
  SequenceTracker,
  TokenSequence,
  WorkerLoad,
} from './sequences.ts';

/** Used for a worker that publishes no `max_num_batched_tokens`: in effect it never queues. */
export const DEFAULT_MAX_BATCHED_TOKENS = 10_000_000;

export type QueuePolicy = 'fcfs' | 'wspt';

/** Structural match of the indexer's `OverlapScores`. */
export interface OverlapScoresLike {
  scores: ReadonlyMap<string, number>;
  treeSizes: ReadonlyMap<string, number>;
}

export interface EligibleWorker {
  /** `workerKey(workerId, dpRank)`. */
  worker: string;
  /** From the worker's runtime config. @default DEFAULT_MAX_BATCHED_TOKENS */
  maxNumBatchedTokens?: number;
}

export interface ScheduleRequest {
  requestId: string;
  /** Prompt length in tokens. */
  isl: number;
  /** From `indexer.findMatches()`; empty maps when the overlap weight is 0. */
  overlaps: OverlapScoresLike;
  /**
   * Block hashes to book: the real sequence hashes (`--router-assume-kv-reuse`), one random u64
   * per block otherwise, or none when active blocks are not tracked.
   */
  tokenSeq?: TokenSequence | null;
  /** Eligible (worker, dp_rank) pairs; none ends in `NoEndpointsError`. */
  workers: readonly EligibleWorker[];
  /** `nvext.agent_hints.priority`; larger goes earlier. @default 0 */
  priorityJump?: number;
  /** `nvext.agent_hints.osl`. */
  expectedOutputTokens?: number;
  overrides?: RouterConfigOverride;
  /** @default true */
  trackPrefillTokens?: boolean;
  prefillLoadHint?: PrefillLoadHint;
  /** False for query-only requests: choose a worker, book nothing. @default true */
  updateStates?: boolean;
  /** Skip the queue (externally routed requests, pinned workers). @default false */
  bypassQueue?: boolean;
  /** Aborting while queued rejects with `CancelledError` and leaves the queue. */
  signal?: AbortSignal;
}

export interface ScheduleResult {
  worker: string;
  overlapBlocks: number;
  requiredBlocks: number;
  cost: number;
  /** Time spent in the queue (0 when scheduled at once). */
  queuedMs: number;
}

export interface KvSchedulerOptions {
  tracker: SequenceTracker;
  selector: WorkerSelector;
  /** `--router-queue-threshold`; undefined disables queueing. Must be >= 0. */
  queueThreshold?: number;
  /** @default 'fcfs' */
  policy?: QueuePolicy;
  /** Milliseconds. @default () => performance.now() */
  now?: () => number;
  /** Gauge hook: the number of queued requests, after each change. */
  onPendingChange?: (pending: number) => void;
  /**
   * `--router-active-overlap`: a worker's overlap is the larger of its indexed (event-reported)
   * prefix and the prefix that requests in flight on it hold. @default false
   */
  activeOverlap?: boolean;
  logger?: Logger;
}

export interface KvScheduler {
  readonly tracker: SequenceTracker;
  /**
   * Chooses and books a worker. Settles at once (in a microtask) unless the request is queued;
   * rejects with `NoEndpointsError` when no worker is eligible.
   */
  schedule(request: ScheduleRequest): Promise<ScheduleResult>;
  /** First non-empty output chunk: the prompt leaves the worker's prefill load. */
  markPrefillCompleted(requestId: string): void;
  /** One more output block (`--router-track-output-blocks`), optionally decayed to `fraction`. */
  addOutputBlock(requestId: string, fraction?: number): void;
  /** Stream end, error or cancellation. */
  free(requestId: string): void;
  /** A peer router's replica-sync event. */
  applyRemote(event: ActiveSequenceEvent): void;
  /** Schedules queued requests while their workers have room. */
  update(): void;
  pendingCount(): number;
  activeLoad(worker: string): WorkerLoad | undefined;
}

interface Entry {
  key: number;
  seq: number;
  request: ScheduleRequest;
  enqueuedAt: number;
  resolve: (result: ScheduleResult) => void;
  reject: (error: unknown) => void;
  done: boolean;
  onAbort?: () => void;
}

/** Max-heap on `key`, FIFO (`seq`) among equal keys. */
class EntryHeap {
  readonly items: Entry[] = [];
  #before(a: Entry, b: Entry) {
    return a.key > b.key || (a.key === b.key && a.seq < b.seq);
  }
  push(entry: Entry) {
    const items = this.items;
    items.push(entry);
    let i = items.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!this.#before(items[i] as Entry, items[parent] as Entry)) break;
      [items[i], items[parent]] = [items[parent] as Entry, items[i] as Entry];
      i = parent;
    }
  }
  peek(): Entry | undefined {
    return this.items[0];
  }
  pop(): Entry | undefined {
    const items = this.items;
    const top = items[0];
    const last = items.pop();
    if (items.length > 0 && last) {
      items[0] = last;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let best = i;
        if (l < items.length && this.#before(items[l] as Entry, items[best] as Entry)) best = l;
        if (r < items.length && this.#before(items[r] as Entry, items[best] as Entry)) best = r;
        if (best === i) break;
        [items[i], items[best]] = [items[best] as Entry, items[i] as Entry];
        i = best;
      }
    }
    return top;
  }
}

export function createKvScheduler(options: KvSchedulerOptions): KvScheduler {
  const { tracker, selector, logger } = options;
  const threshold = options.queueThreshold;
  if (threshold !== undefined && !(threshold >= 0)) {
    throw new RangeError(`Router queue threshold must be >= 0 (got ${threshold})`);
  }
  const policy = options.policy ?? 'fcfs';
  const activeOverlap = options.activeOverlap ?? false;
  const now = options.now ?? (() => performance.now());
  const startedAt = now();
  const heap = new EntryHeap();
  let pending = 0;
  let seq = 0;

  const setPending = (count: number) => {
    pending = count;
    options.onPendingChange?.(count);
  };

  /** True when every eligible worker is over the threshold; false when there are none. */
  const allBusy = (workers: readonly EligibleWorker[]) => {
    if (threshold === undefined) return false;
    for (const w of workers) {
      const limit = threshold * (w.maxNumBatchedTokens ?? DEFAULT_MAX_BATCHED_TOKENS);
      if (tracker.activePrefillTokens(w.worker) <= limit) return false;
    }
    return workers.length > 0;
  };

  const run = (request: ScheduleRequest, queuedMs: number): ScheduleResult => {
    const { scores, treeSizes } = request.overlaps;
    const track = request.trackPrefillTokens ?? true;
    const keys = request.workers.map((w) => w.worker);
    const loads = tracker.potentialLoads(keys, {
      tokenSeq: request.tokenSeq,
      isl: request.isl,
      overlaps: scores,
      trackPrefillTokens: track,
    });
    const candidates: SelectionCandidate[] = keys.map((worker) => {
      const load = loads.get(worker);
      const indexed = scores.get(worker) ?? 0;
      return {
        worker,
        overlapBlocks: activeOverlap && load
          ? Math.max(indexed, load.activeOverlapBlocks)
          : indexed,
        treeSize: treeSizes.get(worker) ?? 0,
        decodeBlocks: load?.decodeBlocks,
        activePrefillTokens: load?.activePrefillTokens,
      };
    });
    const selection = selector.select({
      isl: request.isl,
      candidates,
      trackPrefillTokens: track,
      overrides: request.overrides,
      requestId: request.requestId,
    });
    if (request.updateStates ?? true) {
      tracker.addRequest(selection.worker, {
        requestId: request.requestId,
        tokenSeq: request.tokenSeq,
        isl: request.isl,
        overlap: selection.overlapBlocks,
        expectedOutputTokens: request.expectedOutputTokens,
        trackPrefillTokens: track,
        prefillLoadHint: request.prefillLoadHint,
      });
    }
    return { ...selection, queuedMs };
  };

  const keyOf = (request: ScheduleRequest, at: number) => {
    const jump = request.priorityJump ?? 0;
    return policy === 'wspt'
      ? (1 + jump) / Math.max(1, request.isl)
      : jump - (at - startedAt) / 1000;
  };

  const settle = (entry: Entry, outcome: () => ScheduleResult) => {
    entry.done = true;
    if (entry.onAbort) entry.request.signal?.removeEventListener('abort', entry.onAbort);
    try {
      entry.resolve(outcome());
    } catch (error) {
      entry.reject(error);
    }
  };

  const update = () => {
    if (threshold === undefined) return;
    let count = pending;
    for (;;) {
      const top = heap.peek();
      if (!top) break;
      if (top.done) {
        heap.pop();
        continue;
      }
      if (allBusy(top.request.workers)) break;
      heap.pop();
      count--;
      const queuedMs = now() - top.enqueuedAt;
      logger?.debug('Scheduling a queued request', { requestId: top.request.requestId, queuedMs });
      settle(top, () => run(top.request, queuedMs));
    }
    if (count !== pending) setPending(count);
  };

  return {
    tracker,
    schedule(request) {
      const queueable = threshold !== undefined && !request.bypassQueue;
      if (!queueable || !allBusy(request.workers)) {
        try {
          return Promise.resolve(run(request, 0));
        } catch (error) {
          return Promise.reject(error);
        }
      }
      if (request.signal?.aborted) {
        return Promise.reject(new CancelledError('Request was cancelled while queued'));
      }
      return new Promise<ScheduleResult>((resolve, reject) => {
        const at = now();
        const entry: Entry = {
          key: keyOf(request, at),
          seq: seq++,
          request,
          enqueuedAt: at,
          resolve,
          reject,
          done: false,
        };
        if (request.signal) {
          entry.onAbort = () => {
            if (entry.done) return;
            entry.done = true;
            setPending(pending - 1);
            reject(new CancelledError('Request was cancelled while queued'));
          };
          request.signal.addEventListener('abort', entry.onAbort, { once: true });
        }
        heap.push(entry);
        logger?.debug('All workers are busy; queueing the request', {
          requestId: request.requestId,
        });
        setPending(pending + 1);
      });
    },
    markPrefillCompleted(requestId) {
      tracker.markPrefillCompleted(requestId);
      update();
    },
    addOutputBlock(requestId, fraction) {
      tracker.addOutputBlock(requestId, fraction);
    },
    free(requestId) {
      tracker.free(requestId);
      update();
    },
    applyRemote(event) {
      tracker.applyRemote(event);
      update();
    },
    update,
    pendingCount: () => pending,
    activeLoad: (worker) => tracker.activeLoad(worker),
  };
}
