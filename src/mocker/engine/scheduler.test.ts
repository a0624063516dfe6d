import assert from 'node:assert/strict';
import { before, describe, test } from 'node:test';
import type { KvCacheEventData } from '../../core/router/kv/events.ts';
import { type BlockHasher, createBlockHasher } from '../../core/router/kv/hash.ts';
import { createKvManager } from './kv-manager.ts';
import {
  createScheduler,
  decodeTimeMs,
  prefillTimeMs,
  type SchedulerOptions,
  type SequenceRequest,
  type StepResult,
} from './scheduler.ts';

const range = (from: number, to: number) => Array.from({ length: to - from }, (_, i) => from + i);
const close = (actual: number, expected: number) =>
  assert.ok(Math.abs(actual - expected) < 1e-9, `${actual} is not ${expected}`);

/** Emits `start`, `start + 1`, ... */
const counter = (start: number) => {
  let next = start;
  return () => next++;
};
/** Emits `tokens` in turn, then repeats the last one. */
const script = (...tokens: number[]) => {
  let i = 0;
  return () => tokens[Math.min(i++, tokens.length - 1)]!;
};

describe('createScheduler()', () => {
  let hasher: BlockHasher;
  before(async () => {
    hasher = await createBlockHasher();
  });

  function setup(
    options: SchedulerOptions & { capacity?: number; enablePrefixCaching?: boolean } = {},
  ) {
    const events: KvCacheEventData[] = [];
    const kv = createKvManager({
      capacity: options.capacity ?? 100,
      enablePrefixCaching: options.enablePrefixCaching,
      onEvent: (e) => events.push(e),
    });
    const scheduler = createScheduler({ blockSize: 4, watermark: 0, ...options }, { kv, hasher });
    const add = (request: Partial<SequenceRequest> & { id: number; tokens: number[] }) =>
      scheduler.add({ maxTokens: 1, nextToken: counter(1000 * (request.id + 1)), ...request });
    const run = () => {
      const steps: StepResult[] = [];
      while (!scheduler.isIdle() && steps.length < 1000) steps.push(scheduler.step());
      return steps;
    };
    const tokensOf = (steps: StepResult[], id: number) =>
      steps.flatMap((s) => s.outputs.filter((o) => o.id === id).map((o) => o.token));
    return { kv, scheduler, events, add, run, tokensOf };
  }

  test('a second request sharing 2 full blocks prefills only its uncached tokens', () => {
    const { scheduler, add, run } = setup();
    add({ id: 0, tokens: range(1, 13) }); // 3 full blocks
    const [first] = run();
    assert.equal(first!.prefillTokens, 12);
    add({ id: 1, tokens: [...range(1, 9), 50, 51, 52, 53, 54, 55], maxTokens: 1 }); // 14 tokens
    const [second] = run();
    assert.equal(second!.prefillTokens, 6); // 14 − 2 blocks × 4
    assert.deepEqual(second!.outputs[0]!.usage, {
      promptTokens: 14,
      completionTokens: 1,
      cachedTokens: 8,
    });
    close(scheduler.snapshot().prefixHitRate, (0 + 8 / 14) / 2);
  });

  test('preempts the newest running request when a block is needed, which later resumes', () => {
    // 6 blocks of 4 tokens; two 8-token prompts each get 2 blocks, then grow a block every 4
    // tokens. At step 5 request 0 needs a 7th block: request 1 (newest) is preempted.
    const { kv, scheduler, events, add, run, tokensOf } = setup({ capacity: 6 });
    add({ id: 0, tokens: range(1, 9), maxTokens: 8 });
    add({ id: 1, tokens: range(101, 109), maxTokens: 8 });
    const steps = run();
    assert.deepEqual(steps[0]!.admitted, [0, 1]);
    assert.deepEqual(steps.map((s) => s.preempted.length), [0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0]);
    assert.deepEqual(steps[4]!.preempted, [1]);
    assert.deepEqual(steps[4]!.outputs.map((o) => o.id), [0]);
    // Request 1 waits while request 0 holds 4 blocks (4 + ceil(13/4) > 6), then comes back
    // with its 2 prompt blocks still cached: it prefills only its 4 generated tokens.
    assert.deepEqual(steps[8]!.admitted, [1]);
    assert.equal(steps[8]!.prefillTokens, 4);
    assert.deepEqual(tokensOf(steps, 0), range(1000, 1008));
    assert.deepEqual(tokensOf(steps, 1), range(2000, 2008));
    assert.equal(steps.at(-1)!.outputs.at(-1)!.finish, 'length');
    assert.deepEqual(steps.at(-1)!.outputs.at(-1)!.usage, {
      promptTokens: 8,
      completionTokens: 8,
      cachedTokens: 0,
    });
    assert.equal(scheduler.snapshot().preemptions, 1);
    // The preempted request's blocks went inactive; its newest (generated) block was evicted.
    const request1 = hasher.blockHashes([...range(101, 109), ...range(2000, 2004)], {
      blockSize: 4,
    });
    assert.deepEqual(events.find((e) => typeof e === 'object' && 'removed' in e), {
      removed: { block_hashes: [request1.sequence[2]] },
    });
    assert.equal(kv.activeBlocks(), 0);
  });

  test('admits by the watermark block budget: active + Σ ceil((len + 1) / block) ≤ (1 − w) × capacity', () => {
    // capacity 10, watermark 0.2: 8 blocks. 20 tokens need 6, 4 tokens need 2, 1 token needs 1.
    const { scheduler, add } = setup({ capacity: 10, watermark: 0.2 });
    add({ id: 0, tokens: range(1, 21), maxTokens: 5 });
    add({ id: 1, tokens: range(31, 35), maxTokens: 5 });
    add({ id: 2, tokens: [77], maxTokens: 5 });
    const step = scheduler.step();
    assert.deepEqual(step.admitted, [0, 1]);
    assert.equal(scheduler.status(2), 'waiting');
    // Next step: 6 + 2 active blocks already, nothing more fits.
    assert.deepEqual(scheduler.step().admitted, []);
  });

  test('refuses a request that alone needs more blocks than the budget', () => {
    const { scheduler, add } = setup({ capacity: 4, watermark: 0.25 }); // 3 blocks
    add({ id: 0, tokens: range(1, 13) }); // ceil(13/4) = 4
    add({ id: 1, tokens: range(1, 5) }); // 2: fits
    const step = scheduler.step();
    assert.deepEqual(step.rejected, [{
      id: 0,
      message: 'Prompt of 12 tokens needs 4 KV blocks; the cache admits 3 of 4',
    }]);
    assert.deepEqual(step.admitted, [1]);
  });

  test('admits within max_num_batched_tokens, counting 1 per decoding request', () => {
    const { scheduler, add } = setup({ maxNumBatchedTokens: 10 });
    add({ id: 0, tokens: range(1, 9), maxTokens: 3 }); // 8 tokens
    add({ id: 1, tokens: range(11, 16), maxTokens: 3 }); // 5: 8 + 5 > 10
    add({ id: 2, tokens: range(21, 25), maxTokens: 3 }); // 4
    assert.deepEqual(scheduler.step().admitted, [0]);
    // 1 decoding + 5 = 6, then + 4 = 10 ≤ 10.
    assert.deepEqual(scheduler.step().admitted, [1, 2]);
  });

  test('runs a prompt larger than max_num_batched_tokens alone rather than never', () => {
    const { scheduler, add } = setup({ maxNumBatchedTokens: 10 });
    add({ id: 0, tokens: range(1, 31) });
    add({ id: 1, tokens: [5] });
    const step = scheduler.step();
    assert.deepEqual(step.admitted, [0]);
    assert.equal(step.prefillTokens, 30);
    assert.deepEqual(scheduler.step().admitted, [1]);
  });

  test('admits at most max_num_seqs running requests', () => {
    const { scheduler, add } = setup({ maxNumSeqs: 1 });
    add({ id: 0, tokens: [1], maxTokens: 2 });
    add({ id: 1, tokens: [2], maxTokens: 2 });
    assert.deepEqual(scheduler.step().admitted, [0]);
    assert.deepEqual(scheduler.step().admitted, []); // 0 finishes in this step
    assert.deepEqual(scheduler.step().admitted, [1]);
  });

  test('times a step as prefill_ms(T) / speedup + decode_ms(p) / (speedup × decode speedup)', () => {
    // 10 blocks × 64 tokens = 640 KV tokens; one 100-token prompt.
    const { scheduler, add } = setup({
      blockSize: 64,
      capacity: 10,
      speedupRatio: 2,
      decodeSpeedupRatio: 4,
    });
    add({ id: 0, tokens: range(0, 100), maxTokens: 2 });
    const first = scheduler.step();
    const prefill = 4.209989e-7 * 100 * 100 + 1.518344e-2 * 100 + 16.50142; // 18.023973989
    const p1 = 100 / 640;
    const decode1 = -25.74 * p1 * p1 + 54.01 * p1 + 5.74; // 13.55064453125
    assert.equal(first.prefillTokens, 100);
    close(first.prefillMs, prefill / 2);
    close(first.decodeMs, decode1 / 8);
    close(first.durationMs, prefill / 2 + decode1 / 8);
    const second = scheduler.step();
    const p2 = 101 / 640;
    close(second.prefillMs, 0);
    close(second.durationMs, (-25.74 * p2 * p2 + 54.01 * p2 + 5.74) / 8);
    close(scheduler.step().durationMs, 0); // idle
  });

  test('the timing polynomials match the reference, with decode floored at 1 ms', () => {
    close(prefillTimeMs(0), 0);
    close(prefillTimeMs(1000), 0.4209989 + 15.18344 + 16.50142);
    close(decodeTimeMs(0), 5.74);
    close(decodeTimeMs(0.5), -6.435 + 27.005 + 5.74);
    close(decodeTimeMs(3), 1);
  });

  test('ends at a stop token id with stop, and at an EOS id with eos', () => {
    const { add, run } = setup();
    add({ id: 0, tokens: [1], maxTokens: 10, nextToken: script(5, 7, 9, 2), stopTokenIds: [9] });
    add({ id: 1, tokens: [1], maxTokens: 10, nextToken: script(5, 2, 9), eosTokenIds: [2] });
    const outputs = run().flatMap((s) => s.outputs);
    const of = (id: number) => outputs.filter((o) => o.id === id);
    assert.deepEqual(of(0).map((o) => [o.token, o.finish]), [[5, null], [7, null], [9, 'stop']]);
    assert.deepEqual(of(1).map((o) => [o.token, o.finish]), [[5, null], [2, 'eos']]);
  });

  test('min_tokens holds back stop and EOS; ignore_eos skips EOS but not stop ids', () => {
    const { add, run } = setup();
    const tokens = () => script(9, 2, 2, 9, 4);
    add({ id: 0, tokens: [1], maxTokens: 10, nextToken: tokens(), eosTokenIds: [2], minTokens: 3 });
    add({
      id: 1,
      tokens: [1],
      maxTokens: 10,
      nextToken: tokens(),
      eosTokenIds: [2],
      ignoreEos: true,
      stopTokenIds: [9],
      minTokens: 2,
    });
    add({
      id: 2,
      tokens: [1],
      maxTokens: 6,
      nextToken: tokens(),
      eosTokenIds: [2],
      ignoreEos: true,
    });
    const outputs = run().flatMap((s) => s.outputs);
    const of = (id: number) => outputs.filter((o) => o.id === id).map((o) => o.finish);
    assert.deepEqual(of(0), [null, null, 'eos']);
    assert.deepEqual(of(1), [null, null, null, 'stop']);
    assert.deepEqual(of(2), [null, null, null, null, null, 'length']);
  });

  test("cancel() frees a running request's blocks at once, keeping full ones cached", () => {
    const { kv, scheduler, add } = setup();
    add({ id: 0, tokens: range(1, 11), maxTokens: 50 }); // 2 full blocks + a partial
    scheduler.step();
    assert.equal(kv.activeBlocks(), 3);
    assert.deepEqual(scheduler.cancel(0), {
      promptTokens: 10,
      completionTokens: 1,
      cachedTokens: 0,
    });
    assert.equal(kv.activeBlocks(), 0);
    assert.equal(kv.inactiveBlocks(), 2);
    assert.equal(scheduler.isIdle(), true);
    assert.equal(scheduler.cancel(0), null);
  });

  test('stores prompt blocks with hashes equal to hash.ts and chains generated blocks', () => {
    const { events, add, run } = setup();
    const prompt = range(1, 9);
    add({ id: 0, tokens: prompt, maxTokens: 4 });
    run();
    const all = hasher.blockHashes([...prompt, ...range(1000, 1004)], { blockSize: 4 });
    assert.deepEqual(events, [
      {
        stored: {
          parent_hash: null,
          blocks: [
            { block_hash: all.sequence[0], tokens_hash: all.local[0] },
            { block_hash: all.sequence[1], tokens_hash: all.local[1] },
          ],
        },
      },
      {
        stored: {
          parent_hash: all.sequence[1],
          blocks: [{ block_hash: all.sequence[2], tokens_hash: all.local[2] }],
        },
      },
    ]);
  });

  test('with prefix caching off there is no reuse and no event', () => {
    const { kv, events, add, run } = setup({ enablePrefixCaching: false });
    add({ id: 0, tokens: range(1, 13), maxTokens: 4 });
    run();
    add({ id: 1, tokens: range(1, 13), maxTokens: 1 });
    const [step] = run();
    assert.equal(step!.prefillTokens, 12);
    assert.deepEqual(events, []);
    assert.equal(kv.freeBlocks(), 100);
  });
});
