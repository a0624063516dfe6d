/**
 * KV worker selection (router reference §4.2, §4.3): a cost per eligible (worker, dp_rank), then
 * the minimum (temperature 0) or a softmax draw over the min-max-normalised costs.
 *
 * The cost is Dynamo's current formula, which equals the classic one
 * (`overlap_score_weight * prefill_blocks + decode_blocks`) at the defaults:
 *
 *   raw_prefill_tokens = active_prefill_tokens + max(isl, cached_tokens)   (0 without prefill tracking)
 *   credit_blocks      = overlap_score_credit * decay * overlap_blocks
 *   cost               = prefill_load_scale * max(raw_prefill_tokens / bs - credit_blocks, 0)
 *                        + decode_blocks
 *
 * A classic weight W maps to `prefill_load_scale = W` and `overlap_score_credit = W == 0 ? 0 : 1`.
 * `decay` is 1 unless `overlapScoreCreditDecay > 0`. Ties at temperature 0 go to the smallest
 * indexed tree, then to a uniform random pick.
 */
import { ServiceUnavailableError } from '../../errors.ts';
import type { ApiErrorOptions } from '../../errors.ts';
import type { Logger } from '../../logger.ts';

/** No eligible worker for the request (Dynamo `NoEndpoints`). */
export class NoEndpointsError extends ServiceUnavailableError {
  override readonly code = 'no_endpoints';
  constructor(message = 'No worker is available to serve the request', options?: ApiErrorOptions) {
    super(message, options);
  }
}

/** Per-request `router_config_override`. */
export interface RouterConfigOverride {
  /** Classic weight; ignored when `overlapScoreCredit` or `prefillLoadScale` is also given. */
  overlapScoreWeight?: number;
  overlapScoreCredit?: number;
  prefillLoadScale?: number;
  routerTemperature?: number;
}

export interface WorkerSelectorOptions {
  /** KV block size in tokens. */
  blockSize: number;
  /** `--router-kv-overlap-score-weight`. @default 1 */
  overlapScoreWeight?: number;
  /** `--router-temperature`; 0 picks the minimum cost. @default 0 */
  temperature?: number;
  /** Overrides the credit derived from the weight. */
  overlapScoreCredit?: number;
  /** Overrides the scale derived from the weight. */
  prefillLoadScale?: number;
  /** Shrinks the cache credit of workers with more queued prefill than the least loaded. @default 0 */
  overlapScoreCreditDecay?: number;
  /** Uniform in [0, 1). @default Math.random */
  random?: () => number;
  /** Gets one debug line per decision, with every candidate's cost. */
  logger?: Logger;
}

/** One eligible (worker, dp_rank) and its load, from the indexer and the sequence tracker. */
export interface SelectionCandidate {
  worker: string;
  /** Prompt blocks cached on the worker (`OverlapScores.scores`). @default 0 */
  overlapBlocks?: number;
  /** Blocks in the worker's indexed tree (`OverlapScores.treeSizes`). @default 0 */
  treeSize?: number;
  /** Active blocks plus the request's new ones; if absent, the request's uncached blocks. */
  decodeBlocks?: number;
  /** Prefill tokens already queued on the worker. @default 0 */
  activePrefillTokens?: number;
}

export interface SelectionRequest {
  /** Prompt length in tokens. */
  isl: number;
  candidates: readonly SelectionCandidate[];
  /** @default true */
  trackPrefillTokens?: boolean;
  overrides?: RouterConfigOverride;
  /** Only for the decision log line. */
  requestId?: string;
}

export interface SelectionResult {
  worker: string;
  /** Cached prompt blocks on the chosen worker. */
  overlapBlocks: number;
  /** `ceil(isl / blockSize)`. */
  requiredBlocks: number;
  cost: number;
}

export interface WorkerSelector {
  readonly blockSize: number;
  /** Throws `NoEndpointsError` when `candidates` is empty. */
  select(request: SelectionRequest): SelectionResult;
}

/** Effective weights after overrides. */
export interface CostWeights {
  overlapScoreCredit: number;
  prefillLoadScale: number;
  overlapScoreCreditDecay: number;
}

/**
 * The smallest `activePrefillTokens` among the candidates, needed only by the credit decay: 0
 * (and no pass over the candidates) unless decay is on and prefill is tracked.
 */
export function minActivePrefillTokens(
  candidates: readonly SelectionCandidate[],
  weights: CostWeights,
  trackPrefillTokens = true,
): number {
  if (!(weights.overlapScoreCreditDecay > 0) || !trackPrefillTokens) return 0;
  let min = Infinity;
  for (const c of candidates) min = Math.min(min, c.activePrefillTokens ?? 0);
  return Number.isFinite(min) ? min : 0;
}

