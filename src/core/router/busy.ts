/**
 * Load shedding (router reference §4.7): a worker is busy when any threshold in force for its
 * model is exceeded (OR):
 * - `active_decode_blocks_threshold` f: KV blocks in use / `total_kv_blocks` > f;
 * - `active_prefill_tokens_threshold` n: prompt tokens waiting for prefill > n;
 * - `active_prefill_tokens_threshold_frac` f: the same > f × `max_num_batched_tokens`.
 * Load comes from the workers' published `ActiveLoad` (`kv_metrics`) and, in KV mode, the
 * router's own accounting of the requests it placed (the larger of the two counts). A worker
 * with several dp ranks is busy when all its ranks are. A worker that answers "overloaded" is
 * busy until its next load report. When every worker of a model is busy the request is refused
 * (`DYN_HTTP_OVERLOAD_STATUS_CODE`, `Retry-After`). Thresholds change at run time through
 * `POST /busy_threshold`.
 */
import type { BusyThresholdStore } from '../busy-thresholds.ts';
import type { ServedModel, WorkerInstance } from '../discovery/models.ts';

/** Load samples older than this are ignored (workers report at least every second). */
const STALE_MS = 30_000;

interface Sample {
  decodeBlocks?: number;
  prefillTokens?: number;
  at: number;
}

export interface RouterLoad {
  activeDecodeBlocks: number;
  activePrefillTokens: number;
}

export interface BusyDetectorOptions {
  thresholds: BusyThresholdStore;
  /** Monotonic milliseconds. */
  now: () => number;
  /** The KV router's own load for a (worker, dp rank) of a model, when it tracks one. */
  routerLoad?: (model: string, workerId: string, dpRank: number) => RouterLoad | undefined;
  /** Hears each worker load report (hex worker id), e.g. for the per-worker gauges. @default none */
  onReport?: (report: { workerId: string; dpRank: number; waitingRequests?: number }) => void;
}

export interface BusyDetector {
  /** An `ActiveLoad` payload from `kv_metrics`. */
  onLoad(payload: unknown): void;
  /**
   * A prompt of `tokens` went to a worker: counted as its prefill load until the worker's next
   * report (which includes it), so bursts between reports do not overshoot the threshold.
   * Only without router accounting (the KV router counts its own placements).
   */
  recordSent(instanceId: string, tokens: number): void;
  /** The worker refused a request as overloaded: busy until its next load report. */
  markOverloaded(instanceId: string): void;
  isBusy(model: ServedModel, instance: WorkerInstance): boolean;
  /** Whether any threshold is set for the model (if not, nothing is ever busy). */
  active(model: string): boolean;
}

const hexOf = (v: unknown): string | undefined => {
  if (typeof v === 'bigint') return v.toString(16);
  if (typeof v === 'number' && Number.isSafeInteger(v) && v >= 0) return v.toString(16);
  if (typeof v === 'string' && /^\d+$/.test(v)) return BigInt(v).toString(16);
  return undefined;
};
const num = (v: unknown): number | undefined =>
  typeof v === 'number' && Number.isFinite(v) ? v : undefined;

export function createBusyDetector(options: BusyDetectorOptions): BusyDetector {
  const { thresholds, now } = options;
  const samples = new Map<string, Sample>();
  const overloaded = new Set<string>();
  /** Prompt tokens sent to each worker since its last report. */
  const sent = new Map<string, number>();

  const rankBusy = (model: ServedModel, instanceId: string, rank: number): boolean => {
    const t = thresholds.get(model.name);
    const runtime = (model.card.runtime_config ?? {}) as Record<string, unknown>;
    const total = num(runtime.total_kv_blocks);
    const batched = num(runtime.max_num_batched_tokens);
    const sample = samples.get(`${instanceId}:${rank}`);
    const fresh = sample && now() - sample.at <= STALE_MS ? sample : undefined;
    const router = options.routerLoad?.(model.name, instanceId, rank);
    const decode = Math.max(fresh?.decodeBlocks ?? 0, router?.activeDecodeBlocks ?? 0);
    const prefill = Math.max(fresh?.prefillTokens ?? 0, router?.activePrefillTokens ?? 0) +
      (sent.get(instanceId) ?? 0);
    const decodeLimit = t.active_decode_blocks_threshold;
    const prefillLimit = t.active_prefill_tokens_threshold;
    const fracLimit = t.active_prefill_tokens_threshold_frac;
    return (decodeLimit !== null && total !== undefined && total > 0 &&
      decode / total > decodeLimit) ||
      (prefillLimit !== null && prefill > prefillLimit) ||
      (fracLimit !== null && batched !== undefined && prefill > fracLimit * batched);
  };

  return {
    onLoad(payload) {
      const load = payload as Record<string, unknown> | null;
      const id = hexOf(load?.worker_id);
      if (!load || id === undefined) return;
      const rank = num(load.dp_rank) ?? 0;
      samples.set(`${id}:${rank}`, {
        decodeBlocks: num(load.kv_used_blocks) ?? num(load.active_decode_blocks),
        prefillTokens: num(load.active_prefill_tokens),
        at: now(),
      });
      overloaded.delete(id);
      sent.delete(id);
      const waiting = num(load.waiting_requests);
      options.onReport?.({
        workerId: id,
        dpRank: rank,
        ...(waiting !== undefined ? { waitingRequests: waiting } : {}),
      });
    },
    recordSent(instanceId, tokens) {
      if (options.routerLoad) return;
      sent.set(instanceId, (sent.get(instanceId) ?? 0) + tokens);
    },
    markOverloaded(instanceId) {
      overloaded.add(instanceId);
    },
    active(model) {
      const t = thresholds.get(model);
      return t.active_decode_blocks_threshold !== null ||
        t.active_prefill_tokens_threshold !== null ||
        t.active_prefill_tokens_threshold_frac !== null;
    },
    isBusy(model, instance) {
      if (overloaded.has(instance.instanceId)) return true;
      if (!this.active(model.name)) return false;
      const runtime = (model.card.runtime_config ?? {}) as Record<string, unknown>;
      const ranks = Math.max(1, num(runtime.data_parallel_size) ?? 1);
      for (let rank = 0; rank < ranks; rank++) {
        if (!rankBusy(model, instance.instanceId, rank)) return false;
      }
      return true;
    },
  };
}
