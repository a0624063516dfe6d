/**
 * The simulated engine's scheduler: synchronous and pure (no clock), one `step()` per forward
 * pass. See docs/mocker.md for the model; in short, per step:
 *
 * 1. Admission: pop waiting requests (FIFO) while `max_num_seqs`, the block budget
 *    (`active + Σ ceil((len + 1) / block_size) ≤ (1 − watermark) × capacity`) and the token budget
 *    (`decoding sequences + Σ uncached tokens ≤ max_num_batched_tokens`; the first prefill of a
 *    step is never held back by it) allow, allocating each one's blocks (prefix hits reused).
 * 2. Every running sequence, the newly admitted included, generates one token. A sequence that
 *    needs a block when none is free preempts the newest running sequence (LIFO, as vLLM), which
 *    may be itself: its blocks are released, it keeps its tokens, and it goes back to the front
 *    of the waiting queue to be prefilled again.
 * 3. The step takes `prefill_ms(T) / speedup + decode_ms(p) / (speedup × decode_speedup)`.
 */
import type { BlockHasher, PreparedSeed } from '../../core/router/kv/hash.ts';
import type { BlockKey, FullBlock, KvManager } from './kv-manager.ts';

/** `prefill_ms = 4.209989e-07·T² + 1.518344e-02·T + 16.50142` (newest mocker); 0 when T is 0. */
export function prefillTimeMs(newTokens: number): number {
  if (newTokens <= 0) return 0;
  return 4.209989e-7 * newTokens * newTokens + 1.518344e-2 * newTokens + 16.50142;
}

/** `decode_ms = max(1, −25.74·p² + 54.01·p + 5.74)`, p = active KV tokens / total KV tokens. */
export function decodeTimeMs(activeFraction: number): number {
  const p = activeFraction;
  return Math.max(1, -25.74 * p * p + 54.01 * p + 5.74);
}

export type StopReason = 'length' | 'eos' | 'stop';

export interface SchedulerOptions {
  /** Tokens per KV block. @default 64 */
  blockSize?: number;
  /** Sequences running at once. @default 256 */
  maxNumSeqs?: number;
  /** Tokens in one step: uncached prompt tokens plus 1 per decoding sequence. @default 8192 */
  maxNumBatchedTokens?: number;
  /** Fraction of the blocks admission keeps free. @default 0.01 */
  watermark?: number;
  /** Divides every step's time. @default 1 */
  speedupRatio?: number;
  /** Divides the decode part of a step's time (after `speedupRatio`). @default 1 */
  decodeSpeedupRatio?: number;
  /** Requests the hit rate is averaged over. @default 1000 */
  hitRateWindow?: number;
}

export interface SchedulerPorts {
  kv: KvManager;
  /** Needed when the KV manager caches prefixes. */
  hasher?: BlockHasher;
}

export interface SequenceRequest {
  /** Caller's id, echoed in outputs; unique among live sequences. */
  id: number;
  /** Prompt token ids. */
  tokens: readonly number[];
  /** Tokens to generate at most; at least 1. */
  maxTokens: number;
  /** No stop or EOS token ends the sequence before this many. @default 0 */
  minTokens?: number;
  /** Tokens that end the sequence with `stop`. @default none */
  stopTokenIds?: Iterable<number>;
  /** Tokens that end the sequence with `eos` unless `ignoreEos`. @default none */
  eosTokenIds?: Iterable<number>;
  /** @default false */
  ignoreEos?: boolean;
  /** Draws the next output token. */
  nextToken: () => number;
  /** Hash seed for this request's salt (from `BlockHasher.prepare`). @default unsalted 1337 */
  seed?: PreparedSeed;
  /**
   * The prompt's KV was computed by a prefill worker (disaggregated serving): admission still
   * allocates its blocks, but the step spends no prefill time on it. @default false
   */
  remotePrefill?: boolean;
}

export interface SequenceUsage {
  promptTokens: number;
  completionTokens: number;
  /** Prompt tokens found in the prefix cache at the sequence's first admission. */
  cachedTokens: number;
}

