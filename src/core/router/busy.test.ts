import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createBusyThresholdStore, NO_THRESHOLDS } from '../busy-thresholds.ts';
import type { ServedModel, WorkerInstance } from '../discovery/models.ts';
import { createBusyDetector } from './busy.ts';

const model = (runtime: Record<string, unknown>): ServedModel => ({
  name: 'm',
  created: 0,
  card: {
    display_name: 'm',
    kv_cache_block_size: 16,
    model_type: 'Chat',
    model_input: 'Tokens',
    runtime_config: { total_kv_blocks: 100, max_num_batched_tokens: 1000, ...runtime },
  },
});
const worker: WorkerInstance = {
  instanceId: 'ab',
  endpoint: { namespace: 'dynamo', component: 'backend', endpoint: 'generate' },
  transport: { tcp: 'h:1/ab/generate' },
};

function detector(
  thresholds = NO_THRESHOLDS,
  routerLoad?: () => {
    activeDecodeBlocks: number;
    activePrefillTokens: number;
  },
) {
  let now = 0;
  const store = createBusyThresholdStore(thresholds);
  const busy = createBusyDetector({ thresholds: store, now: () => now, routerLoad });
  return { busy, store, advance: (ms: number) => (now += ms) };
}

test('no threshold, never busy; each threshold alone makes a worker busy (OR)', () => {
  const none = detector();
  none.busy.onLoad({ worker_id: 0xab, dp_rank: 0, kv_used_blocks: 100 });
  assert.equal(none.busy.isBusy(model({}), worker), false);

  const decode = detector({ ...NO_THRESHOLDS, active_decode_blocks_threshold: 0.5 });
  decode.busy.onLoad({ worker_id: 0xab, kv_used_blocks: 50 });
  assert.equal(decode.busy.isBusy(model({}), worker), false, '50/100 is not above 0.5');
  decode.busy.onLoad({ worker_id: 0xab, kv_used_blocks: 51 });
  assert.equal(decode.busy.isBusy(model({}), worker), true);

  const prefill = detector({ ...NO_THRESHOLDS, active_prefill_tokens_threshold: 100 });
  prefill.busy.onLoad({ worker_id: 0xab, active_prefill_tokens: 101 });
  assert.equal(prefill.busy.isBusy(model({}), worker), true);

  const frac = detector({ ...NO_THRESHOLDS, active_prefill_tokens_threshold_frac: 0.1 });
  frac.busy.onLoad({ worker_id: 0xab, active_prefill_tokens: 100 });
  assert.equal(frac.busy.isBusy(model({}), worker), false, '100 is not above 0.1 x 1000');
  frac.busy.onLoad({ worker_id: 0xab, active_prefill_tokens: 101 });
  assert.equal(frac.busy.isBusy(model({}), worker), true);
});

test('a data-parallel worker is busy only when all its ranks are', () => {
  const d = detector({ ...NO_THRESHOLDS, active_decode_blocks_threshold: 0.5 });
  const dp = model({ data_parallel_size: 2 });
  d.busy.onLoad({ worker_id: 0xab, dp_rank: 0, kv_used_blocks: 90 });
  assert.equal(d.busy.isBusy(dp, worker), false);
  d.busy.onLoad({ worker_id: 0xab, dp_rank: 1, kv_used_blocks: 90 });
  assert.equal(d.busy.isBusy(dp, worker), true);
});

test("the router's own count counts; stale reports do not; overloaded lasts until a report", () => {
  let routerBlocks = 0;
  const d = detector(
    { ...NO_THRESHOLDS, active_decode_blocks_threshold: 0.5 },
    () => ({ activeDecodeBlocks: routerBlocks, activePrefillTokens: 0 }),
  );
  routerBlocks = 60;
  assert.equal(d.busy.isBusy(model({}), worker), true, 'from the router alone');
  routerBlocks = 0;
  d.busy.onLoad({ worker_id: 0xab, kv_used_blocks: 90 });
  assert.equal(d.busy.isBusy(model({}), worker), true);
  d.advance(31_000);
  assert.equal(d.busy.isBusy(model({}), worker), false, 'a 31 s old report is ignored');

  const o = detector();
  o.busy.markOverloaded('ab');
  assert.equal(o.busy.isBusy(model({}), worker), true);
  o.busy.onLoad({ worker_id: 0xab, kv_used_blocks: 0 });
  assert.equal(o.busy.isBusy(model({}), worker), false);
});

test('thresholds set at run time apply at once', () => {
  const d = detector();
  d.busy.onLoad({ worker_id: 0xab, kv_used_blocks: 90 });
  assert.equal(d.busy.isBusy(model({}), worker), false);
  d.store.set('m', { active_decode_blocks_threshold: 0.8 });
  assert.equal(d.store.any(), true);
  assert.equal(d.busy.isBusy(model({}), worker), true);
});

test('prompts sent since the last report count as prefill load until the next report', () => {
  const d = detector({ ...NO_THRESHOLDS, active_prefill_tokens_threshold: 1000 });
  d.busy.onLoad({ worker_id: 0xab, active_prefill_tokens: 0 });
  d.busy.recordSent('ab', 600);
  assert.equal(d.busy.isBusy(model({}), worker), false);
  d.busy.recordSent('ab', 600);
  assert.equal(d.busy.isBusy(model({}), worker), true, '1200 tokens sent since the report');
  d.busy.onLoad({ worker_id: 0xab, active_prefill_tokens: 0 });
  assert.equal(d.busy.isBusy(model({}), worker), false, 'the report includes them');

  const kv = detector(
    { ...NO_THRESHOLDS, active_prefill_tokens_threshold: 1000 },
    () => ({ activeDecodeBlocks: 0, activePrefillTokens: 0 }),
  );
  kv.busy.recordSent('ab', 5000);
  assert.equal(kv.busy.isBusy(model({}), worker), false, 'the KV router counts its own');
});
