/**
 * Active sequence tracking, the router's "slot manager" (router reference §4.4): what each
 * (worker, dp_rank) is busy with right now, as the router itself booked it.
 *
 * - `createActiveSequences()` is one worker's view: reference-counted blocks (prompt blocks keyed
 *   by their sequence hash, so requests sharing a prefix share blocks), the prompt tokens still
 *   waiting for prefill (a FIFO; with an expected prefill duration only the oldest one decays),
 *   fractional output blocks, and a stale-request sweep.
 * - `createSequenceTracker()` holds one of those per worker key, maps request → worker, computes
 *   every candidate's potential load in one pass, and reports each local change for replica sync
 *   (§5.1) while applying peers' changes through `applyRemote()`.
 *
 * Pure and runtime-neutral: time and randomness come in through options.
 */
import type { Logger } from '../../logger.ts';
import { parseWorkerKey, workerKey } from './worker-key.ts';

/** A request older than this is freed by the stale sweep (lost `free`, lost replica event). */
export const DEFAULT_EXPIRY_MS = 300_000;
/** The stale sweep runs at most this often. */
export const DEFAULT_EXPIRY_CHECK_MS = 30_000;

/** Sequence hashes of a request's prompt blocks: a `BigUint64Array` or any array of u64s. */
export type TokenSequence = ArrayLike<bigint>;

/** Overrides the prompt load a request puts on its worker until prefill completes. */
export interface PrefillLoadHint {
  /** Prompt tokens the worker still has to prefill; 0 means no prefill load. */
  initialEffectivePrefillTokens: number;
  /**
   * When set, this request's load decays linearly to 0 over this many ms while it is the oldest
   * prefill on the worker (`--router-prefill-load-model aic`); otherwise it counts in full.
   */
  expectedPrefillDurationMs?: number;
}

export interface AddRequestOptions {
  requestId: string;
  /** Block hashes to hold while the request runs; none means the request adds no blocks. */
  tokenSeq?: TokenSequence | null;
  /** Prompt length in tokens. */
  isl: number;
  /** Prompt blocks already cached on the worker. */
  overlap: number;
  /** `nvext.agent_hints.osl`, kept for the caller's output-block decay fraction. */
  expectedOutputTokens?: number;
  /**
   * Count the prompt's uncached tokens as prefill load until `markPrefillCompleted`.
   * @default true
   */
  trackPrefillTokens?: boolean;
  /** Defaults to `max(isl - overlap * blockSize, 0)` tokens with no decay. */
  prefillLoadHint?: PrefillLoadHint;
}

export interface ActiveSequencesOptions {
  /** KV block size in tokens. */
  blockSize: number;
  /** Milliseconds, monotonic. @default () => performance.now() */
  now?: () => number;
  /** Hash of a new output block. @default crypto.getRandomValues */
  randomU64?: () => bigint;
  /** @default DEFAULT_EXPIRY_MS */
  expiryMs?: number;
  /** @default DEFAULT_EXPIRY_CHECK_MS */
  expiryCheckMs?: number;
  /** Called when a block becomes active on this worker (`true`) or stops being active. */
  onBlockPresence?: (hash: bigint, present: boolean) => void;
  logger?: Logger;
}

/** The load a candidate request would put on one worker. */
export interface PotentialLoad {
  /** Active blocks plus the request's blocks this worker does not hold yet. */
  decodeBlocks: number;
  /** Active prefill tokens plus the request's uncached tokens (when tracking prefill). */
  prefillTokens: number;
  /** Prefill tokens already active on the worker, before this request. */
  activePrefillTokens: number;
  /**
   * Leading blocks of the prompt that requests in flight on the worker hold (with real sequence
   * hashes, `--router-assume-kv-reuse`): computed there by the time this request is admitted.
   */
  activeOverlapBlocks: number;
}

