/** The `MetricFactory` port made real with prom-client, one registry per frontend instance. */
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { Labels, MetricFactory, MetricSpec } from '../core/metrics/metrics.ts';

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
      return {
        observe: (labels: Labels, value: number) => metric.observe(labels, value),
        bind: (labels: Labels) => boundHistogram(metric, labels),
      };
    },
  };
}

/** What prom-client 15 keeps per label set of a histogram (`hashMap[hash]`). */
interface HistogramEntry {
  labels: unknown;
  bucketValues: Record<number, number>;
  sum: number;
  count: number;
}

/**
 * A histogram bound to one label set: the first value goes through `observe()` (which validates
 * the labels and creates the entry), later ones update that entry in place, as `observe()` does
 * after hashing the labels. Should the entry be gone (a reset) or prom-client keep it elsewhere,
 * every value goes through `observe()`.
 */
function boundHistogram(metric: Histogram, labels: Labels): { observe(value: number): void } {
  const inner = metric as unknown as {
    hashMap?: Record<string, HistogramEntry>;
    upperBounds?: number[];
  };
  const bounds = inner.upperBounds;
  let map: Record<string, HistogramEntry> | undefined;
  let key: string | undefined;
  let entry: HistogramEntry | undefined;
  return {
    observe(value) {
      if (entry && inner.hashMap === map && map![key!] === entry && Number.isFinite(value)) {
        entry.sum += value;
        entry.count += 1;
        for (const bound of bounds!) {
          if (value <= bound) {
            if (Object.hasOwn(entry.bucketValues, bound)) entry.bucketValues[bound]! += 1;
            break;
          }
        }
        return;
      }
      metric.observe(labels, value);
      map = inner.hashMap;
      if (!map || !Array.isArray(bounds)) return;
      const names = Object.keys(labels);
      for (const [k, e] of Object.entries(map)) {
        const have = e.labels as Record<string, unknown> | undefined;
        if (!have || Object.keys(have).length !== names.length) continue;
        if (names.every((name) => have[name] === labels[name])) {
          key = k;
          entry = e;
          break;
        }
      }
    },
  };
}
