import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createPromMetricFactory } from './prom-metrics.ts';

const spec = { name: 'itl', help: 'h', labels: ['model'], buckets: [0.01, 0.1, 1] };

test('a bound histogram exposes exactly what observe() with the labels would', async () => {
  const plain = createPromMetricFactory();
  const bound = createPromMetricFactory();
  const a = plain.histogram(spec);
  const b = bound.histogram(spec);
  const values = [0.005, 0.01, 0.05, 0.5, 2, 0, 0.1, 1];
  // Two requests of one model (the second binds to the entry the first created), one of another.
  for (const model of ['m', 'm', 'n']) {
    const handle = b.bind!({ model });
    for (const v of values) {
      a.observe({ model }, v);
      handle.observe(v);
    }
  }
  assert.equal(await bound.render(), await plain.render());
  // After a reset, bound handles go through observe() again.
  const handle = b.bind!({ model: 'm' });
  handle.observe(0.5);
  bound.registry.resetMetrics();
  handle.observe(0.5);
  a.observe({ model: 'm' }, 0.5);
  plain.registry.resetMetrics();
  a.observe({ model: 'm' }, 0.5);
  assert.equal(await bound.render(), await plain.render());
});

test('a bound histogram refuses a non-finite value as observe() does', () => {
  const handle = createPromMetricFactory().histogram(spec).bind!({ model: 'm' });
  handle.observe(1);
  assert.throws(() => handle.observe(Number.NaN), TypeError);
});