/** One worker's active sequences. */
export interface ActiveSequences {
  readonly blockSize: number;
  /** Books a request; returns the ids the stale sweep freed on the way. Duplicates are ignored. */
  addRequest(request: AddRequestOptions): string[];
  /** Removes the request's prefill load; idempotent. */
  markPrefillCompleted(requestId: string): void;
  /** Releases the request's blocks and prefill load; false if the id is unknown. */
  free(requestId: string): boolean;
  /**
   * Holds one more (random) block for the request. With `fraction`, every block only this request
   * holds then counts as `fraction` of a block. False if the id is unknown.
   */
  addOutputBlock(requestId: string, fraction?: number): boolean;
  /** Frees requests older than the expiry, at most once per check interval. */
  forceExpiry(): string[];
  /** `round(unique blocks - Σ (1 - fraction))`. */
  activeBlocks(): number;
  /** Prompt tokens still waiting for prefill at `now`. */
  activeTokens(now?: number): number;
  newTokens(isl: number, overlap: number): number;
  /** Blocks of `tokenSeq` this worker does not hold. */
  newBlocks(tokenSeq: TokenSequence): number;
  /** Leading blocks of `tokenSeq` this worker holds. */
  prefixBlocks(tokenSeq: TokenSequence): number;
  potentialLoad(
    tokenSeq: TokenSequence | null | undefined,
    isl: number,
    overlap: number,
    trackPrefillTokens?: boolean,
  ): PotentialLoad;
  has(requestId: string): boolean;
  requestIds(): string[];
  /** Hashes of the active blocks. */
  blockHashes(): IterableIterator<bigint>;
  /** Request ids with prefill load, oldest first (diagnostics and tests). */
  prefillOrder(): string[];
  /** Σ of the full prefill loads in `prefillOrder()`. */
  prefillTokensSum(): number;
}

interface RequestState {
  blocks: bigint[];
  startedAt: number;
  expectedOutputTokens: number | undefined;
}

interface PrefillState {
  initial: number;
  durationMs: number | undefined;
  startedAt: number;
}

/** A uniformly random u64 from the platform CSPRNG. */
export function randomU64(): bigint {
  const words = crypto.getRandomValues(new Uint32Array(2));
  return (BigInt(words[0] as number) << 32n) | BigInt(words[1] as number);
}

