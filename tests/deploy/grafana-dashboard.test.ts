/**
 * deploy/grafana/switchboard.json: importable as is (a datasource variable, no `__inputs` to
 * fill, unique panel ids, every panel placed), every query valid PromQL (Prometheus's own
 * `promtool check rules` parses them, Grafana's variables substituted), and every metric a query
 * names is one the frontend exports (its `/metrics`, with the default prefix and with another).
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { testApp } from '../helpers/app.ts';
import { ROOT } from '../helpers/process.ts';

interface Target {
  expr: string;
  refId: string;
  datasource?: { uid?: string };
}
interface Panel {
  id: number;
  type: string;
  title: string;
  gridPos: { h: number; w: number; x: number; y: number };
  datasource?: { type?: string; uid?: string };
  targets?: Target[];
}
interface Dashboard {
  uid: string;
  title: string;
  schemaVersion: number;
  panels: Panel[];
  templating: { list: { name: string; type: string; query: unknown }[] };
  __inputs?: unknown;
}

const dashboard = JSON.parse(
  await readFile(join(ROOT, 'deploy/grafana/switchboard.json'), 'utf8'),
) as Dashboard;
const queries = dashboard.panels.flatMap((p) => (p.targets ?? []).map((t) => ({ panel: p, ...t })));

/** An expression as Prometheus sees it once Grafana filled in its variables. */
const resolved = (expr: string, prefix = 'dynamo_frontend') =>
  expr.replaceAll('${prefix}', prefix).replaceAll('$__rate_interval', '1m').replaceAll(
    '$model',
    '.*',
  );

/**
 * The metric names an expression reads: what is left once label lists (`by (...)`, `on(...)`),
 * selectors `{...}`, ranges `[...]` and strings are removed, minus function names (followed by
 * `(`), keywords and numbers.
 */
function metricsOf(expr: string): string[] {
  const stripped = expr
    .replace(/"(?:[^"\\]|\\.)*"/g, '""')
    .replace(/\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, ' ')
    .replace(/\{[^}]*\}/g, ' ')
    .replace(/\[[^\]]*\]/g, ' ');
  const keywords = new Set([
    'by',
    'on',
    'without',
    'group_left',
    'group_right',
    'ignoring',
    'offset',
    'bool',
    'and',
    'or',
    'unless',
  ]);
  const names = new Set<string>();
  for (const m of stripped.matchAll(/([a-zA-Z_:][a-zA-Z0-9_:]*)(\s*\()?/g)) {
    const [, name, call] = m as unknown as [string, string, string | undefined];
    if (call || keywords.has(name)) continue;
    names.add(name);
  }
  return [...names];
}

/** Families in an exposition: `# TYPE name kind`, histograms also as _bucket/_sum/_count. */
function exported(text: string): Set<string> {
  const out = new Set<string>();
  for (const m of text.matchAll(/^# TYPE (\S+) (\S+)$/gm)) {
    const [, name, kind] = m as unknown as [string, string, string];
    out.add(name);
    if (kind === 'histogram') { for (const s of ['_bucket', '_sum', '_count']) out.add(name + s); }
  }
  return out;
}

function promtool(args: string[]): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn('promtool', args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (d: Buffer) => output += d.toString());
    child.stderr.on('data', (d: Buffer) => output += d.toString());
    child.once('error', reject);
    child.once('close', (code) => resolve({ code, output }));
  });
}

describe('Grafana dashboard deploy/grafana/switchboard.json', () => {
  test('imports as is: a Prometheus datasource variable, unique ids, every panel placed', () => {
    assert.equal(dashboard.uid, 'switchboard-frontend');
    assert.ok(dashboard.schemaVersion >= 36);
    assert.equal(dashboard.__inputs, undefined, 'nothing to fill in at import');
    const variables = Object.fromEntries(dashboard.templating.list.map((v) => [v.name, v]));
    assert.equal(variables.datasource?.type, 'datasource');
    assert.equal(variables.datasource?.query, 'prometheus');
    const ids = dashboard.panels.map((p) => p.id);
    assert.equal(new Set(ids).size, ids.length);
    for (const panel of dashboard.panels) {
      const { w, h, x, y } = panel.gridPos;
      assert.ok(w > 0 && h > 0 && x >= 0 && y >= 0 && x + w <= 24, panel.title);
      if (panel.type === 'row') continue;
      assert.equal(panel.datasource?.uid, '${datasource}', panel.title);
      assert.ok((panel.targets ?? []).length > 0, panel.title);
      const refIds = (panel.targets ?? []).map((t) => t.refId);
      assert.equal(new Set(refIds).size, refIds.length, panel.title);
    }
  });

  test('covers what an operator charts', () => {
    const titles = dashboard.panels.map((p) => p.title.toLowerCase()).join('\n');
    for (
      const topic of [
        'request rate',
        'errors by type',
        'time to first token',
        'inter-token latency',
        'end-to-end',
        'in flight and queued',
        'load per worker',
        'kv cache usage',
        'migrations',
        'rejections',
        'kv hit rate',
      ]
    ) {
      assert.ok(titles.includes(topic), topic);
    }
    const exprs = queries.map((q) => q.expr).join('\n');
    for (const quantile of ['0.5', '0.9', '0.99']) {
      assert.ok(exprs.includes(`histogram_quantile(${quantile}`), quantile);
    }
  });

  test('every query is valid PromQL (promtool check rules)', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'switchboard-grafana-'));
    try {
      const rules = queries.map((q, i) =>
        `      - record: switchboard:panel${q.panel.id}_${q.refId}:${i}\n` +
        `        expr: ${JSON.stringify(resolved(q.expr))}\n`
      ).join('');
      const file = join(dir, 'rules.yml');
      await writeFile(file, `groups:\n  - name: dashboard\n    rules:\n${rules}`);
      const checked = await promtool(['check', 'rules', file]);
      assert.equal(checked.code, 0, checked.output);
      assert.match(checked.output, new RegExp(`SUCCESS: ${queries.length} rules found`));
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  test('every metric a query names is one the frontend exports, with the default prefix and another', async () => {
    for (const prefix of ['dynamo_frontend', 'edge']) {
      const { app } = testApp({ argv: ['--metrics-prefix', prefix] });
      const families = exported(await (await app.request('/metrics')).text());
      const missing: string[] = [];
      for (const q of queries) {
        const names = metricsOf(resolved(q.expr, prefix));
        assert.ok(names.length > 0, `${q.panel.title}: names no metric`);
        for (const name of names) {
          if (!families.has(name)) missing.push(`${q.panel.title}: ${name}`);
        }
      }
      assert.deepEqual(missing, [], `prefix ${prefix}`);
    }
  });

  test('the metric extraction sees names in selectors and ranges (so the check above can fail)', () => {
    assert.deepEqual(
      metricsOf(
        'sum by (le, my_label) (rate(a_b_bucket{x="1"}[1m])) / scalar(max(c_d)) + e_f + ' +
          'histogram_quantile(0.9, sum(rate(g_h[1m])))',
      ).sort(),
      ['a_b_bucket', 'c_d', 'e_f', 'g_h'],
    );
  });
});