/** The cost of one candidate; lower is better. */
export function workerCost(
  candidate: SelectionCandidate,
  context: {
    isl: number;
    blockSize: number;
    weights: CostWeights;
    trackPrefillTokens?: boolean;
    /** From `minActivePrefillTokens`. @default 0 */
    minActivePrefillTokens?: number;
  },
): number {
  const { isl, blockSize: bs, weights } = context;
  const track = context.trackPrefillTokens ?? true;
  const overlap = candidate.overlapBlocks ?? 0;
  const cached = overlap * bs;
  const active = candidate.activePrefillTokens ?? 0;
  const rawTokens = track ? active + Math.max(isl, cached) : 0;
  let decay = 1;
  if (track && weights.overlapScoreCreditDecay > 0) {
    const requestBlocks = Math.max(1, Math.ceil(isl / bs));
    const excess = (active - (context.minActivePrefillTokens ?? 0)) / bs;
    decay = 1 / (1 + weights.overlapScoreCreditDecay * excess / requestBlocks);
  }
  const credit = weights.overlapScoreCredit * decay * overlap;
  // One division keeps integer inputs exact, so equal loads give bit-equal costs (ties matter).
  const prefillBlocks = Math.max(rawTokens - credit * bs, 0) / bs;
  const decode = candidate.decodeBlocks ?? Math.floor(Math.max(isl - cached, 0) / bs);
  return weights.prefillLoadScale * prefillBlocks + decode;
}

/** Indices of every cost equal to the minimum. */
export function tiedMinima(costs: readonly number[]): number[] {
  let min = Infinity;
  for (const c of costs) if (c < min) min = c;
  const out: number[] = [];
  costs.forEach((c, i) => {
    if (c === min) out.push(i);
  });
  return out;
}

/**
 * Index drawn from `p_i ∝ exp(-(c_i - min) / ((max - min) * temperature))` with `sample` in
 * [0, 1): the first index whose cumulative probability reaches `sample`, else the last.
 * Equal costs give a uniform draw; temperature 0 gives the first minimum. Costs are divided by
 * their magnitude first, so a range wider than the largest double still orders correctly.
 */
export function softmaxSample(costs: readonly number[], temperature: number, sample: number) {
  const n = costs.length;
  if (n === 0) throw new RangeError('softmaxSample needs at least one cost');
  if (n === 1) return 0;
  if (temperature === 0) return tiedMinima(costs)[0] as number;
  let min = Infinity;
  let max = -Infinity;
  for (const c of costs) {
    if (c < min) min = c;
    if (c > max) max = c;
  }
  const weights = new Array<number>(n);
  let sum = 0;
  if (min === max || !Number.isFinite(min) || !Number.isFinite(max)) {
    weights.fill(1);
    sum = n;
  } else {
    const magnitude = Math.max(Math.abs(min), Math.abs(max));
    const lo = min / magnitude;
    const range = max / magnitude - lo;
    for (let i = 0; i < n; i++) {
      const w = Math.exp(-((costs[i] as number) / magnitude - lo) / range / temperature);
      weights[i] = w;
      sum += w;
    }
  }
  let cumulative = 0;
  for (let i = 0; i < n; i++) {
    cumulative += (weights[i] as number) / sum;
    if (sample <= cumulative) return i;
  }
  return n - 1;
}

export function createWorkerSelector(options: WorkerSelectorOptions): WorkerSelector {
  const blockSize = options.blockSize;
  if (!(blockSize > 0)) throw new RangeError(`Block size must be positive (got ${blockSize})`);
  const random = options.random ?? Math.random;
  const log = options.logger;

  const weightsFor = (override: RouterConfigOverride | undefined): CostWeights => {
    const weight = override?.overlapScoreWeight ?? options.overlapScoreWeight ?? 1;
    const fromWeight = override?.overlapScoreWeight !== undefined;
    const credit = override?.overlapScoreCredit ??
      (fromWeight ? undefined : options.overlapScoreCredit) ?? (weight === 0 ? 0 : 1);
    const scale = override?.prefillLoadScale ??
      (fromWeight ? undefined : options.prefillLoadScale) ?? weight;
    return {
      overlapScoreCredit: credit,
      prefillLoadScale: scale,
      overlapScoreCreditDecay: options.overlapScoreCreditDecay ?? 0,
    };
  };

  return {
    blockSize,
    select(request) {
      const { candidates, isl } = request;
      if (candidates.length === 0) throw new NoEndpointsError();
      const track = request.trackPrefillTokens ?? true;
      const weights = weightsFor(request.overrides);
      const temperature = request.overrides?.routerTemperature ?? options.temperature ?? 0;
      const context = {
        isl,
        blockSize,
        weights,
        trackPrefillTokens: track,
        minActivePrefillTokens: minActivePrefillTokens(candidates, weights, track),
      };
      const costs = candidates.map((c) => workerCost(c, context));

      let index: number;
      if (temperature === 0) {
        let tied = tiedMinima(costs);
        if (tied.length > 1) {
          let smallest = Infinity;
          for (const i of tied) smallest = Math.min(smallest, candidates[i]?.treeSize ?? 0);
          tied = tied.filter((i) => (candidates[i]?.treeSize ?? 0) === smallest);
        }
        index = tied.length === 1
          ? tied[0] as number
          : tied[Math.min(tied.length - 1, Math.floor(random() * tied.length))] as number;
      } else {
        index = softmaxSample(costs, temperature, random());
      }

      const chosen = candidates[index] as SelectionCandidate;
      const result: SelectionResult = {
        worker: chosen.worker,
        overlapBlocks: chosen.overlapBlocks ?? 0,
        requiredBlocks: Math.ceil(isl / blockSize),
        cost: costs[index] as number,
      };
      log?.debug('KV routing decision', {
        requestId: request.requestId,
        worker: result.worker,
        cost: result.cost,
        overlapBlocks: result.overlapBlocks,
        requiredBlocks: result.requiredBlocks,
        temperature,
        costs: Object.fromEntries(candidates.map((c, i) => [c.worker, costs[i]])),
      });
      return result;
    },
  };
}
