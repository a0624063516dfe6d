/**
 * The edge profile's cost: streams/s and TTFT of streamed chat completions through the
 * permission-restricted Deno edge entry (`deno serve --allow-net --allow-env deploy/deno/main.ts`)
 * and through workerd running the Workers bundle, next to the CLI profile (`main.ts`) on Deno and
 * on Node, all against the same simulated workers (HTTP request plane, etcd discovery).
 * Results go in `docs/benchmarks.md` ("Edge profile (bench/edge.ts)").
 *
 *   node --import tsx bench/edge.ts [--concurrency 1,32] [--duration 4] [--tokens 50]
 *
 * Each cell is a closed loop of N concurrent streams (each sends, reads to `[DONE]`, sends again)
 * from this process's `fetch` for `--duration` seconds after a 1 s warm-up; TTFT is the time to
 * the first SSE event with content. "Added TTFT" is a profile's p50 minus the p50 of the CLI
 * profile on the same runtime (Deno for both edge hosts: workerd is V8 too, but not Deno).
 */
import { finishBench } from './_provenance.ts';
import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import process from 'node:process';
import { buildEdgeBundle } from '../scripts/build-edge.ts';
import {
  DENO_BIN,
  type EdgeHost,
  readWranglerConfig,
  serveModelFiles,
  startDenoEdge,
  startWorkerdEdge,
  trackHost,
} from '../tests/helpers/edge.ts';
import { freePort, ROOT, startMocker } from '../tests/helpers/process.ts';
import { waitFor } from '../tests/helpers/wait.ts';

const args = process.argv.slice(2);
const opt = (name: string, fallback: string) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] ?? fallback : fallback;
};
const CONCURRENCY = opt('concurrency', '1,32').split(',').map(Number);
const DURATION_MS = Number(opt('duration', '4')) * 1000;
const TOKENS = Number(opt('tokens', '50'));
const ETCD = process.env.ETCD_ENDPOINTS?.split(',')[0] ?? 'http://127.0.0.1:2379';
const ns = `edgebench${Math.random().toString(16).slice(2, 8)}`;

interface Cell {
  streams: number;
  streamsPerSec: number;
  ttft: number[];
  errors: number;
}

