/**
 * Load shedding (router reference §4.7): a worker is busy when any threshold in force for its
 * model is exceeded (OR):
 * - `active_decode_blocks_threshold` f: KV blocks in use / `total_kv_blocks` > f;
 * - `active_prefill_tokens_threshold` n: prompt tokens waiting for prefill > n;
 * - `active_prefill_tokens_threshold_frac` f: the same > f × `max_num_batched_tokens`.
 * Load is the larger of three counts, per (worker, dp rank):
 * - the worker's last published `ActiveLoad` (`kv_metrics`). It stands until the worker publishes
 *   another: a busy worker stays busy until it reports otherwise, however long that takes (a
 *   worker that goes away leaves discovery, and with it the candidates);
 * - in KV mode, the router's own accounting of the requests it placed;
 * - otherwise, this frontend's own requests in flight on the worker: each one's prompt counts as
 *   prefill tokens until its first token, and its prompt blocks as decode blocks until it ends.
 *   Reports lag (they are published, carried and applied after the request was sent), so this is
 *   what keeps a burst between two reports from overshooting the threshold, and what a report
 *   that predates a request cannot erase.
 * A worker with several dp ranks is busy when all its ranks are (this frontend's own count, not
 * knowing the rank, is spread over them). A worker that answers "overloaded" is busy until its
 * next load report. When every worker of a model is busy the request is refused
 * (`DYN_HTTP_OVERLOAD_STATUS_CODE`, `Retry-After`). Thresholds change at run time through
 * `POST /busy_threshold`. docs/fault-tolerance.md says how fresh this view is.
 */
import type { BusyThresholdStore } from './busy-thresholds.ts';
import type { ServedModel, WorkerInstance } from '../discovery/models.ts';

interface Sample {
  decodeBlocks?: number;
  prefillTokens?: number;
}

/** This frontend's requests in flight on one worker (all ranks). */
interface Own {
  prefillTokens: number;
  decodeBlocks: number;
}

export interface RouterLoad {
  activeDecodeBlocks: number;
  activePrefillTokens: number;
}

export interface BusyDetectorOptions {
  thresholds: BusyThresholdStore;
  /** The KV router's own load for a (worker, dp rank) of a model, when it tracks one. */
  routerLoad?: (model: string, workerId: string, dpRank: number) => RouterLoad | undefined;
  /** Hears each worker load report (hex worker id), e.g. for the per-worker gauges. @default none */
  onReport?: (report: { workerId: string; dpRank: number; waitingRequests?: number }) => void;
}

export interface BusyDetector {
  /** An `ActiveLoad` payload from `kv_metrics`. */
  onLoad(payload: unknown): void;
  /**
   * A request with a prompt of `tokens` went to a worker: its prompt counts as the worker's
   * prefill load until `firstToken()`, and its `blocks` as decode load until `done()`. Without
   * router accounting only (the KV router counts its own placements: then both are no-ops).
   */
  recordSent(instanceId: string, tokens: number, blocks: number): SentRequest;
  /** The worker refused a request as overloaded: busy until its next load report. */
  markOverloaded(instanceId: string): void;
  isBusy(model: ServedModel, instance: WorkerInstance): boolean;
  /** Whether any threshold is set for the model (if not, nothing is ever busy). */
  active(model: string): boolean;
}

/** One request in this frontend's own count; each method acts once. */
export interface SentRequest {
  firstToken(): void;
  done(): void;
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
  const { thresholds } = options;
  const samples = new Map<string, Sample>();
  const overloaded = new Set<string>();
  const own = new Map<string, Own>();

  const rankBusy = (
    model: ServedModel,
    instanceId: string,
    rank: number,
    ranks: number,
  ): boolean => {
    const t = thresholds.get(model.name);
    const runtime = (model.card.runtime_config ?? {}) as Record<string, unknown>;
    const total = num(runtime.total_kv_blocks);
    const batched = num(runtime.max_num_batched_tokens);
    const sample = samples.get(`${instanceId}:${rank}`);
    const router = options.routerLoad?.(model.name, instanceId, rank);
    const mine = own.get(instanceId);
    const decode = Math.max(
      sample?.decodeBlocks ?? 0,
      router?.activeDecodeBlocks ?? 0,
      (mine?.decodeBlocks ?? 0) / ranks,
    );
    const prefill = Math.max(
      sample?.prefillTokens ?? 0,
      router?.activePrefillTokens ?? 0,
      (mine?.prefillTokens ?? 0) / ranks,
    );
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
      });
      overloaded.delete(id);
      const waiting = num(load.waiting_requests);
      options.onReport?.({
        workerId: id,
        dpRank: rank,
        ...(waiting !== undefined ? { waitingRequests: waiting } : {}),
      });
    },
    recordSent(instanceId, tokens, blocks) {
      if (options.routerLoad) return { firstToken() {}, done() {} };
      let load = own.get(instanceId);
      if (!load) own.set(instanceId, load = { prefillTokens: 0, decodeBlocks: 0 });
      const counted = load;
      counted.prefillTokens += tokens;
      counted.decodeBlocks += blocks;
      let prefilling = true;
      let running = true;
      const firstToken = () => {
        if (!prefilling) return;
        prefilling = false;
        counted.prefillTokens -= tokens;
      };
      return {
        firstToken,
        done() {
          if (!running) return;
          running = false;
          firstToken();
          counted.decodeBlocks -= blocks;
          if (counted.prefillTokens <= 0 && counted.decodeBlocks <= 0) own.delete(instanceId);
        },
      };
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
        if (!rankBusy(model, instance.instanceId, rank, ranks)) return false;
      }
      return true;
    },
  };
}