export function createActiveSequences(options: ActiveSequencesOptions): ActiveSequences {
  const blockSize = options.blockSize;
  if (!(blockSize > 0)) throw new RangeError(`Block size must be positive (got ${blockSize})`);
  const now = options.now ?? (() => performance.now());
  const nextHash = options.randomU64 ?? randomU64;
  const expiryMs = options.expiryMs ?? DEFAULT_EXPIRY_MS;
  const checkMs = options.expiryCheckMs ?? DEFAULT_EXPIRY_CHECK_MS;
  const onPresence = options.onBlockPresence;
  const log = options.logger;

  const requests = new Map<string, RequestState>();
  /** Insertion order is the prefill FIFO. */
  const prefill = new Map<string, PrefillState>();
  let prefillSum = 0;
  const refs = new Map<bigint, number>();
  /** Only ever holds hashes present in `refs`. */
  const fractions = new Map<bigint, number>();
  let cachedBlocks = -1;
  let lastExpiryCheck = now();

  const touch = (hash: bigint) => {
    const count = refs.get(hash);
    if (count === undefined) {
      refs.set(hash, 1);
      cachedBlocks = -1;
      onPresence?.(hash, true);
    } else {
      refs.set(hash, count + 1);
    }
  };
  const release = (hash: bigint) => {
    const count = refs.get(hash);
    if (count === undefined) return;
    if (count > 1) {
      refs.set(hash, count - 1);
      return;
    }
    refs.delete(hash);
    fractions.delete(hash);
    cachedBlocks = -1;
    onPresence?.(hash, false);
  };
  const remaining = (state: PrefillState, at: number) => {
    if (state.durationMs === undefined) return state.initial;
    if (state.durationMs <= 0) return 0;
    const elapsed = Math.max(0, at - state.startedAt);
    const left = Math.min(1, Math.max(0, 1 - elapsed / state.durationMs));
    return Math.ceil(state.initial * left);
  };

  const self: ActiveSequences = {
    blockSize,
    addRequest(request) {
      const id = request.requestId;
      if (requests.has(id)) {
        log?.error('Request is already active; ignoring the duplicate add', { requestId: id });
        return [];
      }
      const expired = self.forceExpiry();
      const startedAt = now();
      const blocks: bigint[] = [];
      const seq = request.tokenSeq;
      if (seq) {
        for (let i = 0; i < seq.length; i++) {
          const hash = seq[i] as bigint;
          blocks.push(hash);
          touch(hash);
        }
      }
      requests.set(id, { blocks, startedAt, expectedOutputTokens: request.expectedOutputTokens });
      if (request.trackPrefillTokens ?? true) {
        const hint = request.prefillLoadHint;
        const initial = hint?.initialEffectivePrefillTokens ??
          self.newTokens(request.isl, request.overlap);
        if (initial > 0) {
          prefill.set(id, { initial, durationMs: hint?.expectedPrefillDurationMs, startedAt });
          prefillSum += initial;
        }
      }
      return expired;
    },
    markPrefillCompleted(requestId) {
      const state = prefill.get(requestId);
      if (!state) return;
      prefill.delete(requestId);
      prefillSum -= state.initial;
    },
    free(requestId) {
      self.markPrefillCompleted(requestId);
      const state = requests.get(requestId);
      if (!state) {
        log?.warn('Cannot free an unknown request', { requestId });
        return false;
      }
      requests.delete(requestId);
      for (const hash of state.blocks) release(hash);
      return true;
    },
    addOutputBlock(requestId, fraction) {
      const state = requests.get(requestId);
      if (!state) {
        log?.warn('Cannot add an output block to an unknown request', { requestId });
        return false;
      }
      const hash = nextHash();
      touch(hash);
      state.blocks.push(hash);
      if (fraction !== undefined) {
        for (const block of state.blocks) {
          if (refs.get(block) === 1) fractions.set(block, fraction);
        }
        cachedBlocks = -1;
      }
      return true;
    },
    forceExpiry() {
      const at = now();
      if (at < lastExpiryCheck + checkMs) return [];
      lastExpiryCheck = at;
      const cutoff = at - expiryMs;
      const expired: string[] = [];
      for (const [id, state] of requests) if (state.startedAt < cutoff) expired.push(id);
      for (const id of expired) {
        log?.warn('Expiring a stale request', { requestId: id });
        self.free(id);
      }
      return expired;
    },
    activeBlocks() {
      if (fractions.size === 0) return refs.size;
      if (cachedBlocks < 0) {
        let count = refs.size;
        for (const fraction of fractions.values()) count = count - 1 + fraction;
        cachedBlocks = Math.max(0, Math.round(count));
      }
      return cachedBlocks;
    },
    activeTokens(at = now()) {
      const oldest = prefill.values().next();
      if (oldest.done) return 0;
      return prefillSum - oldest.value.initial + remaining(oldest.value, at);
    },
    newTokens(isl, overlap) {
      return Math.max(isl - overlap * blockSize, 0);
    },
    prefixBlocks(tokenSeq) {
      let n = 0;
      while (n < tokenSeq.length && refs.has(tokenSeq[n] as bigint)) n++;
      return n;
    },
    newBlocks(tokenSeq) {
      let count = 0;
      for (let i = 0; i < tokenSeq.length; i++) if (!refs.has(tokenSeq[i] as bigint)) count++;
      return count;
    },
    potentialLoad(tokenSeq, isl, overlap, trackPrefillTokens = true) {
      const activePrefillTokens = self.activeTokens();
      return {
        decodeBlocks: self.activeBlocks() + (tokenSeq ? self.newBlocks(tokenSeq) : 0),
        prefillTokens: activePrefillTokens +
          (trackPrefillTokens ? self.newTokens(isl, overlap) : 0),
        activePrefillTokens,
        activeOverlapBlocks: tokenSeq ? self.prefixBlocks(tokenSeq) : 0,
      };
    },
    has: (requestId) => requests.has(requestId),
    requestIds: () => [...requests.keys()],
    blockHashes: () => refs.keys(),
    prefillOrder: () => [...prefill.keys()],
    prefillTokensSum: () => prefillSum,
  };
  return self;
}

// ---------------------------------------------------------------------------------------------
// Every worker: request → worker map, potential loads, replica sync

/** Rust `Duration` as serde writes it. */
export interface WireDuration {
  secs: number;
  nanos: number;
}

