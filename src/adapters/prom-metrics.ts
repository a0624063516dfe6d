/** The `MetricFactory` port made real with prom-client, one registry per frontend instance. */
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { Labels, MetricFactory, MetricSpec } from '../core/metrics.ts';

export function createPromMetricFactory(): MetricFactory & { registry: Registry } {
  const registry = new Registry();
  const common = (spec: MetricSpec) => ({
    name: spec.name,
    help: spec.help,
    labelNames: [...spec.labels],
    registers: [registry],
  });
  return {
    registry,
    contentType: registry.contentType,
    render: () => registry.metrics(),
    counter(spec) {
      const metric = new Counter(common(spec));
      return { inc: (labels: Labels = {}, value = 1) => metric.inc(labels, value) };
    },
    gauge(spec) {
      const metric = new Gauge(common(spec));
      return {
        set: (labels: Labels, value: number) => metric.set(labels, value),
        inc: (labels: Labels = {}, value = 1) => metric.inc(labels, value),
        dec: (labels: Labels = {}, value = 1) => metric.dec(labels, value),
      };
    },
    histogram(spec) {
      const metric = new Histogram({ ...common(spec), buckets: [...(spec.buckets ?? [])] });
      return { observe: (labels: Labels, value: number) => metric.observe(labels, value) };
    },
  };
}
