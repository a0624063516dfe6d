import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createBusyThresholdStore, NO_THRESHOLDS } from './busy-thresholds.ts';
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
  const store = createBusyThresholdStore(thresholds);
  const busy = createBusyDetector({ thresholds: store, routerLoad });
  return { busy, store };
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

test("the router's own count counts; a busy report stands until the next; overloaded lasts until a report", () => {
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
  d.busy.onLoad({ worker_id: 0xab, kv_used_blocks: 10 });
  assert.equal(d.busy.isBusy(model({}), worker), false, 'until the worker reports otherwise');

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

test("this frontend's own requests count until they end: a report that predates them cannot clear them", () => {
  const d = detector({ ...NO_THRESHOLDS, active_decode_blocks_threshold: 0.015 });
  // 100 blocks in all: two requests of one block each make 2/100 > 0.015.
  const a = d.busy.recordSent('ab', 10, 1);
  assert.equal(d.busy.isBusy(model({}), worker), false, '1/100');
  const b = d.busy.recordSent('ab', 10, 1);
  assert.equal(d.busy.isBusy(model({}), worker), true, '2/100');
  // A report the worker published before it saw them says it is idle: it lags, ours does not.
  d.busy.onLoad({ worker_id: 0xab, kv_used_blocks: 0, active_prefill_tokens: 0 });
  assert.equal(d.busy.isBusy(model({}), worker), true);
  b.firstToken();
  assert.equal(d.busy.isBusy(model({}), worker), true, 'decoding still holds its blocks');
  b.done();
  b.done();
  assert.equal(d.busy.isBusy(model({}), worker), false, 'one request left, counted once');
  a.done();
  // A report above ours wins: it sees other frontends' requests too.
  d.busy.onLoad({ worker_id: 0xab, kv_used_blocks: 5 });
  assert.equal(d.busy.isBusy(model({}), worker), true);
});

test('prompts sent count as prefill load until their first token', () => {
  const d = detector({ ...NO_THRESHOLDS, active_prefill_tokens_threshold: 1000 });
  d.busy.onLoad({ worker_id: 0xab, active_prefill_tokens: 0 });
  const a = d.busy.recordSent('ab', 600, 0);
  assert.equal(d.busy.isBusy(model({}), worker), false);
  const b = d.busy.recordSent('ab', 600, 0);
  assert.equal(d.busy.isBusy(model({}), worker), true, '1200 tokens waiting for prefill');
  a.firstToken();
  assert.equal(d.busy.isBusy(model({}), worker), false, '600 left');
  b.done();
  a.done();

  const kv = detector(
    { ...NO_THRESHOLDS, active_prefill_tokens_threshold: 1000 },
    () => ({ activeDecodeBlocks: 0, activePrefillTokens: 0 }),
  );
  kv.busy.recordSent('ab', 5000, 100);
  assert.equal(kv.busy.isBusy(model({}), worker), false, 'the KV router counts its own');
});

test("a data-parallel worker's own count is spread over its ranks", () => {
  const d = detector({ ...NO_THRESHOLDS, active_decode_blocks_threshold: 0.015 });
  const dp = model({ data_parallel_size: 2 });
  d.busy.recordSent('ab', 10, 2);
  assert.equal(d.busy.isBusy(dp, worker), false, 'one block per rank: 1/100');
  d.busy.recordSent('ab', 10, 2);
  assert.equal(d.busy.isBusy(dp, worker), true, 'two per rank');
});
