/**
 * `createMockEngine(options, ports)`: the simulated vLLM-like engine behind the mocker worker.
 * Pure core code: time comes from the `Clock` port, randomness from seeded PRNGs, and everything
 * it publishes goes out through `onKvEvent` / `onLoad`. One engine is one data-parallel rank.
 *
 * A loop runs scheduler steps back to back while there is work, sleeping each step's simulated
 * time (keeping to a deadline, so timer overshoot does not accumulate), then hands the step's
 * tokens to the request streams and publishes load. Idle, it publishes load every `heartbeatMs`.
 */
import type { KvCacheEvent, KvCacheEventData } from '../../core/router/kv/events.ts';
import {
  type BlockHasher,
  createBlockHasher,
  type PreparedSeed,
} from '../../core/router/kv/hash.ts';
import type { ActiveLoad, ForwardPassMetrics } from '../../core/router/kv/load.ts';
import type { LLMEngineOutput, PreprocessedRequest } from '../../core/plane/worker.ts';
import { createKvManager } from './kv-manager.ts';
import { createRandom, mixSeeds } from './random.ts';
import {
  createScheduler,
  type SchedulerSnapshot,
  type SequenceUsage,
  type StepResult,
} from './scheduler.ts';

/** Time, in milliseconds. */
export interface Clock {
  now(): number;
  /** Resolves after `ms` (or early, without throwing or not, when `signal` aborts). */
  sleep(ms: number, signal?: AbortSignal): Promise<void>;
}

export interface MockEngineOptions {
  /** KV cache capacity in blocks (`--num-gpu-blocks-override`). @default 16384 */
  numGpuBlocks?: number;
  /** Tokens per KV block (`--block-size`). @default 64 */
  blockSize?: number;
  /** `--max-num-seqs`. @default 256 */
  maxNumSeqs?: number;
  /** `--max-num-batched-tokens`. @default 8192 */
  maxNumBatchedTokens?: number;
  /** `--watermark`: fraction of blocks admission keeps free. @default 0.01 */
  watermark?: number;
  /** `--speedup-ratio`. @default 1 */
  speedupRatio?: number;
  /** `--decode-speedup-ratio`. @default 1 */
  decodeSpeedupRatio?: number;
  /** `--enable-prefix-caching`: reuse blocks and publish KV events. @default true */
  enablePrefixCaching?: boolean;
  /** Data-parallel rank, on events and metrics. @default 0 */
  dpRank?: number;
  /** Engine seed for output tokens. @default 0 */
  seed?: number;
  /** Token ids output tokens are drawn from (uniformly). @default ids 0 to 31999 */
  vocabulary?: readonly number[];
  /** `worker_id` on `ActiveLoad`. @default 0n */
  workerId?: bigint;
  /** Load is published at least this often when idle. @default 1000 */
  heartbeatMs?: number;
  /** Tokens to generate when a request has no `max_tokens`. @default 128 */
  defaultMaxTokens?: number;
}

export interface GenerateOptions {
  /**
   * The output to generate (a scripted answer): these ids in order, then the first EOS id
   * (unless `ignore_eos`), instead of ids drawn from the vocabulary. `max_tokens` still cuts it.
   */
  script?: readonly number[];
}

/** Both load payloads, from one snapshot. */
export interface LoadMetrics {
  forwardPass: ForwardPassMetrics;
  activeLoad: ActiveLoad;
}

export interface MockEnginePorts {
  clock: Clock;
  /** Each KV event, as it happens (never with prefix caching off). @default no-op */
  onKvEvent?: (event: KvCacheEvent) => void;
  /** Load after each step, and every `heartbeatMs` when idle. @default no-op */
  onLoad?: (metrics: LoadMetrics) => void;
  /** A loaded hasher to share. @default a new one */
  hasher?: BlockHasher;
}

