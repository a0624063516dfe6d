import assert from 'node:assert/strict';
import { before, describe, test } from 'node:test';
import type { KvCacheEvent } from '../../core/router/kv/events.ts';
import { type BlockHasher, createBlockHasher } from '../../core/router/kv/hash.ts';
import type { LLMEngineOutput, PreprocessedRequest } from '../../core/plane/worker.ts';
import { createFakeClock, type FakeClock } from './_fake-clock.ts';
import {
  createMockEngine,
  type LoadMetrics,
  type MockEngine,
  type MockEngineOptions,
} from './engine.ts';

const range = (from: number, to: number) => Array.from({ length: to - from }, (_, i) => from + i);
const close = (actual: number, expected: number) =>
  assert.ok(Math.abs(actual - expected) < 1e-6, `${actual} is not ${expected}`);

const request = (
  tokens: number[],
  maxTokens: number,
  extra: Partial<PreprocessedRequest> = {},
): PreprocessedRequest => ({
  model: 'mock',
  token_ids: tokens,
  stop_conditions: { max_tokens: maxTokens },
  sampling_options: {},
  output_options: {},
  eos_token_ids: [],
  annotations: [],
  ...extra,
});

interface Harness {
  engine: MockEngine;
  clock: FakeClock;
  events: KvCacheEvent[];
  loads: LoadMetrics[];
  /** Consumes a stream, noting the simulated time each chunk arrived. */
  collect(
    req: PreprocessedRequest,
    signal?: AbortSignal,
  ): Promise<{ chunks: LLMEngineOutput[]; times: number[]; tokens: number[] }>;
}

