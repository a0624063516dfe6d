/**
 * `--router-mode kv`: one KV router per model and pool (the aggregated/decode workers, and the
 * prefill workers of disaggregated serving). Each pool has an indexer fed by the workers' KV
 * events (or, with `--no-router-kv-events`, by its own routing decisions with a TTL), a tracker
 * of the requests in flight per worker, and a scheduler that scores the workers and books the
 * chosen one. Pools follow discovery: a worker that appears is loaded from its own dump, one that
 * leaves is dropped from the index and the tracker. No timers: TTL expiry, pruning and the stale
 * sweep run lazily on routing calls, so a core never keeps a process alive.
 */
import type { Config } from '../../config.ts';
import type { ModelRegistry, ServedModel, WorkerInstance } from '../../discovery/models.ts';
import { NotFoundError } from '../../errors.ts';
import type { BlockHasher } from './hash.ts';
import type { Logger } from '../../logger.ts';
import { type ApproxIndexer, createApproxIndexer } from './approx.ts';
import { createKvIndexer, type KvIndexer, type OverlapScores, workerKey } from './indexer.ts';
import type { RouterMetrics } from './metrics.ts';
import { createKvScheduler, type KvScheduler } from './queue.ts';
import { createWorkerSelector } from './selector.ts';
import {
  type ActiveSequenceEvent,
  createSequenceTracker,
  randomU64,
  type SequenceTracker,
} from './sequences.ts';
import {
  createKvSubscriber,
  type KvQuery,
  type KvQueryResponse,
  type KvSubscriber,
} from './subscriber.ts';
import type { KvBooking, KvRouter, KvRouteRequest, KvRouting } from './types.ts';
import type { AppliedEvent } from './event-pool.ts';
import { stringifyExactJson } from '../../json.ts';
import { parseWorkerKey } from './worker-key.ts';

/** Default KV block size when neither the card nor `--kv-cache-block-size` gives one. */
const DEFAULT_BLOCK_SIZE = 16;

export interface KvRoutingPorts {
  config: Config;
  logger: Logger;
  models: ModelRegistry;
  metrics: RouterMetrics;
  /** Loads XXH3 once (async); every later hash is synchronous. */
  hasher: () => Promise<BlockHasher>;
  /** Asks a worker's `worker_kv_indexer_query` endpoint (recovery and dumps). */
  query(instance: WorkerInstance, request: KvQuery): Promise<KvQueryResponse>;
  /** Monotonic milliseconds. */
  monotonic(): number;
  random(): number;
  /** `--router-replica-sync`: sends a tracker event to the other frontends. @default none */
  publishSync?: (event: ActiveSequenceEvent, on: WorkerInstance) => void;
  /** This frontend's id in replica-sync events. @default random */
  routerId?: bigint;
  /**
   * `--router-event-threads N > 1`: an event sink that decodes raw event-plane messages off the
   * main thread and applies them to `indexer` in submission order. @default none (inline)
   */
  eventPool?: (options: {
    indexer: KvIndexer;
    onApplied: (event: AppliedEvent) => void;
  }) => KvEventSink;
}

/** Where raw KV event messages go in threaded mode (src/adapters/threads/kv-event-pool.ts). */
export interface KvEventSink {
  /** An event-plane envelope (or RouterEvent JSON) as it came off the wire. */
  submit(message: Uint8Array | string): void;
  removeWorker(workerId: bigint): void;
  removeWorkerDpRank(workerId: bigint, dpRank: number): void;
  close(): Promise<void>;
}

/** The `worker_id` of a RouterEvent's JSON text, found without parsing it (0 when absent). */
export function scanWorkerId(message: Uint8Array | string): string | undefined {
  const text = typeof message === 'string'
    ? message
    : new TextDecoder().decode(message.subarray(0, Math.min(message.length, 512)));
  const match = /"worker_id"\s*:\s*"?(\d+)/.exec(text);
  return match ? BigInt(match[1] as string).toString(16) : undefined;
}