export interface MockEngine {
  /**
   * Streams one chunk per generated token; the last carries `finish_reason` and
   * `completion_usage`. Aborting `signal`, or leaving the loop early, frees the request's blocks
   * at once; an abort ends the stream with a `cancelled` chunk.
   */
  generate(
    request: PreprocessedRequest,
    signal?: AbortSignal,
    options?: GenerateOptions,
  ): AsyncIterable<LLMEngineOutput>;
  /** Load as published now. */
  load(): LoadMetrics;
  /** Drops every cached block (publishing `cleared`); refused (false) while requests run. */
  resetPrefixCache(): boolean;
  /**
   * `--enable-cache-control` pinning: holds the cached full blocks of `tokenIds`' prefix for
   * `ttlMs` so eviction skips them. Returns the number of blocks pinned.
   */
  pinPrefix(tokenIds: readonly number[], ttlMs: number): number;
  /** Ends every request with `cancelled` and stops the loop. */
  close(): Promise<void>;
}

/** The classic and newest load payloads from one scheduler snapshot. */
export function toLoadMetrics(
  snapshot: SchedulerSnapshot,
  options: { workerId: bigint; dpRank: number; maxNumSeqs: number },
): LoadMetrics {
  const { workerId, dpRank, maxNumSeqs } = options;
  return {
    forwardPass: {
      worker_stats: {
        data_parallel_rank: dpRank,
        request_active_slots: snapshot.running,
        request_total_slots: maxNumSeqs,
        num_requests_waiting: snapshot.waiting,
      },
      kv_stats: {
        kv_active_blocks: snapshot.activeBlocks,
        kv_total_blocks: snapshot.totalBlocks,
        gpu_cache_usage_perc: snapshot.totalBlocks > 0
          ? snapshot.activeBlocks / snapshot.totalBlocks
          : 0,
        gpu_prefix_cache_hit_rate: snapshot.prefixHitRate,
      },
    },
    activeLoad: {
      worker_id: workerId,
      dp_rank: dpRank,
      active_decode_blocks: snapshot.activeBlocks,
      active_prefill_tokens: snapshot.waitingTokens,
      kv_used_blocks: snapshot.activeBlocks,
      waiting_requests: snapshot.waiting,
    },
  };
}

/** How far behind its deadline the loop may fall and still catch up by skipping sleeps. */
const MAX_LAG_MS = 50;

interface Channel {
  queue: LLMEngineOutput[];
  wake: (() => void) | null;
  /** Tokens handed to the stream so far (a step may have generated one more, not yet due). */
  delivered: number;
  /** Set when the request asked for logprobs: how many alternatives, and their randomness. */
  logprobs?: { top: number; random: () => number };
}

/**
 * Simulated log-probabilities for a sampled token: its own (between -2.05 and -0.05) and `top`
 * alternatives drawn from the vocabulary, each less likely than the one before.
 */
function simulatedLogprobs(
  token: number,
  options: { top: number; random: () => number; vocabulary: readonly number[] },
) {
  const logprob = -(0.05 + 2 * options.random());
  const alternatives = [{ rank: 1, token_id: token, logprob }];
  let next = logprob;
  for (let rank = 2; rank <= options.top; rank++) {
    next -= 0.1 + options.random();
    const id = options.vocabulary[Math.floor(options.random() * options.vocabulary.length)] ?? 0;
    alternatives.push({ rank, token_id: id, logprob: next });
  }
  return { log_probs: [logprob], top_logprobs: [alternatives.slice(0, Math.max(1, options.top))] };
}

const usageChunk = (usage: SequenceUsage): LLMEngineOutput['completion_usage'] => ({
  prompt_tokens: usage.promptTokens,
  completion_tokens: usage.completionTokens,
  total_tokens: usage.promptTokens + usage.completionTokens,
  prompt_tokens_details: { cached_tokens: usage.cachedTokens },
});

