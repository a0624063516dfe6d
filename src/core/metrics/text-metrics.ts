/**
 * A `MetricFactory` that needs nothing but JavaScript: counters, gauges and histograms kept in
 * maps and rendered in the Prometheus text exposition format (0.0.4). The edge profile uses it,
 * since prom-client reaches for Node's `cluster`, `perf_hooks` and `v8` modules. Same output
 * shape as prom-client for what the frontend registers: families without labels show 0 before
 * their first update, histogram buckets are cumulative with `+Inf`, `_sum` and `_count`.
 */
import type { Counter, Gauge, Histogram, Labels, MetricFactory, MetricSpec } from './metrics.ts';

const escapeHelp = (text: string) => text.replace(/\\/g, '\\\\').replace(/\n/g, '\\n');
const escapeValue = (text: string) =>
  text.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"');

function labelText(names: readonly string[], labels: Labels, extra?: [string, string]): string {
  const parts = names.filter((n) => labels[n] !== undefined).map((n) =>
    `${n}="${escapeValue(labels[n] as string)}"`
  );
  if (extra) parts.push(`${extra[0]}="${escapeValue(extra[1])}"`);
  return parts.length > 0 ? `{${parts.join(',')}}` : '';
}

const keyOf = (names: readonly string[], labels: Labels) =>
  JSON.stringify(names.map((n) => labels[n] ?? null));

const formatNumber = (v: number) =>
  Number.isNaN(v) ? 'NaN' : v === Infinity ? '+Inf' : v === -Infinity ? '-Inf' : String(v);

interface Family {
  render(): string;
}

export function createTextMetricFactory(): MetricFactory {
  const families: Family[] = [];

  function scalar(spec: MetricSpec, type: 'counter' | 'gauge') {
    const values = new Map<string, { labels: Labels; value: number }>();
    if (spec.labels.length === 0) values.set(keyOf([], {}), { labels: {}, value: 0 });
    const slot = (labels: Labels) => {
      const key = keyOf(spec.labels, labels);
      let entry = values.get(key);
      if (!entry) values.set(key, entry = { labels: { ...labels }, value: 0 });
      return entry;
    };
    families.push({
      render: () =>
        [
          `# HELP ${spec.name} ${escapeHelp(spec.help)}`,
          `# TYPE ${spec.name} ${type}`,
          ...[...values.values()].map((e) =>
            `${spec.name}${labelText(spec.labels, e.labels)} ${formatNumber(e.value)}`
          ),
        ].join('\n'),
    });
    return slot;
  }

  return {
    contentType: 'text/plain; version=0.0.4; charset=utf-8',
    counter(spec): Counter {
      const slot = scalar(spec, 'counter');
      return {
        inc(labels = {}, value = 1) {
          if (value < 0) throw new Error(`Counter ${spec.name} cannot decrease`);
          slot(labels).value += value;
        },
      };
    },
    gauge(spec): Gauge {
      const slot = scalar(spec, 'gauge');
      return {
        set: (labels, value) => void (slot(labels).value = value),
        inc: (labels = {}, value = 1) => void (slot(labels).value += value),
        dec: (labels = {}, value = 1) => void (slot(labels).value -= value),
      };
    },
    histogram(spec): Histogram {
      const bounds = [...(spec.buckets ?? [])].sort((a, b) => a - b);
      const series = new Map<
        string,
        { labels: Labels; counts: number[]; sum: number; n: number }
      >();
      families.push({
        render() {
          const lines = [
            `# HELP ${spec.name} ${escapeHelp(spec.help)}`,
            `# TYPE ${spec.name} histogram`,
          ];
          for (const s of series.values()) {
            let cumulative = 0;
            bounds.forEach((bound, i) => {
              cumulative += s.counts[i] as number;
              lines.push(
                `${spec.name}_bucket${
                  labelText(spec.labels, s.labels, ['le', String(bound)])
                } ${cumulative}`,
              );
            });
            lines.push(
              `${spec.name}_bucket${labelText(spec.labels, s.labels, ['le', '+Inf'])} ${s.n}`,
              `${spec.name}_sum${labelText(spec.labels, s.labels)} ${formatNumber(s.sum)}`,
              `${spec.name}_count${labelText(spec.labels, s.labels)} ${s.n}`,
            );
          }
          return lines.join('\n');
        },
      });
      return {
        observe(labels, value) {
          const key = keyOf(spec.labels, labels);
          let s = series.get(key);
          if (!s) {
            series.set(
              key,
              s = { labels: { ...labels }, counts: bounds.map(() => 0), sum: 0, n: 0 },
            );
          }
          const i = bounds.findIndex((b) => value <= b);
          if (i >= 0) s.counts[i] = (s.counts[i] as number) + 1;
          s.sum += value;
          s.n++;
        },
      };
    },
    render: () => Promise.resolve(`${families.map((f) => f.render()).join('\n\n')}\n`),
  };
}