async function oneStream(url: string): Promise<number> {
  const start = performance.now();
  const response = await fetch(`${url}/v1/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({
      model: 'edge-model',
      messages: [{ role: 'user', content: 'Benchmark the edge' }],
      max_tokens: TOKENS,
      stream: true,
    }),
  });
  if (!response.ok || !response.body) throw new Error(`HTTP ${response.status}`);
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let ttft = -1;
  let text = '';
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    text += value;
    if (ttft < 0 && /"content":"[^"]/.test(text)) ttft = performance.now() - start;
  }
  if (!text.includes('[DONE]')) throw new Error('stream ended without [DONE]');
  return ttft;
}

async function cell(url: string, concurrency: number): Promise<Cell> {
  const warmupEnd = performance.now() + 1000;
  const end = warmupEnd + DURATION_MS;
  const result: Cell = { streams: 0, streamsPerSec: 0, ttft: [], errors: 0 };
  await Promise.all(Array.from({ length: concurrency }, async () => {
    while (performance.now() < end) {
      const started = performance.now();
      try {
        const ttft = await oneStream(url);
        if (started >= warmupEnd && performance.now() <= end) {
          result.streams++;
          result.ttft.push(ttft);
        }
      } catch {
        result.errors++;
      }
    }
  }));
  result.streamsPerSec = result.streams / (DURATION_MS / 1000);
  result.ttft.sort((a, b) => a - b);
  return result;
}

const pct = (sorted: number[], p: number) =>
  sorted.length ? sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))]! : NaN;

async function startCli(runtime: 'deno' | 'node'): Promise<EdgeHost> {
  const port = await freePort();
  const flags = [
    'main.ts',
    '--http-host',
    '127.0.0.1',
    '--http-port',
    String(port),
    '--discovery-backend',
    'etcd',
    '--namespace',
    ns,
  ];
  const child = runtime === 'deno'
    ? spawn(DENO_BIN, ['run', '-A', ...flags], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] })
    : spawn(process.execPath, ['--import', 'tsx', '--experimental-websocket', ...flags], {
      cwd: ROOT,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
  const host = trackHost(child, `http://127.0.0.1:${port}`);
  await waitFor(async () => {
    try {
      return (await fetch(`${host.url}/live`)).ok;
    } catch {
      return false;
    }
  }, { timeoutMs: 60_000, intervalMs: 100, what: `${runtime} CLI` });
  return host;
}

async function main() {
  const dir = await mkdtemp(join(tmpdir(), 'switchboard-edge-bench-'));
  const [mocker, files, wrangler] = await Promise.all([
    startMocker([
      '--discovery-backend',
      'etcd',
      '--request-plane',
      'http',
      '--endpoint',
      `dyn://${ns}.backend.generate`,
      '--model-name',
      'edge-model',
      '--speedup-ratio',
      '1000',
      '--max-num-seqs',
      '1024',
    ], { env: { ETCD_ENDPOINTS: ETCD } }),
    serveModelFiles('tests/fixtures/model'),
    readWranglerConfig(),
  ]);
  await buildEdgeBundle(dir);
  const vars = {
    ETCD_ENDPOINTS: ETCD,
    DYN_MODEL_PATH: files.url,
    DYN_NAMESPACE: ns,
    DYN_ROUTER_MODE: 'round-robin',
    SWITCHBOARD_LOG_LEVEL: 'warn',
  };
  const profiles: Array<[string, () => Promise<EdgeHost>]> = [
    ['Deno CLI (`deno run -A main.ts`)', () => startCli('deno')],
    ['Deno edge (`deno serve --allow-net --allow-env`)', () => startDenoEdge(vars)],
    [
      'workerd edge (Workers bundle)',
      () => startWorkerdEdge(dir, { ...wrangler.vars, ...vars }, wrangler),
    ],
    ['Node CLI (`node --import tsx main.ts`)', () => startCli('node')],
  ];
  const rows: string[] = [];
  const baseline = new Map<number, number>();
  try {
    for (const [name, start] of profiles) {
      const host = await start();
      try {
        for (let i = 0; i < 3; i++) await oneStream(host.url); // tokenizer load, JIT
        for (const n of CONCURRENCY) {
          const r = await cell(host.url, n);
          const p50 = pct(r.ttft, 0.5);
          if (name.startsWith('Deno CLI')) baseline.set(n, p50);
          const base = baseline.get(n);
          const added = base === undefined || name.startsWith('Node')
            ? ''
            : (p50 - base).toFixed(2);
          rows.push(
            `| ${name} | ${n} | ${r.streamsPerSec.toFixed(0)} | ${p50.toFixed(2)} | ${
              pct(r.ttft, 0.99).toFixed(2)
            } | ${added} | ${r.errors} |`,
          );
          console.error(rows.at(-1));
        }
      } finally {
        await host.stop();
      }
    }
  } finally {
    await Promise.allSettled([mocker.stop(), files.close()]);
    await rm(dir, { recursive: true, force: true });
  }
  console.log(
    [
      `${TOKENS}-token streams, ${DURATION_MS / 1000} s windows after 1 s warm-up, one mocker ` +
      'worker at `--speedup-ratio 1000` on the HTTP request plane, etcd discovery, round-robin.',
      '',
      '| profile | streams in flight | streams/s | TTFT p50 ms | TTFT p99 ms | added TTFT p50 ms (vs Deno CLI) | errors |',
      '|---|---:|---:|---:|---:|---:|---:|',
      ...rows,
    ].join('\n'),
  );
  finishBench('edge', { tokens: TOKENS, durationMs: DURATION_MS, rows });
}

await main();