export interface KvRoutingControl extends KvRouting {
  /** A `kv-events` payload (`RouterEvent`) from the event plane. */
  onKvEvent(payload: unknown): void;
  /** A peer frontend's `active_sequences_events` payload. */
  onReplicaEvent(payload: unknown): void;
  /** Re-reads the registry's workers (call on every registry change). */
  sync(): void;
  /** Recoveries and dumps in flight (tests wait for 0). */
  pending(): number;
  /** The indexer of a model's pool, once it exists (tests, debugging). */
  indexerOf(model: string, pool?: 'decode' | 'prefill'): KvIndexer | undefined;
  /** The router's load on a worker's rank in a model's decode pool (busy detection). */
  loadOf(
    model: string,
    workerId: string,
    dpRank: number,
  ): { activeDecodeBlocks: number; activePrefillTokens: number } | undefined;
  /** Threaded mode: a raw `kv-events` message from the event plane. */
  onKvEventRaw(message: Uint8Array | string): void;
  /** Stops event threads. */
  close(): Promise<void>;
}

interface Pool {
  model: string;
  pool: 'decode' | 'prefill';
  blockSize: number;
  dpSize: number;
  maxNumBatchedTokens?: number;
  indexer: KvIndexer;
  approx?: ApproxIndexer;
  subscriber?: KvSubscriber;
  /** Threaded mode: the sink that decodes and applies events, and its recovery state. */
  threaded?: ThreadedEvents;
  tracker: SequenceTracker;
  scheduler: KvScheduler;
  /** instance id (hex) -> instance, as last synced. */
  members: Map<string, WorkerInstance>;
  router: KvRouter;
}

interface ThreadedEvents {
  sink: KvEventSink;
  /** Last event id applied per worker key. */
  last: Map<string, number>;
  /** Worker keys whose dump is being fetched. */
  resyncing: Set<string>;
  resync(workerId: bigint, dpRank: number): Promise<void>;
}

const numberOf = (v: unknown): number | undefined =>
  typeof v === 'number' && Number.isFinite(v) ? v : undefined;