export interface StepOutput {
  id: number;
  token: number;
  finish: StopReason | null;
  /** On the last token only. */
  usage?: SequenceUsage;
}

export interface StepResult {
  /** Simulated time of the step: `prefillMs + decodeMs`, speedups applied. */
  durationMs: number;
  prefillMs: number;
  decodeMs: number;
  /** T: uncached tokens prefilled in this step. */
  prefillTokens: number;
  /** Sequences that generated (or tried to) a token. */
  decodeBatch: number;
  /** Σ context length of the decode batch before this step's tokens. */
  activeKvTokens: number;
  admitted: number[];
  /** Preempted in this step, in order. */
  preempted: number[];
  /** Can never be admitted (need more blocks than the cache has). */
  rejected: { id: number; message: string }[];
  outputs: StepOutput[];
}

export interface SchedulerSnapshot {
  waiting: number;
  running: number;
  /** Admitted (prefilled) in the last step. */
  prefilled: number;
  /** Tokens of the waiting requests, not yet prefilled. */
  waitingTokens: number;
  activeBlocks: number;
  inactiveBlocks: number;
  totalBlocks: number;
  /** Mean of `1 − uncached / prompt` over the last admissions. */
  prefixHitRate: number;
  preemptions: number;
}

export interface Scheduler {
  add(request: SequenceRequest): void;
  /** Drops a request, freeing its blocks now; its usage so far, or null if it is not live. */
  cancel(id: number): SequenceUsage | null;
  step(): StepResult;
  /** No request waiting or running. */
  isIdle(): boolean;
  snapshot(): SchedulerSnapshot;
  /** Where a request is: waiting, running, or absent (finished, cancelled or unknown). */
  status(id: number): 'waiting' | 'running' | undefined;
  /** Blocks a request holds, last block last. */
  blocksOf(id: number): readonly BlockKey[];
}

interface Sequence {
  id: number;
  tokens: number[];
  promptLength: number;
  maxTokens: number;
  minTokens: number;
  stop: ReadonlySet<number>;
  eos: ReadonlySet<number>;
  ignoreEos: boolean;
  nextToken: () => number;
  seed: PreparedSeed | undefined;
  /** Sequence and local hashes of the full blocks (prefix caching only). */
  hashes: bigint[];
  locals: bigint[];
  blocks: BlockKey[];
  state: 'waiting' | 'running' | 'done';
  cachedTokens: number | null;
  remotePrefill: boolean;
}