/** `AddRequest` of an `ActiveSequenceEvent` (router reference §5.1). */
export interface WireAddRequest {
  /** u64 block hashes; null when active blocks are not tracked. */
  token_sequence: Array<bigint | number> | null;
  /** Older peers read `isl` and `overlap` to derive the prefill load; newer ones omit them. */
  isl?: number;
  overlap?: number;
  track_prefill_tokens: boolean;
  expected_output_tokens?: number | null;
  prefill_load_hint?: {
    initial_effective_prefill_tokens: number;
    expected_prefill_duration?: WireDuration | null;
  } | null;
}

/** Replica-sync message on `active_sequences_events` (router reference §5.1). */
export interface ActiveSequenceEvent {
  request_id: string;
  worker: { worker_id: bigint | number; dp_rank: number };
  data: { AddRequest: WireAddRequest } | 'MarkPrefillCompleted' | 'Free';
  router_id: bigint | number;
  lora_name?: string | null;
}

export interface WorkerLoad {
  activeDecodeBlocks: number;
  activePrefillTokens: number;
}

export interface PotentialLoadRequest {
  tokenSeq?: TokenSequence | null;
  isl: number;
  /** Cached prompt blocks per worker key (indexer `OverlapScores.scores`); missing = 0. */
  overlaps?: ReadonlyMap<string, number>;
  /** @default true */
  trackPrefillTokens?: boolean;
}

export interface SequenceTrackerOptions
  extends Omit<ActiveSequencesOptions, 'onBlockPresence' | 'logger'> {
  /** This router's id in replica events; events carrying it are ignored. @default random */
  routerId?: bigint;
  /** Receives an event after each local add, prefill completion and free (not output blocks). */
  onEvent?: (event: ActiveSequenceEvent) => void;
  logger?: Logger;
}

/** Active sequences of every (worker, dp_rank), keyed by `workerKey`. */
export interface SequenceTracker {
  readonly blockSize: number;
  readonly routerId: bigint;
  /** Creates the worker's slot if missing (slots are also created on first use). */
  upsertWorker(worker: string): void;
  /** Drops one (worker, dp_rank) slot and every request booked on it. */
  removeWorker(worker: string): void;
  /** Drops every dp rank of a worker instance. */
  removeWorkerId(workerId: bigint): void;
  workers(): string[];
  /** Books a request on `worker`; returns false for a duplicate id. */
  addRequest(worker: string, request: AddRequestOptions): boolean;
  markPrefillCompleted(requestId: string): boolean;
  free(requestId: string): boolean;
  /** Not replicated to peers (as in Dynamo). */
  addOutputBlock(requestId: string, fraction?: number): boolean;
  workerOf(requestId: string): string | undefined;
  /** The load the request would add on each of `workers`, in one pass over its blocks. */
  potentialLoads(
    workers: Iterable<string>,
    request: PotentialLoadRequest,
  ): Map<string, PotentialLoad>;
  /** Undefined for a worker with no slot. */
  activeLoad(worker: string): WorkerLoad | undefined;
  /** Prefill tokens still waiting on `worker` (0 for an unknown worker). */
  activePrefillTokens(worker: string): number;
  activeLoads(): Map<string, WorkerLoad>;
  /** Applies a peer router's event; its own events (same `router_id`) are skipped. */
  applyRemote(event: ActiveSequenceEvent): void;
  /** Runs the stale sweep on every worker; returns the freed request ids. */
  forceExpiry(): string[];
}

const toDuration = (ms: number): WireDuration => {
  const secs = Math.floor(ms / 1000);
  return { secs, nanos: Math.round((ms - secs * 1000) * 1e6) };
};