export function createKvRouting(ports: KvRoutingPorts): KvRoutingControl {
  const { config, logger, models, metrics } = ports;
  const routerId = ports.routerId ?? randomU64();
  const pools = new Map<string, Pool>();
  /** instance id (hex) -> pools it is a member of. */
  const poolsOfWorker = new Map<string, Set<Pool>>();
  let hasher: BlockHasher | undefined;
  let hasherLoading: Promise<BlockHasher> | undefined;
  let nextBooking = 0;
  const routerLabel = { router_id: routerId.toString(16) };

  const loadHasher = async () => hasher ??= await (hasherLoading ??= ports.hasher());

  const poolKey = (model: string, pool: string) => `${model}\u0000${pool}`;

  function createPool(model: ServedModel, kind: 'decode' | 'prefill'): Pool {
    const card = model.card;
    const runtime = (card.runtime_config ?? {}) as Record<string, unknown>;
    const blockSize = config.kvCacheBlockSize ?? (card.kv_cache_block_size || DEFAULT_BLOCK_SIZE);
    const dpSize = Math.max(1, numberOf(runtime.data_parallel_size) ?? 1);
    const indexer = createKvIndexer();
    const approx = config.routerKvEvents ? undefined : createApproxIndexer({
      indexer,
      ttlMs: config.routerTtlSecs * 1000,
      maxTreeSize: config.routerMaxTreeSize,
      pruneTargetRatio: config.routerPruneTargetRatio,
      now: ports.monotonic,
    });
    const members = new Map<string, WorkerInstance>();
    const threaded = config.routerKvEvents && ports.eventPool
      ? createThreaded(indexer, members)
      : undefined;
    const subscriber = config.routerKvEvents && !threaded
      ? createKvSubscriber({
        indexer,
        logger,
        recoverOnFirstEvent: !config.routerResetStates,
        query: (workerId, request) => {
          const instance = members.get(workerId.toString(16));
          if (!instance) return Promise.reject(new Error('worker left discovery'));
          return ports.query(instance, request);
        },
        onApplied: (eventType, status) =>
          metrics.eventsApplied.inc({ event_type: eventType, status }),
        onDuplicate: () => metrics.eventWarnings.inc({ kind: 'duplicate_event' }),
        onGap: () => metrics.eventWarnings.inc({ kind: 'gap_recovered' }),
      })
      : undefined;
    const tracker = createSequenceTracker({
      blockSize,
      routerId,
      now: ports.monotonic,
      logger,
      ...(config.routerReplicaSync && ports.publishSync
        ? {
          onEvent: (event: ActiveSequenceEvent) => {
            const instance = members.get(event.worker.worker_id.toString(16));
            if (instance) ports.publishSync!(event, instance);
          },
        }
        : {}),
    });
    const workerType = kind === 'prefill' ? 'prefill' : 'decode';
    const scheduler = createKvScheduler({
      tracker,
      selector: createWorkerSelector({
        blockSize,
        overlapScoreWeight: config.routerKvOverlapScoreWeight,
        temperature: config.routerTemperature,
        random: ports.random,
        logger,
      }),
      queueThreshold: config.routerQueueThreshold,
      activeOverlap: config.routerActiveOverlap,
      now: ports.monotonic,
      logger,
      onPendingChange: (n) => metrics.queuePending.set({ worker_type: workerType }, n),
    });
    const pool: Pool = {
      model: model.name,
      pool: kind,
      blockSize,
      dpSize,
      maxNumBatchedTokens: numberOf(runtime.max_num_batched_tokens),
      indexer,
      approx,
      subscriber,
      threaded,
      tracker,
      scheduler,
      members,
      router: { route: (request, signal) => route(pool, request, signal) },
    };
    return pool;
  }

  /**
   * Threaded mode: events are decoded and applied by the sink, in order; gaps are noticed as
   * events are applied and repaired with a dump of the worker's blocks (sent through the sink,
   * so it lands in order too). Duplicates that slip through are idempotent stores or no-op
   * removes.
   */
  function createThreaded(
    indexer: KvIndexer,
    members: Map<string, WorkerInstance>,
  ): ThreadedEvents {
    const last = new Map<string, number>();
    const resyncing = new Set<string>();
    const state: ThreadedEvents = {
      sink: undefined as unknown as KvEventSink,
      last,
      resyncing,
      async resync(workerId, dpRank) {
        const key = workerKey(workerId, dpRank);
        if (resyncing.has(key)) return;
        resyncing.add(key);
        try {
          const instance = members.get(workerId.toString(16));
          if (!instance) return;
          const answer = await ports.query(instance, { dp_rank: dpRank, start_event_id: null });
          if (!('TreeDump' in answer)) {
            logger.warn('KV dump failed; continuing with a gap', { worker_id: key, answer });
            return;
          }
          if (!members.has(workerId.toString(16))) return;
          state.sink.removeWorkerDpRank(workerId, dpRank);
          const events = answer.TreeDump.events.map((e) => ({
            worker_id: workerId,
            event: { ...e.event, dp_rank: dpRank },
          }));
          if (events.length > 0) state.sink.submit(stringifyExactJson(events));
          const id = answer.TreeDump.last_event_id;
          if (id !== null) last.set(key, Math.max(last.get(key) ?? -1, id));
        } catch (error) {
          logger.warn('KV dump failed; continuing with a gap', { worker_id: key, error });
        } finally {
          resyncing.delete(key);
        }
      },
    };
    state.sink = ports.eventPool!({
      indexer,
      onApplied(event) {
        metrics.eventsApplied.inc({ event_type: event.kind, status: event.status });
        const key = workerKey(event.workerId, event.dpRank);
        const previous = last.get(key);
        if (previous !== undefined && event.eventId <= previous) {
          if (!resyncing.has(key)) metrics.eventWarnings.inc({ kind: 'duplicate_event' });
          return;
        }
        last.set(key, event.eventId);
        const expected = previous === undefined
          ? (config.routerResetStates ? event.eventId : 0)
          : previous + 1;
        if (event.eventId > expected && !resyncing.has(key)) {
          metrics.eventWarnings.inc({ kind: 'gap_recovered' });
          void state.resync(event.workerId, event.dpRank);
        }
      },
    });
    return state;
  }

  const publishLoads = (pool: Pool) => {
    const workerType = pool.pool === 'prefill' ? 'prefill' : 'decode';
    for (const [key, load] of pool.tracker.activeLoads()) {
      const { workerId, dpRank } = parseWorkerKey(key);
      const labels = {
        // Decimal, as Dynamo writes worker ids (and as the frontend's worker_last_* gauges do).
        worker_id: workerId.toString(),
        dp_rank: String(dpRank),
        worker_type: workerType,
      };
      metrics.workerActiveDecodeBlocks.set(labels, load.activeDecodeBlocks);
      metrics.workerActivePrefillTokens.set(labels, load.activePrefillTokens);
    }
  };

  async function route(
    pool: Pool,
    request: KvRouteRequest,
    signal?: AbortSignal,
  ): Promise<KvBooking> {
    const started = ports.monotonic();
    const h = await loadHasher();
    const salt = { loraName: request.loraName, cacheSalt: request.cacheSalt };
    const seed = h.isReady(salt) ? undefined : await h.prepare(salt);
    const hashed = ports.monotonic();
    const local = h.localHashes64(request.tokens, {
      blockSize: pool.blockSize,
      ...salt,
      ...(seed ? { seed } : {}),
    });
    const afterHash = ports.monotonic();

    // Eligible (worker, dp rank) pairs.
    let instances = request.candidates;
    if (request.pinned) {
      const pinned = pool.members.get(request.pinned) ??
        request.candidates.find((c) => c.instanceId === request.pinned);
      if (!pinned) {
        throw new NotFoundError(
          `Worker instance "${request.pinned}" is not serving model "${pool.model}"`,
          { param: 'nvext.backend_instance_id' },
        );
      }
      instances = [pinned];
    }
    const workers = instances.flatMap((instance) => {
      const id = BigInt(`0x${instance.instanceId}`);
      const ranks = request.dpRank !== undefined
        ? [request.dpRank]
        : Array.from({ length: pool.dpSize }, (_, r) => r);
      return ranks.map((rank) => ({
        worker: workerKey(id, rank),
        maxNumBatchedTokens: pool.maxNumBatchedTokens,
      }));
    });

    const weight = request.overrides?.overlapScoreWeight ?? config.routerKvOverlapScoreWeight;
    let overlaps: OverlapScores = { scores: new Map(), treeSizes: new Map() };
    if (weight > 0) {
      if (pool.approx) {
        pool.approx.expire();
        pool.approx.prune();
      }
      overlaps = pool.indexer.findMatches(local);
      // Ties go to the smaller tree: know the size of every candidate, not only the matched.
      for (const { worker } of workers) {
        if (overlaps.treeSizes.has(worker)) continue;
        const { workerId, dpRank } = parseWorkerKey(worker);
        overlaps.treeSizes.set(worker, pool.indexer.treeSize(workerId, dpRank));
      }
    }
    const afterMatch = ports.monotonic();

    const seq = h.sequenceHashes64(local);
    let tokenSeq: BigUint64Array | null = null;
    if (config.routerTrackActiveBlocks) {
      const reuse = request.overrides?.assumeKvReuse ?? config.routerAssumeKvReuse;
      if (reuse) tokenSeq = seq;
      else {
        tokenSeq = new BigUint64Array(local.length);
        for (let i = 0; i < tokenSeq.length; i++) tokenSeq[i] = randomU64();
      }
    }
    const book = request.book ?? true;
    const id = book ? `${request.requestId}#${(nextBooking++).toString(36)}` : request.requestId;
    const result = await pool.scheduler.schedule({
      requestId: id,
      isl: request.tokens.length,
      overlaps,
      tokenSeq,
      workers,
      priorityJump: request.priority,
      expectedOutputTokens: request.expectedOutputTokens,
      overrides: {
        ...(request.overrides?.overlapScoreWeight !== undefined
          ? { overlapScoreWeight: request.overrides.overlapScoreWeight }
          : {}),
        ...(request.overrides?.temperature !== undefined
          ? { routerTemperature: request.overrides.temperature }
          : {}),
      },
      trackPrefillTokens: request.overrides?.trackPrefillTokens ?? true,
      updateStates: book,
      bypassQueue: request.pinned !== undefined,
      signal,
    });
    const done = ports.monotonic();
    const { workerId, dpRank } = parseWorkerKey(result.worker);
    const instance = instances.find((i) =>
      i.instanceId === workerId.toString(16)
    ) as WorkerInstance;
    if (book && pool.approx) pool.approx.recordRouting(workerId, dpRank, local, seq);

    const labels = {
      dynamo_namespace: instance.endpoint.namespace,
      dynamo_component: instance.endpoint.component,
      dynamo_endpoint: instance.endpoint.endpoint,
    };
    metrics.requests.inc(labels);
    metrics.inputSequenceTokens.observe(labels, request.tokens.length);
    if (result.requiredBlocks > 0) {
      metrics.kvHitRate.observe(labels, result.overlapBlocks / result.requiredBlocks);
    }
    metrics.overheadBlockHashing.observe(routerLabel, afterHash - hashed);
    metrics.overheadFindMatches.observe(routerLabel, afterMatch - afterHash);
    metrics.overheadScheduling.observe(
      routerLabel,
      Math.max(0, done - afterMatch - result.queuedMs),
    );
    metrics.overheadTotal.observe(routerLabel, Math.max(0, done - started - result.queuedMs));
    logger.debug('kv routing decision', {
      request_id: request.requestId,
      model: pool.model,
      pool: pool.pool,
      worker_id: instance.instanceId,
      dp_rank: dpRank,
      overlap_blocks: result.overlapBlocks,
      required_blocks: result.requiredBlocks,
      cost: result.cost,
      queued_ms: result.queuedMs,
      scores: Object.fromEntries(overlaps.scores),
    });
    publishLoads(pool);

    const decision = {
      instance,
      dpRank,
      overlapBlocks: result.overlapBlocks,
      requiredBlocks: result.requiredBlocks,
    };
    if (!book) {
      return { ...decision, firstToken() {}, tokens() {}, free() {} };
    }
    const isl = request.tokens.length;
    let output = 0;
    let blocks = Math.ceil(isl / pool.blockSize);
    let freed = false;
    let first = true;
    return {
      ...decision,
      firstToken() {
        if (!first || freed) return;
        first = false;
        metrics.timeToFirstToken.observe(labels, (ports.monotonic() - done) / 1000);
        pool.scheduler.markPrefillCompleted(id);
        publishLoads(pool);
      },
      tokens(count) {
        if (freed) return;
        output += count;
        if (!config.routerTrackOutputBlocks) return;
        const total = Math.ceil((isl + output) / pool.blockSize);
        const expected = request.expectedOutputTokens;
        while (blocks < total) {
          blocks++;
          const fraction = expected !== undefined
            ? Math.max(0, 1 - output / Math.max(expected, 1))
            : undefined;
          pool.scheduler.addOutputBlock(id, fraction);
        }
      },
      free() {
        if (freed) return;
        freed = true;
        metrics.outputSequenceTokens.observe(labels, output);
        pool.scheduler.free(id);
        publishLoads(pool);
      },
    };
  }

  function poolFor(model: ServedModel, kind: 'decode' | 'prefill'): Pool {
    const key = poolKey(model.name, kind);
    let pool = pools.get(key);
    if (!pool) {
      pool = createPool(model, kind);
      pools.set(key, pool);
      syncPool(pool);
    }
    return pool;
  }

  function syncPool(pool: Pool) {
    const current = pool.pool === 'prefill'
      ? models.prefillInstances(pool.model)
      : models.instances(pool.model);
    const seen = new Set<string>();
    for (const instance of current) {
      seen.add(instance.instanceId);
      if (pool.members.has(instance.instanceId)) continue;
      pool.members.set(instance.instanceId, instance);
      let set = poolsOfWorker.get(instance.instanceId);
      if (!set) poolsOfWorker.set(instance.instanceId, set = new Set());
      set.add(pool);
      const workerId = BigInt(`0x${instance.instanceId}`);
      for (let rank = 0; rank < pool.dpSize; rank++) {
        pool.tracker.upsertWorker(workerKey(workerId, rank));
      }
      if (pool.subscriber && !config.routerResetStates) {
        void pool.subscriber.workerAdded(workerId, pool.dpSize).catch((error: unknown) =>
          logger.warn("could not load a worker's KV blocks", {
            instance_id: instance.instanceId,
            error,
          })
        );
      }
    }
    for (const id of [...pool.members.keys()]) {
      if (seen.has(id)) continue;
      pool.members.delete(id);
      poolsOfWorker.get(id)?.delete(pool);
      if (poolsOfWorker.get(id)?.size === 0) poolsOfWorker.delete(id);
      const workerId = BigInt(`0x${id}`);
      if (pool.subscriber) pool.subscriber.workerRemoved(workerId);
      else if (pool.threaded) {
        pool.threaded.sink.removeWorker(workerId);
        const prefix = `${id}:`;
        for (const key of [...pool.threaded.last.keys()]) {
          if (key.startsWith(prefix)) pool.threaded.last.delete(key);
        }
      } else pool.indexer.removeWorker(workerId);
      pool.approx?.removeWorker(workerId);
      pool.tracker.removeWorkerId(workerId);
      publishLoads(pool);
    }
  }

  const workerIdHex = (v: unknown): string | undefined => {
    if (typeof v === 'bigint') return v.toString(16);
    if (typeof v === 'number' && Number.isSafeInteger(v) && v >= 0) return v.toString(16);
    if (typeof v === 'string' && /^\d+$/.test(v)) return BigInt(v).toString(16);
    return undefined;
  };

  return {
    routerFor: (model, kind) => poolFor(model, kind).router,
    onKvEvent(payload) {
      const id = workerIdHex((payload as { worker_id?: unknown } | null)?.worker_id);
      if (id === undefined) return;
      // Unknown workers are skipped: when discovery reports them, their dump brings them in.
      for (const pool of poolsOfWorker.get(id) ?? []) pool.subscriber?.onEvent(payload);
    },
    onReplicaEvent(payload) {
      const event = payload as ActiveSequenceEvent | null;
      const id = workerIdHex(event?.worker?.worker_id);
      if (!event || id === undefined) return;
      for (const pool of poolsOfWorker.get(id) ?? []) {
        pool.scheduler.applyRemote(event);
        publishLoads(pool);
      }
    },
    loadOf(model, workerId, dpRank) {
      const pool = pools.get(poolKey(model, 'decode'));
      return pool?.tracker.activeLoad(workerKey(BigInt(`0x${workerId}`), dpRank));
    },
    onKvEventRaw(message) {
      const id = scanWorkerId(message);
      if (id === undefined) return;
      for (const pool of poolsOfWorker.get(id) ?? []) pool.threaded?.sink.submit(message);
    },
    sync() {
      for (const pool of pools.values()) syncPool(pool);
    },
    pending: () =>
      [...pools.values()].reduce(
        (sum, p) => sum + (p.subscriber?.pending() ?? 0) + (p.threaded?.resyncing.size ?? 0),
        0,
      ),
    async close() {
      await Promise.allSettled([...pools.values()].map((p) => p.threaded?.sink.close()));
    },
    indexerOf: (model, kind = 'decode') => pools.get(poolKey(model, kind))?.indexer,
  };
}
