import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  BUCKETS,
  createFrontendMetrics,
  generateLogBuckets,
  type MetricFactory,
} from './metrics.ts';

test('generateLogBuckets() reproduces the reference bucket tables', () => {
  assert.deepEqual(generateLogBuckets(1, 512, 10), [0, 2, 4, 8, 16, 32, 64, 130, 260, 510]);
  assert.deepEqual(BUCKETS.outputSequence, [0, 100, 210, 430, 880, 1800, 3700, 7600, 16000, 32000]);
  assert.deepEqual(BUCKETS.itl, [
    0,
    0.0019,
    0.0035,
    0.0067,
    0.013,
    0.024,
    0.045,
    0.084,
    0.16,
    0.3,
    0.56,
    1.1,
    2,
  ]);
  assert.deepEqual(BUCKETS.embeddingLatency, [
    0,
    0.002,
    0.0041,
    0.0084,
    0.017,
    0.035,
    0.07,
    0.14,
    0.29,
    0.59,
    1.2,
    2.4,
    4.9,
    10,
  ]);
});

test('createFrontendMetrics() registers every family under the prefix', () => {
  const names: string[] = [];
  const record = (kind: string) => (spec: { name: string }) => {
    names.push(`${kind}:${spec.name}`);
    return { inc() {}, set() {}, dec() {}, observe() {} };
  };
  const factory: MetricFactory = {
    counter: record('counter'),
    gauge: record('gauge'),
    histogram: record('histogram'),
    render: () => Promise.resolve(''),
    contentType: 'text/plain',
  };
  createFrontendMetrics(factory, 'p');
  for (
    const expected of [
      'counter:p_requests_total',
      'gauge:p_inflight_requests',
      'gauge:p_queued_requests',
      'histogram:p_time_to_first_token_seconds',
      'histogram:p_inter_token_latency_seconds',
      'histogram:p_request_duration_seconds',
      'histogram:p_input_sequence_tokens',
      'histogram:p_output_sequence_tokens',
      'counter:p_model_cancellation_total',
      'counter:p_model_rejection_total',
      'gauge:p_model_context_length',
      'counter:p_http_requests_total',
    ]
  ) assert.ok(names.includes(expected), `missing ${expected}`);
});
