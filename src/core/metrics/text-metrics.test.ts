import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createTextMetricFactory } from './text-metrics.ts';

test('createTextMetricFactory() renders counters, gauges and cumulative histograms', async () => {
  const f = createTextMetricFactory();
  const c = f.counter({ name: 'x_total', help: 'X', labels: ['model'] });
  const g = f.gauge({ name: 'g', help: 'G', labels: [] });
  const h = f.histogram({ name: 'h', help: 'H', labels: ['m'], buckets: [1, 5] });
  c.inc({ model: 'a"b' }, 2);
  g.set({}, 3);
  g.dec({}, 1);
  h.observe({ m: 'x' }, 0.5);
  h.observe({ m: 'x' }, 3);
  h.observe({ m: 'x' }, 9);
  const text = await f.render();
  assert.match(text, /^# TYPE x_total counter$/m);
  assert.match(text, /^x_total\{model="a\\"b"\} 2$/m);
  assert.match(text, /^g 2$/m);
  assert.match(text, /^h_bucket\{m="x",le="1"\} 1$/m);
  assert.match(text, /^h_bucket\{m="x",le="5"\} 2$/m);
  assert.match(text, /^h_bucket\{m="x",le="\+Inf"\} 3$/m);
  assert.match(text, /^h_sum\{m="x"\} 12.5$/m);
  assert.match(text, /^h_count\{m="x"\} 3$/m);
});