export function createScheduler(options: SchedulerOptions, ports: SchedulerPorts): Scheduler {
  const blockSize = options.blockSize ?? 64;
  const maxNumSeqs = options.maxNumSeqs ?? 256;
  const maxNumBatchedTokens = options.maxNumBatchedTokens ?? 8192;
  const watermark = options.watermark ?? 0.01;
  const speedup = options.speedupRatio ?? 1;
  const decodeSpeedup = options.decodeSpeedupRatio ?? 1;
  const hitRateWindow = options.hitRateWindow ?? 1000;
  const { kv, hasher } = ports;
  const caching = kv.enablePrefixCaching;
  if (caching && !hasher) throw new Error('A block hasher is needed when prefix caching is on');
  if (!(speedup > 0) || !(decodeSpeedup > 0)) throw new Error('Speedup ratios must be positive');
  if (!(blockSize > 0)) throw new Error(`Block size "${blockSize}" must be positive`);

  const sequences = new Map<number, Sequence>();
  const waiting: Sequence[] = [];
  const running: Sequence[] = [];
  const hitRates: number[] = [];
  let hitRateSum = 0;
  let lastPrefilled = 0;
  let preemptions = 0;

  const recordHitRate = (rate: number) => {
    hitRates.push(rate);
    hitRateSum += rate;
    if (hitRates.length > hitRateWindow) hitRateSum -= hitRates.shift()!;
  };

  const remove = (list: Sequence[], seq: Sequence) => {
    const at = list.indexOf(seq);
    if (at >= 0) list.splice(at, 1);
  };

  const release = (seq: Sequence) => {
    kv.release(seq.blocks);
    seq.blocks = [];
  };

  const preempt = (seq: Sequence) => {
    release(seq);
    remove(running, seq);
    seq.state = 'waiting';
    waiting.unshift(seq);
    preemptions++;
  };

  const retire = (seq: Sequence) => {
    if (seq.state === 'running') release(seq);
    if (seq.state === 'waiting') remove(waiting, seq);
    else remove(running, seq);
    seq.state = 'done';
    sequences.delete(seq.id);
  };

  /** Hashes the block that just filled, and makes it a full block. */
  const promoteLast = (seq: Sequence) => {
    const index = seq.tokens.length / blockSize - 1;
    const [local] = hasher!.localHashes(seq.tokens, {
      blockSize,
      seed: seq.seed,
      start: index,
      end: index + 1,
    });
    const parent = index > 0 ? seq.hashes[index - 1]! : null;
    const hash = hasher!.sequenceHash(parent, local!);
    seq.hashes.push(hash);
    seq.locals.push(local!);
    const last = seq.blocks.length - 1;
    seq.blocks[last] = kv.promote(seq.blocks[last] as number, { hash, tokensHash: local! }, parent);
  };

  const usageOf = (seq: Sequence): SequenceUsage => ({
    promptTokens: seq.promptLength,
    completionTokens: seq.tokens.length - seq.promptLength,
    cachedTokens: seq.cachedTokens ?? 0,
  });

  const finishReason = (seq: Sequence, token: number): StopReason | null => {
    const generated = seq.tokens.length - seq.promptLength;
    if (generated >= seq.minTokens) {
      if (!seq.ignoreEos && seq.eos.has(token)) return 'eos';
      if (seq.stop.has(token)) return 'stop';
    }
    return generated >= seq.maxTokens ? 'length' : null;
  };

  const step = (): StepResult => {
    const admitted: Sequence[] = [];
    const rejected: StepResult['rejected'] = [];
    const preempted: number[] = [];
    const outputs: StepOutput[] = [];
    let prefillTokens = 0;

    // 1. Admission (and allocation: this is the step's prefill batch).
    const blockLimit = (1 - watermark) * kv.capacity;
    let plannedBlocks = kv.activeBlocks();
    let batchedTokens = running.length;
    while (waiting.length > 0 && running.length + admitted.length < maxNumSeqs) {
      const seq = waiting[0]!;
      const length = seq.tokens.length;
      const overlap = caching ? kv.overlap(seq.hashes) : 0;
      const newTokens = length - overlap * blockSize;
      const newBlocks = Math.ceil((length + 1) / blockSize);
      const alone = running.length === 0 && admitted.length === 0;
      if (plannedBlocks + newBlocks > blockLimit) {
        if (!alone) break;
        rejected.push({
          id: seq.id,
          message: `Prompt of ${length} tokens needs ${newBlocks} KV blocks; the cache admits ${
            Math.floor(blockLimit)
          } of ${kv.capacity}`,
        });
        retire(seq);
        continue;
      }
      if (admitted.length > 0 && batchedTokens + newTokens > maxNumBatchedTokens) break;
      const tail = length % blockSize === 0 ? 0 : 1;
      const fullBlocks: FullBlock[] = seq.hashes.map((hash, i) => ({
        hash,
        tokensHash: seq.locals[i]!,
      }));
      const ids = caching
        ? kv.use(fullBlocks, { anonymous: tail })
        : kv.use([], { anonymous: Math.floor(length / blockSize) + tail });
      if (ids === null) break; // Cannot happen while alone: the block budget fits in capacity.
      waiting.shift();
      seq.blocks = caching ? [...seq.hashes, ...ids] : ids;
      seq.state = 'running';
      seq.cachedTokens ??= overlap * blockSize;
      recordHitRate(length > 0 ? 1 - newTokens / length : 0);
      const computed = seq.remotePrefill ? 0 : newTokens;
      prefillTokens += computed;
      batchedTokens += computed;
      plannedBlocks += newBlocks;
      admitted.push(seq);
    }
    running.push(...admitted);
    lastPrefilled = admitted.length;

    // 2. One token for every running sequence, oldest first.
    const batch = running.slice();
    let activeKvTokens = 0;
    for (const seq of batch) activeKvTokens += seq.tokens.length;
    for (const seq of batch) {
      if (seq.state !== 'running') continue; // preempted by an older sequence in this step
      const position = seq.tokens.length;
      if (position % blockSize === 0) {
        let id = kv.allocate();
        while (id === null) {
          const victim = running[running.length - 1]!;
          preempt(victim);
          preempted.push(victim.id);
          if (victim === seq) break;
          id = kv.allocate();
        }
        if (id === null) continue;
        seq.blocks.push(id);
      }
      const token = seq.nextToken();
      seq.tokens.push(token);
      if (caching && seq.tokens.length % blockSize === 0) promoteLast(seq);
      const finish = finishReason(seq, token);
      if (finish === null) {
        outputs.push({ id: seq.id, token, finish });
        continue;
      }
      outputs.push({ id: seq.id, token, finish, usage: usageOf(seq) });
      retire(seq);
    }

    // 3. Simulated time.
    const prefillMs = prefillTimeMs(prefillTokens) / speedup;
    const totalKvTokens = kv.capacity * blockSize;
    const decodeMs = batch.length > 0
      ? decodeTimeMs(activeKvTokens / totalKvTokens) / (speedup * decodeSpeedup)
      : 0;
    return {
      durationMs: prefillMs + decodeMs,
      prefillMs,
      decodeMs,
      prefillTokens,
      decodeBatch: batch.length,
      activeKvTokens,
      admitted: admitted.map((s) => s.id),
      preempted,
      rejected,
      outputs,
    };
  };

  return {
    add: (request) => {
      if (sequences.has(request.id)) throw new Error(`Request ${request.id} is already queued`);
      const tokens = [...request.tokens];
      const hashes = caching
        ? hasher!.blockHashes(tokens, { blockSize, seed: request.seed })
        : { local: [], sequence: [] };
      const seq: Sequence = {
        id: request.id,
        tokens,
        promptLength: tokens.length,
        maxTokens: Math.max(1, request.maxTokens),
        minTokens: request.minTokens ?? 0,
        stop: new Set(request.stopTokenIds ?? []),
        eos: new Set(request.eosTokenIds ?? []),
        ignoreEos: request.ignoreEos ?? false,
        nextToken: request.nextToken,
        seed: request.seed,
        hashes: hashes.sequence,
        locals: hashes.local,
        blocks: [],
        state: 'waiting',
        cachedTokens: null,
        remotePrefill: request.remotePrefill ?? false,
      };
      sequences.set(seq.id, seq);
      waiting.push(seq);
    },
    cancel: (id) => {
      const seq = sequences.get(id);
      if (!seq) return null;
      retire(seq);
      return usageOf(seq);
    },
    step,
    isIdle: () => waiting.length === 0 && running.length === 0,
    snapshot: () => {
      let waitingTokens = 0;
      for (const seq of waiting) waitingTokens += seq.tokens.length;
      return {
        waiting: waiting.length,
        running: running.length,
        prefilled: lastPrefilled,
        waitingTokens,
        activeBlocks: kv.activeBlocks(),
        inactiveBlocks: kv.inactiveBlocks(),
        totalBlocks: kv.capacity,
        prefixHitRate: hitRates.length > 0 ? hitRateSum / hitRates.length : 0,
        preemptions,
      };
    },
    status: (id) => {
      const state = sequences.get(id)?.state;
      return state === 'done' ? undefined : state;
    },
    blocksOf: (id) => sequences.get(id)?.blocks ?? [],
  };
}