describe('createMockEngine()', () => {
  let hasher: BlockHasher;
  before(async () => {
    hasher = await createBlockHasher();
  });

  async function withEngine(
    options: MockEngineOptions,
    body: (h: Harness) => Promise<void>,
  ): Promise<void> {
    const clock = createFakeClock(1000);
    const events: KvCacheEvent[] = [];
    const loads: LoadMetrics[] = [];
    const engine = await createMockEngine({ blockSize: 4, watermark: 0, ...options }, {
      clock,
      hasher,
      onKvEvent: (e) => events.push(e),
      onLoad: (m) => loads.push(m),
    });
    const collect: Harness['collect'] = async (req, signal) => {
      const chunks: LLMEngineOutput[] = [];
      const times: number[] = [];
      for await (const chunk of engine.generate(req, signal)) {
        chunks.push(chunk);
        times.push(clock.now());
      }
      return { chunks, times, tokens: chunks.flatMap((c) => c.token_ids) };
    };
    try {
      await body({ engine, clock, events, loads, collect });
    } finally {
      await engine.close();
    }
  }

  test('streams exactly max_tokens one-token chunks from the vocabulary, usage on the last', async () => {
    await withEngine({ vocabulary: [7, 8, 9] }, async ({ collect }) => {
      const { chunks } = await collect(request(range(1, 11), 5));
      assert.equal(chunks.length, 5);
      for (const chunk of chunks) {
        assert.equal(chunk.token_ids.length, 1);
        assert.ok([7, 8, 9].includes(chunk.token_ids[0]!));
        assert.equal(chunk.index, 0);
      }
      assert.deepEqual(chunks.map((c) => c.finish_reason), [null, null, null, null, 'length']);
      assert.deepEqual(chunks[4]!.completion_usage, {
        prompt_tokens: 10,
        completion_tokens: 5,
        total_tokens: 15,
        prompt_tokens_details: { cached_tokens: 0 },
      });
      assert.equal(chunks[3]!.completion_usage, undefined);
    });
  });

  test('draws the same tokens for the same engine seed and request seed', async () => {
    const seeded = (seed: number) => request(range(1, 5), 20, { sampling_options: { seed } });
    let first: number[] = [];
    let unseeded: number[][] = [];
    await withEngine({ seed: 3 }, async ({ collect }) => {
      first = (await collect(seeded(42))).tokens;
      assert.deepEqual((await collect(seeded(42))).tokens, first);
      assert.notDeepEqual((await collect(seeded(43))).tokens, first);
      unseeded = [(await collect(request(range(1, 5), 20))).tokens];
      unseeded.push((await collect(request(range(1, 5), 20))).tokens);
      assert.notDeepEqual(unseeded[0], unseeded[1]); // seeded by request order
    });
    await withEngine({ seed: 3 }, async ({ collect }) => {
      assert.deepEqual((await collect(seeded(42))).tokens, first);
    });
    await withEngine({ seed: 4 }, async ({ collect }) => {
      assert.notDeepEqual((await collect(seeded(42))).tokens, first);
    });
  });

  test("delivers each token after its step's simulated time", async () => {
    // 10 blocks × 64 = 640 KV tokens; a 100-token prompt.
    await withEngine(
      { blockSize: 64, numGpuBlocks: 10, speedupRatio: 2 },
      async ({ clock, collect }) => {
        const start = clock.now();
        const { times } = await collect(request(range(0, 100), 3));
        const decode = (kvTokens: number) => {
          const p = kvTokens / 640;
          return -25.74 * p * p + 54.01 * p + 5.74;
        };
        const prefill = 4.209989e-7 * 100 * 100 + 1.518344e-2 * 100 + 16.50142;
        const first = start + (prefill + decode(100)) / 2;
        close(times[0]!, first);
        close(times[1]!, first + decode(101) / 2);
        close(times[2]!, first + decode(101) / 2 + decode(102) / 2);
      },
    );
  });

  test('a prompt prefilled by a prefill worker costs no prefill time on the decode worker', async () => {
    await withEngine({ blockSize: 64, numGpuBlocks: 10 }, async ({ clock, collect }) => {
      const decode = (kvTokens: number) => {
        const p = kvTokens / 640;
        return -25.74 * p * p + 54.01 * p + 5.74;
      };
      const start = clock.now();
      const remote = request(range(0, 100), 1, { prefill_result: { disaggregated_params: {} } });
      const { times } = await collect(remote);
      close(times[0]!, start + decode(100));
    });
  });

  test('pinPrefix() keeps cached blocks from eviction until the TTL ends', async () => {
    await withEngine({ numGpuBlocks: 4 }, async ({ engine, clock, events, collect }) => {
      const a = range(1, 9);
      await collect(request(a, 1));
      assert.equal(engine.pinPrefix(a, 5000), 2);
      const removedBefore = events.filter((e) => typeof e.data === 'object' && 'removed' in e.data);
      // B needs 3 of the 4 blocks: with A's 2 pinned it cannot evict them.
      await collect(request(range(11, 19), 1));
      const removedAfter = events.filter((e) => typeof e.data === 'object' && 'removed' in e.data);
      assert.equal(removedAfter.length, removedBefore.length);
      await clock.sleep(5000);
      await collect(request(range(21, 29), 1));
      assert.ok(
        events.some((e) => typeof e.data === 'object' && 'removed' in e.data),
        'after the TTL the pinned blocks can be evicted',
      );
    });
  });

  test('abort ends the stream with cancelled and frees the blocks at once', async () => {
    await withEngine({}, async ({ engine, collect }) => {
      const controller = new AbortController();
      const chunks: LLMEngineOutput[] = [];
      for await (const chunk of engine.generate(request(range(1, 11), 100), controller.signal)) {
        chunks.push(chunk);
        if (chunks.length === 2) {
          assert.ok(engine.load().forwardPass.kv_stats.kv_active_blocks >= 3);
          controller.abort();
          assert.equal(engine.load().forwardPass.kv_stats.kv_active_blocks, 0);
        }
      }
      assert.equal(chunks.length, 3);
      assert.deepEqual(chunks[2], {
        token_ids: [],
        index: 0,
        finish_reason: 'cancelled',
        completion_usage: {
          prompt_tokens: 10,
          completion_tokens: 2,
          total_tokens: 12,
          prompt_tokens_details: { cached_tokens: 0 },
        },
      });
      // An already aborted signal cancels before any work.
      const aborted = await collect(request([1], 5), AbortSignal.abort());
      assert.deepEqual(aborted.chunks.map((c) => c.finish_reason), ['cancelled']);
    });
  });

  test("leaving the stream early frees the request's blocks", async () => {
    await withEngine({}, async ({ engine }) => {
      for await (const _chunk of engine.generate(request(range(1, 11), 100))) break;
      assert.equal(engine.load().forwardPass.kv_stats.kv_active_blocks, 0);
      assert.equal(engine.load().forwardPass.worker_stats.request_active_slots, 0);
    });
  });

  test('publishes stored events with router hashes, then removed when evicting', async () => {
    await withEngine({ numGpuBlocks: 4, dpRank: 2 }, async ({ events, collect }) => {
      const a = range(1, 9);
      const b = range(11, 19);
      await collect(request(a, 1));
      await collect(request(b, 1));
      const ha = hasher.blockHashes(a, { blockSize: 4 });
      const hb = hasher.blockHashes(b, { blockSize: 4 });
      const stored = (h: typeof ha) => ({
        stored: {
          parent_hash: null,
          blocks: [
            { block_hash: h.sequence[0], tokens_hash: h.local[0] },
            { block_hash: h.sequence[1], tokens_hash: h.local[1] },
          ],
        },
      });
      // A's blocks went inactive (last block first); B's first token needed a 5th block.
      assert.deepEqual(events, [
        { event_id: 0, dp_rank: 2, data: stored(ha) },
        { event_id: 1, dp_rank: 2, data: stored(hb) },
        { event_id: 2, dp_rank: 2, data: { removed: { block_hashes: [ha.sequence[1]] } } },
      ]);
    });
  });

  test("salts block hashes with the request's LoRA name and cache salt", async () => {
    await withEngine({}, async ({ events, collect }) => {
      const salt = { loraName: 'my-adapter', cacheSalt: 'tenant-a' };
      await collect(
        request(range(0, 8), 1, {
          routing: { lora_name: salt.loraName, cache_salt: salt.cacheSalt },
        }),
      );
      const seed = await hasher.prepare(salt);
      const h = hasher.blockHashes(range(0, 8), { blockSize: 4, seed });
      assert.deepEqual(events[0]!.data, {
        stored: {
          parent_hash: null,
          blocks: [
            { block_hash: h.sequence[0], tokens_hash: h.local[0] },
            { block_hash: h.sequence[1], tokens_hash: h.local[1] },
          ],
        },
      });
    });
  });

  test('publishes load after each step and as a heartbeat when idle', async () => {
    await withEngine(
      { numGpuBlocks: 100, maxNumSeqs: 8, workerId: 12345678901234567890n, dpRank: 1 },
      async ({ clock, loads, collect }) => {
        const before = loads.length;
        await collect(request(range(1, 11), 3));
        const during = loads.slice(before);
        assert.ok(during.length >= 3);
        assert.deepEqual(during[0], {
          forwardPass: {
            worker_stats: {
              data_parallel_rank: 1,
              request_active_slots: 1,
              request_total_slots: 8,
              num_requests_waiting: 0,
            },
            kv_stats: {
              kv_active_blocks: 3,
              kv_total_blocks: 100,
              gpu_cache_usage_perc: 0.03,
              gpu_prefix_cache_hit_rate: 0,
            },
          },
          activeLoad: {
            worker_id: 12345678901234567890n,
            dp_rank: 1,
            active_decode_blocks: 3,
            active_prefill_tokens: 0,
            kv_used_blocks: 3,
            waiting_requests: 0,
          },
        });
        const idleFrom = clock.now();
        const count = loads.length;
        for (let turn = 0; turn < 100 && clock.now() < idleFrom + 3000; turn++) {
          await new Promise((r) => setTimeout(r, 0));
        }
        assert.ok(loads.length >= count + 2, `${loads.length - count} heartbeats`);
        assert.equal(loads.at(-1)!.forwardPass.kv_stats.kv_active_blocks, 0);
      },
    );
  });

  test('ends a request that can never fit with an error finish reason', async () => {
    await withEngine({ numGpuBlocks: 2 }, async ({ collect }) => {
      const { chunks } = await collect(request(range(1, 13), 1));
      assert.deepEqual(chunks, [{
        token_ids: [],
        index: 0,
        finish_reason: { error: 'Prompt of 12 tokens needs 4 KV blocks; the cache admits 2 of 2' },
      }]);
    });
  });

  test('resetPrefixCache() clears an idle cache and publishes cleared', async () => {
    await withEngine({}, async ({ engine, events, collect }) => {
      await collect(request(range(1, 9), 1));
      assert.equal(engine.resetPrefixCache(), true);
      assert.equal(events.at(-1)!.data, 'cleared');
      assert.equal(events.at(-1)!.event_id, events.length - 1);
    });
  });

  test('close() ends running requests with cancelled', async () => {
    await withEngine({}, async ({ engine }) => {
      const stream = engine.generate(request(range(1, 9), 1000))[Symbol.asyncIterator]();
      assert.equal((await stream.next()).value?.finish_reason, null);
      await engine.close();
      const rest: LLMEngineOutput[] = [];
      for (let next = await stream.next(); !next.done; next = await stream.next()) {
        rest.push(next.value);
      }
      assert.equal(rest.at(-1)!.finish_reason, 'cancelled');
      assert.equal(engine.load().forwardPass.kv_stats.kv_active_blocks, 0);
    });
  });
});
