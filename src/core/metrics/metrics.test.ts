import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  BUCKETS,
  createFrontendMetrics,
  generateLogBuckets,
  metricBucketsFromEnv,
  type MetricFactory,
} from './metrics.ts';
import { createPromMetricFactory } from '../../adapters/prom-metrics.ts';

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

test('metricBucketsFromEnv() reads DYN_METRICS_<NAME>_{MIN,MAX,COUNT}, defaults filling the gaps', () => {
  assert.deepEqual(
    metricBucketsFromEnv({
      DYN_METRICS_TTFT_MIN: '0.01',
      DYN_METRICS_TTFT_MAX: '10',
      DYN_METRICS_TTFT_COUNT: '4',
      // Only COUNT: MIN and MAX keep the reference's (1, 512).
      DYN_METRICS_REQUEST_DURATION_COUNT: '3',
      // The deprecated spelling still counts.
      DYN_HISTOGRAM_METRICS_ITL_COUNT: '2',
    }),
    {
      ttft: [0, 0.1, 1, 10],
      requestDuration: [0, 23, 510],
      itl: [0, 2],
    },
  );
  assert.deepEqual(metricBucketsFromEnv({}), {});
});

test('metricBucketsFromEnv() keeps the defaults for an invalid triple and says which', () => {
  const invalid: string[] = [];
  const out = metricBucketsFromEnv({
    DYN_METRICS_TTFT_MIN: '5',
    DYN_METRICS_TTFT_MAX: '1',
    DYN_METRICS_ITL_COUNT: '600',
    DYN_METRICS_INPUT_SEQUENCE_MIN: 'abc',
  }, (name) => invalid.push(name));
  assert.deepEqual(out, {});
  assert.deepEqual(invalid.sort(), [
    'DYN_METRICS_INPUT_SEQUENCE',
    'DYN_METRICS_ITL',
    'DYN_METRICS_TTFT',
  ]);
});

test('createFrontendMetrics() uses replaced buckets, and the per-worker families keep the dynamo_frontend_ prefix', async () => {
  const factory = createPromMetricFactory();
  const metrics = createFrontendMetrics(factory, 'edge', { buckets: { ttft: [0, 0.5, 5] } });
  metrics.timeToFirstToken.observe({ model: 'm' }, 1);
  metrics.workerLastTimeToFirstToken.set(
    { worker_id: '1', dp_rank: 'none', worker_type: 'decode' },
    1,
  );
  metrics.cachedTokens.observe({ model: 'm' }, 1);
  const text = await metrics.render();
  assert.match(text, /edge_time_to_first_token_seconds_bucket\{le="0.5",model="m"\} 0/);
  assert.match(text, /edge_time_to_first_token_seconds_bucket\{le="5",model="m"\} 1/);
  assert.doesNotMatch(text, /edge_time_to_first_token_seconds_bucket\{le="0.0022"/);
  assert.match(
    text,
    /^dynamo_frontend_worker_last_time_to_first_token_seconds\{worker_id="1",dp_rank="none",worker_type="decode"\} 1$/m,
  );
  for (const family of ['stage_duration_seconds', 'kv_hit_rate', 'admission_rejection_total']) {
    assert.match(text, new RegExp(`# TYPE dynamo_frontend_${family} `));
  }
  assert.match(text, /# TYPE edge_model_migration_duration_seconds histogram/);
  assert.match(text, /# TYPE edge_images_per_request histogram/);
});
