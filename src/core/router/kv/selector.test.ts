import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  createWorkerSelector,
  minActivePrefillTokens,
  NoEndpointsError,
  type RouterConfigOverride,
  type SelectionCandidate,
  softmaxSample,
  tiedMinima,
  workerCost,
} from './selector.ts';
import { workerKey } from './worker-key.ts';

/** A seeded uniform [0, 1) generator (mulberry32), so "random" tests are reproducible. */
function seeded(seed: number) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const w = (id: number, dp = 0) => workerKey(BigInt(id), dp);

describe('softmax sampling (router reference §8.4)', () => {
  test('test_softmax_sample_single_key', () => {
    for (
      const [cost, temperature] of [[0.5, 0.1], [0.5, 1], [0.5, 10], [-100, 1], [100, 1], [0, 1], [
        0,
        0,
      ]] as const
    ) {
      for (const sample of [0, 0.5, 0.999]) {
        assert.equal(softmaxSample([cost], temperature, sample), 0);
      }
    }
  });

  test('test_softmax_sample_zero_temperature', () => {
    assert.equal(softmaxSample([5, 3, 7, 3.5], 0, 0.5), 1, 'the smallest cost');
    const tied = softmaxSample([5, 3, 3, 7], 0, 0.5);
    assert.ok(tied === 1 || tied === 2, 'one of the tied minima');
    assert.equal(softmaxSample([-1, -5, 0], 0, 0.5), 1, 'negative costs');
  });

  test('test_softmax_sample_tied_values', () => {
    assert.deepEqual(tiedMinima([5, 3, 3]), [1, 2]);
  });

  test('test_softmax_sample_with_sample_returns_selected_logit', () => {
    const costs = [0, 3, 9];
    // The reference's probabilities, computed its own way: softmax of -(v / range) / T.
    const temperature = 1;
    const range = 9 - 0;
    const scaled = costs.map((v) => -(v / range) / temperature);
    const top = Math.max(...scaled);
    const exp = scaled.map((v) => Math.exp(v - top));
    const sum = exp.reduce((a, b) => a + b, 0);
    const probabilities = exp.map((v) => v / sum);
    const target = costs.findIndex((c) => c > 0);
    const before = probabilities.slice(0, target).reduce((a, b) => a + b, 0);
    const sample = before + (probabilities[target] as number) / 2;
    assert.equal(softmaxSample(costs, temperature, sample), target);
    assert.equal(softmaxSample(costs, temperature, 0), 0);
    assert.equal(softmaxSample(costs, temperature, 1), 2, 'the last index is the fallback');
  });

  test('softmax_sample_orders_extreme_finite_costs', () => {
    assert.equal(softmaxSample([-Number.MAX_VALUE, Number.MAX_VALUE], 1, 0.6), 0);
  });
});

describe('KV worker selector (router reference §8.4)', () => {
  test('test_default_selector_single_worker', () => {
    const selector = createWorkerSelector({ blockSize: 64 });
    const result = selector.select({ isl: 128, candidates: [{ worker: w(1), overlapBlocks: 5 }] });
    assert.equal(result.worker, w(1));
    assert.equal(result.overlapBlocks, 5);
    assert.equal(result.requiredBlocks, 2);
  });

  test('test_default_selector_prefers_cached', () => {
    // The reference uses isl 128 (2 blocks), where both workers cover the whole prompt and tie;
    // 16 blocks make the 10-vs-2 overlap decide.
    const selector = createWorkerSelector({ blockSize: 64 });
    const result = selector.select({
      isl: 1024,
      candidates: [{ worker: w(1), overlapBlocks: 10 }, { worker: w(2), overlapBlocks: 2 }],
    });
    assert.equal(result.worker, w(1));
    assert.equal(result.overlapBlocks, 10);
  });

  test('test_data_parallel_workers', () => {
    // 256 tokens at block size 64 = 4 blocks: rank 0 has 1 cached, rank 1 has 3.
    const selector = createWorkerSelector({ blockSize: 64 });
    const result = selector.select({
      isl: 256,
      candidates: [{ worker: w(1, 0), overlapBlocks: 1 }, { worker: w(1, 1), overlapBlocks: 3 }],
    });
    assert.equal(result.worker, w(1, 1));
  });

  test('test_no_workers_error', () => {
    const selector = createWorkerSelector({ blockSize: 64 });
    assert.throws(() => selector.select({ isl: 128, candidates: [] }), (error: unknown) => {
      assert.ok(error instanceof NoEndpointsError);
      assert.equal(error.status, 503);
      return true;
    });
  });

  test('test_default_selector_randomizes_zero_temperature_ties', () => {
    const selector = createWorkerSelector({ blockSize: 16, random: seeded(42) });
    const candidates = [10, 20, 30].map((id) => ({ worker: w(id) }));
    const seen = new Set<string>();
    for (let i = 0; i < 120; i++) seen.add(selector.select({ isl: 16, candidates }).worker);
    assert.ok(seen.size > 1, 'zero-temperature ties must not always pick the same worker');
  });

  test('per_request_overrides_change_selection', () => {
    // Block size 1, 4 prompt tokens: the warm worker has 2 cached and 1 active decode block.
    const warm: SelectionCandidate = { worker: w(0), overlapBlocks: 2, decodeBlocks: 1 };
    const cold: SelectionCandidate = { worker: w(1), decodeBlocks: 0 };
    // 0.99 lands past the warm worker's share whenever a softmax draw happens.
    const selector = createWorkerSelector({ blockSize: 1, random: () => 0.99 });
    const select = (overrides?: RouterConfigOverride) =>
      selector.select({ isl: 4, candidates: [warm, cold], overrides }).worker;
    assert.equal(select(), warm.worker);
    for (
      const [name, overrides] of Object.entries({
        overlap_score_weight: { overlapScoreWeight: 0 },
        overlap_score_credit: { overlapScoreCredit: 0 },
        prefill_load_scale: { prefillLoadScale: 0 },
        router_temperature: { routerTemperature: 1 },
      })
    ) {
      assert.equal(select(overrides), cold.worker, `${name} override was ignored`);
    }
  });

  test('minimum_prefill_load_is_only_computed_when_requested', () => {
    const candidates = [
      { worker: w(0), activePrefillTokens: 7 },
      { worker: w(1), activePrefillTokens: 11 },
    ];
    const weights = { overlapScoreCredit: 1, prefillLoadScale: 1, overlapScoreCreditDecay: 1 };
    assert.equal(minActivePrefillTokens(candidates, weights), 7);
    assert.equal(minActivePrefillTokens(candidates, { ...weights, overlapScoreCreditDecay: 0 }), 0);
    assert.equal(minActivePrefillTokens(candidates, weights, false), 0, 'no prefill tracking');
  });
});