export function createSequenceTracker(options: SequenceTrackerOptions): SequenceTracker {
  const { blockSize, onEvent, logger } = options;
  const routerId = options.routerId ?? randomU64();
  const now = options.now ?? (() => performance.now());
  const slots = new Map<string, ActiveSequences>();
  /** Small integer id per slot (reused after removal), indexing `presentCounts`. */
  const slotIds = new Map<ActiveSequences, number>();
  const freeIds: number[] = [];
  let presentCounts = new Int32Array(8);
  /** Per slot id: how many leading blocks of the request being scored the slot holds. */
  let prefixDepths = new Int32Array(8);
  const requestWorker = new Map<string, string>();
  /** Slot ids holding each active block: one pass per request gives every worker's new blocks. */
  const holders = new Map<bigint, number[]>();

  const unhold = (hash: bigint, id: number) => {
    const list = holders.get(hash);
    if (!list) return;
    const at = list.indexOf(id);
    if (at >= 0) {
      list[at] = list[list.length - 1] as number;
      list.pop();
    }
    if (list.length === 0) holders.delete(hash);
  };
  const slotFor = (worker: string): ActiveSequences => {
    let slot = slots.get(worker);
    if (slot) return slot;
    const id = freeIds.pop() ?? slotIds.size;
    if (id >= presentCounts.length) {
      const grown = new Int32Array(presentCounts.length * 2);
      grown.set(presentCounts);
      presentCounts = grown;
      const depths = new Int32Array(grown.length);
      depths.set(prefixDepths);
      prefixDepths = depths;
    }
    slot = createActiveSequences({
      ...options,
      now,
      logger,
      onBlockPresence(hash, present) {
        if (!present) return unhold(hash, id);
        const list = holders.get(hash);
        if (list) list.push(id);
        else holders.set(hash, [id]);
      },
    });
    slots.set(worker, slot);
    slotIds.set(slot, id);
    return slot;
  };
  const forget = (worker: string, ids: readonly string[]) => {
    for (const id of ids) if (requestWorker.get(id) === worker) requestWorker.delete(id);
  };
  const emit = (requestId: string, worker: string, data: ActiveSequenceEvent['data']) => {
    if (!onEvent) return;
    const { workerId, dpRank } = parseWorkerKey(worker);
    onEvent({
      request_id: requestId,
      worker: { worker_id: workerId, dp_rank: dpRank },
      data,
      router_id: routerId,
    });
  };
  const add = (worker: string, request: AddRequestOptions): boolean => {
    if (requestWorker.has(request.requestId)) {
      logger?.error('Request is already active; ignoring the duplicate add', {
        requestId: request.requestId,
        worker,
      });
      return false;
    }
    const slot = slotFor(worker);
    forget(worker, slot.addRequest(request));
    requestWorker.set(request.requestId, worker);
    return true;
  };
  const dropSlot = (worker: string) => {
    const slot = slots.get(worker);
    if (!slot) return;
    const id = slotIds.get(slot) as number;
    for (const hash of [...slot.blockHashes()]) unhold(hash, id);
    forget(worker, slot.requestIds());
    slots.delete(worker);
    slotIds.delete(slot);
    freeIds.push(id);
  };
  const loadOf = (slot: ActiveSequences): WorkerLoad => ({
    activeDecodeBlocks: slot.activeBlocks(),
    activePrefillTokens: slot.activeTokens(),
  });

  return {
    blockSize,
    routerId,
    upsertWorker: (worker) => void slotFor(worker),
    removeWorker: dropSlot,
    removeWorkerId(workerId) {
      const prefix = `${workerId.toString(16)}:`;
      for (const worker of [...slots.keys()]) if (worker.startsWith(prefix)) dropSlot(worker);
    },
    workers: () => [...slots.keys()],
    addRequest(worker, request) {
      if (!add(worker, request)) return false;
      if (onEvent) {
        const track = request.trackPrefillTokens ?? true;
        const hint = request.prefillLoadHint;
        const seq = request.tokenSeq;
        emit(request.requestId, worker, {
          AddRequest: {
            token_sequence: seq ? Array.from(seq) : null,
            isl: request.isl,
            overlap: request.overlap,
            track_prefill_tokens: track,
            expected_output_tokens: request.expectedOutputTokens ?? null,
            prefill_load_hint: track
              ? {
                initial_effective_prefill_tokens: hint?.initialEffectivePrefillTokens ??
                  Math.max(request.isl - request.overlap * blockSize, 0),
                expected_prefill_duration: hint?.expectedPrefillDurationMs === undefined
                  ? null
                  : toDuration(hint.expectedPrefillDurationMs),
              }
              : null,
          },
        });
      }
      return true;
    },
    markPrefillCompleted(requestId) {
      const worker = requestWorker.get(requestId);
      if (worker === undefined) return false;
      slots.get(worker)?.markPrefillCompleted(requestId);
      emit(requestId, worker, 'MarkPrefillCompleted');
      return true;
    },
    free(requestId) {
      const worker = requestWorker.get(requestId);
      if (worker === undefined) {
        logger?.warn('Cannot free an unknown request', { requestId });
        return false;
      }
      requestWorker.delete(requestId);
      slots.get(worker)?.free(requestId);
      emit(requestId, worker, 'Free');
      return true;
    },
    addOutputBlock(requestId, fraction) {
      const worker = requestWorker.get(requestId);
      if (worker === undefined) return false;
      return slots.get(worker)?.addOutputBlock(requestId, fraction) ?? false;
    },
    workerOf: (requestId) => requestWorker.get(requestId),
    potentialLoads(workers, request) {
      const seq = request.tokenSeq;
      const counts = presentCounts;
      const depths = prefixDepths;
      const touched: number[] = [];
      if (seq) {
        for (let i = 0; i < seq.length; i++) {
          const list = holders.get(seq[i] as bigint);
          if (!list) continue;
          for (let j = 0; j < list.length; j++) {
            const id = list[j] as number;
            const count = counts[id] as number;
            counts[id] = count + 1;
            if (count === 0) touched.push(id);
            if (depths[id] === i) depths[id] = i + 1;
          }
        }
      }
      const length = seq ? seq.length : 0;
      const track = request.trackPrefillTokens ?? true;
      const at = now();
      const out = new Map<string, PotentialLoad>();
      for (const worker of workers) {
        const overlap = request.overlaps?.get(worker) ?? 0;
        const newTokens = track ? Math.max(request.isl - overlap * blockSize, 0) : 0;
        const slot = slots.get(worker);
        if (!slot) {
          out.set(worker, {
            decodeBlocks: length,
            prefillTokens: newTokens,
            activePrefillTokens: 0,
            activeOverlapBlocks: 0,
          });
          continue;
        }
        const active = slot.activeTokens(at);
        const id = slotIds.get(slot) as number;
        out.set(worker, {
          decodeBlocks: slot.activeBlocks() + length - (counts[id] ?? 0),
          prefillTokens: active + newTokens,
          activePrefillTokens: active,
          activeOverlapBlocks: depths[id] ?? 0,
        });
      }
      for (const id of touched) {
        counts[id] = 0;
        depths[id] = 0;
      }
      return out;
    },
    activeLoad(worker) {
      const slot = slots.get(worker);
      return slot ? loadOf(slot) : undefined;
    },
    activePrefillTokens: (worker) => slots.get(worker)?.activeTokens() ?? 0,
    activeLoads() {
      const out = new Map<string, WorkerLoad>();
      for (const [worker, slot] of slots) out.set(worker, loadOf(slot));
      return out;
    },
    applyRemote(event) {
      if (BigInt(event.router_id) === routerId) return;
      const worker = workerKey(BigInt(event.worker.worker_id), event.worker.dp_rank);
      const id = event.request_id;
      const data = event.data;
      if (data === 'MarkPrefillCompleted') {
        slots.get(worker)?.markPrefillCompleted(id);
      } else if (data === 'Free') {
        slots.get(worker)?.free(id);
        if (requestWorker.get(id) === worker) requestWorker.delete(id);
      } else if (typeof data === 'object' && data !== null && 'AddRequest' in data) {
        const wire = data.AddRequest;
        const hint = wire.prefill_load_hint;
        const duration = hint?.expected_prefill_duration;
        add(worker, {
          requestId: id,
          tokenSeq: wire.token_sequence ? wire.token_sequence.map((h) => BigInt(h)) : null,
          isl: wire.isl ?? 0,
          overlap: wire.overlap ?? 0,
          expectedOutputTokens: wire.expected_output_tokens ?? undefined,
          trackPrefillTokens: wire.track_prefill_tokens ?? true,
          prefillLoadHint: hint
            ? {
              initialEffectivePrefillTokens: hint.initial_effective_prefill_tokens,
              expectedPrefillDurationMs: duration
                ? duration.secs * 1000 + duration.nanos / 1e6
                : undefined,
            }
            : undefined,
        });
      }
    },
    forceExpiry() {
      const expired: string[] = [];
      for (const [worker, slot] of slots) {
        const ids = slot.forceExpiry();
        forget(worker, ids);
        expired.push(...ids);
      }
      return expired;
    },
  };
}