export async function createMockEngine(
  options: MockEngineOptions,
  ports: MockEnginePorts,
): Promise<MockEngine> {
  const dpRank = options.dpRank ?? 0;
  const maxNumSeqs = options.maxNumSeqs ?? 256;
  const engineSeed = options.seed ?? 0;
  const workerId = options.workerId ?? 0n;
  const heartbeatMs = options.heartbeatMs ?? 1000;
  const defaultMaxTokens = options.defaultMaxTokens ?? 128;
  const vocabulary = options.vocabulary ?? Array.from({ length: 32000 }, (_, i) => i);
  if (vocabulary.length === 0) throw new Error('The vocabulary must not be empty');
  const { clock } = ports;
  const onKvEvent = ports.onKvEvent ?? (() => {});
  const onLoad = ports.onLoad ?? (() => {});
  const caching = options.enablePrefixCaching ?? true;
  const hasher = caching ? (ports.hasher ?? await createBlockHasher()) : undefined;

  let eventId = 0;
  const kv = createKvManager({
    capacity: options.numGpuBlocks ?? 16384,
    enablePrefixCaching: caching,
    onEvent: (data: KvCacheEventData) => onKvEvent({ event_id: eventId++, data, dp_rank: dpRank }),
  });
  const scheduler = createScheduler({
    blockSize: options.blockSize,
    maxNumSeqs,
    maxNumBatchedTokens: options.maxNumBatchedTokens,
    watermark: options.watermark,
    speedupRatio: options.speedupRatio,
    decodeSpeedupRatio: options.decodeSpeedupRatio,
  }, { kv, hasher });

  const channels = new Map<number, Channel>();
  let nextRequest = 0;
  const closing = new AbortController();
  let idle: AbortController | null = null;

  const push = (id: number, chunk: LLMEngineOutput) => {
    const channel = channels.get(id);
    if (!channel) return;
    channel.delivered += chunk.token_ids.length;
    channel.queue.push(chunk);
    channel.wake?.();
    channel.wake = null;
  };

  const load = () => toLoadMetrics(scheduler.snapshot(), { workerId, dpRank, maxNumSeqs });

  const sleep = async (ms: number, signal: AbortSignal) => {
    try {
      await clock.sleep(ms, signal);
    } catch {
      // An aborted sleep may reject; either way the loop goes on.
    }
  };

  const deliver = (result: StepResult) => {
    for (const { id, message } of result.rejected) {
      push(id, { token_ids: [], index: 0, finish_reason: { error: message } });
    }
    for (const output of result.outputs) {
      const chunk: LLMEngineOutput = {
        token_ids: [output.token],
        index: 0,
        finish_reason: output.finish,
      };
      const wanted = channels.get(output.id)?.logprobs;
      if (wanted) Object.assign(chunk, simulatedLogprobs(output.token, { ...wanted, vocabulary }));
      if (output.usage) chunk.completion_usage = usageChunk(output.usage);
      push(output.id, chunk);
    }
  };

  const run = async () => {
    let deadline = clock.now();
    while (!closing.signal.aborted) {
      if (scheduler.isIdle()) {
        onLoad(load());
        idle = new AbortController();
        await sleep(heartbeatMs, AbortSignal.any([closing.signal, idle.signal]));
        idle = null;
        deadline = clock.now();
        continue;
      }
      const result = scheduler.step();
      deadline = Math.max(deadline, clock.now() - MAX_LAG_MS) + result.durationMs;
      await sleep(Math.max(0, deadline - clock.now()), closing.signal);
      deliver(result);
      onLoad(load());
    }
  };
  const loop = run().catch((error: unknown) => {
    // A bug, not a condition: end every stream rather than leave it hanging.
    closing.abort();
    const message = `The simulated engine failed: ${
      error instanceof Error ? error.message : String(error)
    }`;
    for (const id of [...channels.keys()]) {
      push(id, { token_ids: [], index: 0, finish_reason: { error: message } });
    }
  });

  const cancel = (id: number) => {
    const usage = scheduler.cancel(id);
    const channel = channels.get(id);
    if (usage === null || !channel) return;
    // Count what the client got: the step in flight may have generated a token not yet due.
    usage.completionTokens = channel.delivered;
    push(id, {
      token_ids: [],
      index: 0,
      finish_reason: 'cancelled',
      completion_usage: usageChunk(usage),
    });
  };

  async function* generate(
    request: PreprocessedRequest,
    signal?: AbortSignal,
    options: GenerateOptions = {},
  ): AsyncGenerator<LLMEngineOutput> {
    const id = nextRequest++;
    const cancelled: LLMEngineOutput = { token_ids: [], index: 0, finish_reason: 'cancelled' };
    if (closing.signal.aborted) throw new Error('The engine is closed');
    let seed: PreparedSeed | undefined;
    if (hasher) {
      seed = await hasher.prepare({
        loraName: request.routing?.lora_name,
        cacheSalt: request.routing?.cache_salt,
      });
    }
    if (signal?.aborted) {
      yield cancelled;
      return;
    }
    const stop = request.stop_conditions ?? {};
    const samplingSeed = request.sampling_options?.seed;
    const random = createRandom(
      samplingSeed === null || samplingSeed === undefined
        ? mixSeeds([engineSeed, 0, id])
        : mixSeeds([engineSeed, 1, samplingSeed]),
    );
    const channel: Channel = { queue: [], wake: null, delivered: 0 };
    const logprobs = request.output_options?.logprobs;
    if (typeof logprobs === 'number' && logprobs >= 0) {
      channel.logprobs = { top: logprobs, random: createRandom(mixSeeds([engineSeed, 2, id])) };
    }
    channels.set(id, channel);
    const script = options.script;
    const eosId = stop.ignore_eos ? undefined : request.eos_token_ids?.[0];
    let scripted = 0;
    const draw = () => vocabulary[Math.floor(random() * vocabulary.length)]!;
    const nextToken = script ? () => script[scripted++] ?? eosId ?? draw() : draw;
    const asked = stop.max_tokens ?? defaultMaxTokens;
    scheduler.add({
      id,
      tokens: request.token_ids,
      // A script without an EOS to end it ends with its last token.
      maxTokens: script && eosId === undefined ? Math.min(asked, script.length) : asked,
      minTokens: stop.min_tokens ?? 0,
      stopTokenIds: [...(stop.stop_token_ids ?? []), ...(stop.stop_token_ids_hidden ?? [])],
      eosTokenIds: request.eos_token_ids ?? [],
      ignoreEos: stop.ignore_eos ?? false,
      nextToken,
      seed,
      remotePrefill: request.prefill_result !== undefined && request.prefill_result !== null,
    });
    idle?.abort();
    const onAbort = () => cancel(id);
    signal?.addEventListener('abort', onAbort, { once: true });
    try {
      while (true) {
        const chunk = channel.queue.shift();
        if (chunk === undefined) {
          await new Promise<void>((resolve) => (channel.wake = resolve));
          continue;
        }
        yield chunk;
        if (chunk.finish_reason !== null && chunk.finish_reason !== undefined) return;
      }
    } finally {
      signal?.removeEventListener('abort', onAbort);
      scheduler.cancel(id);
      channels.delete(id);
    }
  }

  const pinPrefix = (tokenIds: readonly number[], ttlMs: number): number => {
    if (!hasher || closing.signal.aborted) return 0;
    const hashes = hasher.blockHashes(tokenIds, { blockSize: options.blockSize ?? 64 });
    const present = kv.overlap(hashes.sequence);
    if (present === 0) return 0;
    const held = hashes.sequence.slice(0, present);
    const blocks = held.map((hash, i) => ({ hash, tokensHash: hashes.local[i] as bigint }));
    if (kv.use(blocks) === null) return 0;
    // Released when the TTL ends, or at close.
    void clock.sleep(ttlMs, closing.signal).then(() => kv.deref(held));
    return present;
  };

  return {
    generate,
    load,
    pinPrefix,
    resetPrefixCache: () => scheduler.isIdle() && kv.clear(),
    close: async () => {
      if (!closing.signal.aborted) {
        for (const id of [...channels.keys()]) cancel(id);
        closing.abort();
      }
      await loop;
    },
  };
}