describe('KV worker selector', () => {
  test('the documented example: prefill 8/5/2 and decode 10/5/9 cost 18/10/11', () => {
    const selector = createWorkerSelector({ blockSize: 16 });
    const candidates = [8, 5, 2].map((prefill, i) => ({
      worker: w(i),
      activePrefillTokens: prefill * 16 - 16,
      decodeBlocks: [10, 5, 9][i],
    }));
    const costs = candidates.map((c) =>
      workerCost(c, {
        isl: 16,
        blockSize: 16,
        weights: { overlapScoreCredit: 1, prefillLoadScale: 1, overlapScoreCreditDecay: 0 },
      })
    );
    assert.deepEqual(costs, [18, 10, 11]);
    const result = selector.select({ isl: 16, candidates });
    assert.equal(result.worker, w(1));
    assert.equal(result.cost, 10);
  });

  test('ties at temperature 0 go to the smallest tree: 3 vs 5', () => {
    const selector = createWorkerSelector({ blockSize: 16, random: () => 0 });
    const result = selector.select({
      isl: 48,
      candidates: [
        { worker: w(0xa), overlapBlocks: 2, treeSize: 5 },
        { worker: w(0xb), overlapBlocks: 2, treeSize: 3 },
        { worker: w(0xc), overlapBlocks: 1, treeSize: 0 },
      ],
    });
    assert.equal(result.worker, w(0xb));
  });

  test('the classic weight scales prefill cost; weight 0 balances load only', () => {
    const candidates = [
      { worker: w(1), overlapBlocks: 4, decodeBlocks: 10 },
      { worker: w(2), overlapBlocks: 0, decodeBlocks: 6 },
    ];
    // 8 prompt blocks: worker 1 costs w*4 + 10, worker 2 costs w*8 + 6.
    const pick = (overlapScoreWeight: number) =>
      createWorkerSelector({ blockSize: 16, overlapScoreWeight }).select({ isl: 128, candidates });
    assert.equal(pick(2).worker, w(1));
    assert.equal(pick(2).cost, 18);
    assert.equal(pick(0).worker, w(2));
    assert.equal(pick(0).cost, 6);
  });

  test('without prefill tracking the cost is the decode load', () => {
    const selector = createWorkerSelector({ blockSize: 16 });
    const result = selector.select({
      isl: 1600,
      trackPrefillTokens: false,
      candidates: [
        { worker: w(1), overlapBlocks: 100, decodeBlocks: 9, activePrefillTokens: 0 },
        { worker: w(2), overlapBlocks: 0, decodeBlocks: 3, activePrefillTokens: 0 },
      ],
    });
    assert.equal(result.worker, w(2));
    assert.equal(result.cost, 3);
  });

  test('a positive temperature samples every worker, favouring the cheap one', () => {
    const selector = createWorkerSelector({ blockSize: 16, temperature: 1, random: seeded(7) });
    const candidates = [
      { worker: w(1), decodeBlocks: 0, activePrefillTokens: 0 },
      { worker: w(2), decodeBlocks: 10, activePrefillTokens: 0 },
    ];
    let cheap = 0;
    for (let i = 0; i < 1000; i++) {
      if (selector.select({ isl: 16, candidates }).worker === w(1)) cheap++;
    }
    // p(cheap) = 1 / (1 + e^-1) ≈ 0.731
    assert.ok(cheap > 650 && cheap < 810, `cheap worker picked ${cheap} times of 1000`);
  });

  test('credit decay shrinks the cache credit of a worker with a prefill backlog', () => {
    const candidates = [
      { worker: w(1), overlapBlocks: 4, activePrefillTokens: 64, decodeBlocks: 0 },
      { worker: w(2), overlapBlocks: 0, activePrefillTokens: 0, decodeBlocks: 1 },
    ];
    // 4 prompt blocks. Full credit: worker 1 costs (64 + 64)/16 - 4 = 4, worker 2 costs 4 + 1.
    const base = createWorkerSelector({ blockSize: 16 }).select({ isl: 64, candidates });
    assert.equal(base.worker, w(1));
    assert.equal(base.cost, 4);
    // Decay 1: worker 1 is 4 blocks above the least loaded, over a 4-block prompt, so it keeps
    // half its credit: 8 - 2 = 6 > 5.
    const decayed = createWorkerSelector({ blockSize: 16, overlapScoreCreditDecay: 1 })
      .select({ isl: 64, candidates });
    assert.equal(decayed.worker, w(2));
  });
});
