/**
 * Trace replay (issue 12): requests of a Mooncake-format trace replayed through the real frontend
 * against mocker workers in their own process, as users deploy them: `switchboard mocker
 * --num-workers N` in one process, the frontend in another, file discovery, the tcp request
 * plane, KV events and load reports over NATS (a real nats-server) or ZMQ. Every router mode runs
 * on the same requests, each on a fresh pair of processes (cold caches).
 *
 * Each 512-token hash id of the trace becomes a fixed block of token ids (a deterministic function
 * of the id), cut at `input_length`; each request is a streaming `/v1/completions` with that token
 * prompt, `max_tokens = output_length`, `ignore_eos`, usage included, and `nvext.extra_fields:
 * ["worker_id"]` so the bench sees which worker served it. Open loop sends each request at its
 * timestamp divided by `--speedup`; `--concurrency C` replays closed loop instead (C requests in
 * flight, in trace order), as Dynamo's replay does.
 *
 * Per mode: TTFT mean/p50/p90/p99, ITL (per request mean) p50/p90, E2E p50/p90, the prefix-cache
 * hit rate from `usage.prompt_tokens_details.cached_tokens` next to the trace's own ceiling (one
 * unbounded cache that has seen every earlier request), requests per worker (min/max), the
 * frontend's peak queued requests, errors, the frontend's and the workers' CPU (seconds, from
 * /proc), and the KV event lag (published -> applied in the frontend) from the frontend's
 * `kv_event_lag_seconds` histogram.
 *
 *   npm run bench:replay -- [--trace FILE] [--start 0 --count 858] [--speedup 10]
 *     [--workers 8] [--mocker-speedup 5] [--event-plane nats|zmq|both] [--modes LIST]
 *     [--concurrency C] [--blocks N] [--runtime node|bun|deno] [--json-out FILE]
 *
 * Needs nats-server on 127.0.0.1:4222 for `--event-plane nats` (`bash scripts/services.sh start`).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import process from 'node:process';
import { fileURLToPath } from 'node:url';
import { finishBench } from './_provenance.ts';
import { parseArgs } from 'node:util';
import { freePort } from '../tests/helpers/process.ts';
import { ceiling, missAttribution, promptOf, readTraceWindow, type TraceRow } from './_trace.ts';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const MODEL_PATH = join(ROOT, 'tests/fixtures/model');
const MODEL = 'Qwen/Qwen3-0.6B';

/** The modes and the frontend flags each adds. */
const MODE_ARGS: Record<string, string[]> = {
  'round-robin': ['--router-mode', 'round-robin'],
  random: ['--router-mode', 'random'],
  kv: ['--router-mode', 'kv'],
  'kv-no-events': ['--router-mode', 'kv', '--no-router-kv-events'],
  'kv-w0': ['--router-mode', 'kv', '--router-kv-overlap-score-weight', '0'],
  'kv-no-active': ['--router-mode', 'kv', '--no-router-active-overlap'],
  'least-loaded': ['--router-mode', 'least-loaded'],
  'power-of-two': ['--router-mode', 'power-of-two'],
};
/** A mode's frontend flags; `kv-w2.5` is kv at overlap weight 2.5. */
function modeArgs(mode: string): string[] | undefined {
  const weight = /^kv-w(\d+(?:\.\d+)?)$/.exec(mode)?.[1];
  if (weight === undefined) return MODE_ARGS[mode];
  return ['--router-mode', 'kv', '--router-kv-overlap-score-weight', weight];
}

const DEFAULT_MODES = ['round-robin', 'random', 'kv', 'kv-no-events', 'kv-w0'];

const HELP = `Usage: npm run bench:replay -- [options]
  --trace FILE          Mooncake-format JSONL (default: ../shared/traces/mooncake-synthetic.jsonl)
  --start N             first request of the window (default: 0)
  --count N             requests in the window (default: 858)
  --speedup X           divide the trace's timestamps by X (open loop; default: 10)
  --concurrency C       closed loop with C requests in flight instead of timestamps
  --workers N           mocker workers, one process (default: 8)
  --mocker-speedup X    mocker --speedup-ratio (default: 5)
  --blocks N            mocker --num-gpu-blocks-override per worker (default: the mocker's, 16384)
  --block-size N        mocker --block-size (default: the mocker's, 64)
  --event-plane P       nats, zmq or both (default: nats)
  --modes LIST          ${Object.keys(MODE_ARGS).join(',')}, or kv-wN for kv at overlap
                        weight N (default: ${DEFAULT_MODES.join(',')})
  --router-args=FLAGS   extra frontend flags for every mode
  --runtime R           node, bun or deno for the frontend and the mocker (default: node)
  --max-output N        cap output_length (default: none)
  --context-length N    leave out requests longer than the model serves (default: 40960)
  --repeat N            run every plane and mode N times, in turn (one round of all, then the
                        next), and summarise each mode's TTFT mean against round-robin's of the
                        same round (default: 1)
  --contention N        N processes that spin on the CPU while each mode replays, the
                        condition the issue's slow NATS figures came from (default: 0)
  --profile DIR         Node only: write the frontend's and the mocker's CPU profiles (--cpu-prof) to DIR
  --json-out FILE       write the results with their provenance (commit, machine) as JSON
`;

function fail(message: string): never {
  process.stderr.write(`bench:replay: ${message}\n`);
  process.exit(1);
}

function options() {
  const { values } = parseArgs({
    options: {
      trace: { type: 'string', default: join(ROOT, '../shared/traces/mooncake-synthetic.jsonl') },
      start: { type: 'string', default: '0' },
      count: { type: 'string', default: '858' },
      speedup: { type: 'string', default: '10' },
      concurrency: { type: 'string' },
      workers: { type: 'string', default: '8' },
      'mocker-speedup': { type: 'string', default: '5' },
      blocks: { type: 'string' },
      'block-size': { type: 'string' },
      'event-plane': { type: 'string', default: 'nats' },
      modes: { type: 'string', default: DEFAULT_MODES.join(',') },
      'router-args': { type: 'string', default: '' },
      runtime: { type: 'string', default: 'node' },
      'max-output': { type: 'string' },
      'context-length': { type: 'string', default: '40960' },
      profile: { type: 'string' },
      contention: { type: 'string', default: '0' },
      repeat: { type: 'string', default: '1' },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (values.help) {
    process.stdout.write(HELP);
    process.exit(0);
  }
  const num = (name: string, text: string | undefined, min: number) => {
    if (text === undefined) return undefined;
    const n = Number(text);
    if (!(n >= min)) fail(`--${name} must be a number >= ${min}, got "${text}"`);
    return n;
  };
  const modes = values.modes.split(',').map((s) => s.trim()).filter(Boolean);
  for (const m of modes) if (!modeArgs(m)) fail(`unknown mode "${m}"`);
  const planes = values['event-plane'] === 'both' ? ['nats', 'zmq'] : [values['event-plane']];
  for (const p of planes) if (p !== 'nats' && p !== 'zmq') fail(`unknown event plane "${p}"`);
  if (!['node', 'bun', 'deno'].includes(values.runtime)) {
    fail(`unknown runtime "${values.runtime}"`);
  }
  return {
    trace: values.trace,
    start: num('start', values.start, 0)!,
    count: num('count', values.count, 1)!,
    speedup: num('speedup', values.speedup, 0.001)!,
    concurrency: num('concurrency', values.concurrency, 1),
    workers: num('workers', values.workers, 1)!,
    mockerSpeedup: num('mocker-speedup', values['mocker-speedup'], 0.001)!,
    blocks: num('blocks', values.blocks, 1),
    blockSize: num('block-size', values['block-size'], 1),
    planes,
    modes,
    routerArgs: values['router-args'].split(/\s+/).filter(Boolean),
    runtime: values.runtime as 'node' | 'bun' | 'deno',
    maxOutput: num('max-output', values['max-output'], 1),
    contextLength: num('context-length', values['context-length'], 1)!,
    profile: values.profile,
    contention: num('contention', values.contention, 0)!,
    repeat: num('repeat', values.repeat, 1)!,
  };
}
type Options = ReturnType<typeof options>;

// ------------------------------------------------------------------------------------------
// The trace
// ------------------------------------------------------------------------------------------

function readTrace(o: Options): TraceRow[] {
  try {
    return readTraceWindow(o);
  } catch (error) {
    fail((error as Error).message);
  }
}

// ------------------------------------------------------------------------------------------
// Processes
// ------------------------------------------------------------------------------------------

function command(
  runtime: Options['runtime'],
  args: string[],
  profile?: string,
): [string, string[]] {
  switch (runtime) {
    case 'node':
      return [process.execPath, [
        ...(profile ? ['--cpu-prof', '--cpu-prof-dir', profile] : []),
        '--import',
        'tsx',
        '--experimental-websocket',
        'src/main.ts',
        ...args,
      ]];
    case 'bun':
      return [join(ROOT, 'node_modules/.bin/bun'), ['src/main.ts', ...args]];
    case 'deno':
      return [join(ROOT, 'node_modules/.bin/deno'), ['run', '-A', 'main.ts', ...args]];
  }
}

interface Proc {
  child: ChildProcess;
  log: string[];
  exited: Promise<void>;
}

function start(
  runtime: Options['runtime'],
  args: string[],
  env: Record<string, string>,
  profile?: string,
): Proc {
  const [cmd, argv] = command(runtime, args, profile);
  const child = spawn(cmd, argv, {
    cwd: ROOT,
    env: { ...process.env, ...env, DYN_LOG: 'warn' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const log: string[] = [];
  const keep = (d: Buffer) => {
    log.push(d.toString());
    if (log.length > 200) log.shift();
  };
  child.stdout!.on('data', keep);
  child.stderr!.on('data', keep);
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  return { child, log, exited };
}

async function stop(p: Proc): Promise<void> {
  if (p.child.exitCode !== null || p.child.signalCode !== null) return;
  p.child.kill('SIGTERM');
  const timer = setTimeout(() => p.child.kill('SIGKILL'), 5000);
  await p.exited;
  clearTimeout(timer);
}

/**
 * `--contention N`: N processes that spin on the CPU, unpinned, at the default priority: other
 * tenants of the machine (the issue's figures came from a machine shared with test suites).
 */
function startContention(n: number): ChildProcess[] {
  return Array.from(
    { length: n },
    () => spawn(process.execPath, ['-e', 'for (;;) {}'], { stdio: 'ignore' }),
  );
}

/** CPU seconds (user + system) a process has used, from /proc (Linux). */
function cpuSeconds(pid: number | undefined): number {
  if (pid === undefined) return NaN;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) / 100;
  } catch {
    return NaN;
  }
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function waitReady(base: string, workers: number, procs: Proc[]): Promise<void> {
  const deadline = Date.now() + 60_000;
  while (Date.now() < deadline) {
    for (const p of procs) {
      if (p.child.exitCode !== null) fail(`a process exited during start-up:\n${p.log.join('')}`);
    }
    try {
      const health = await (await fetch(`${base}/health`)).json() as {
        instances?: { endpoint?: string }[];
      };
      const models = await (await fetch(`${base}/v1/models`)).json() as { data?: unknown[] };
      const generate = health.instances?.filter((i) => i.endpoint === 'generate').length ?? 0;
      if ((models.data?.length ?? 0) > 0 && generate >= workers) return;
    } catch {
      // not up yet
    }
    await sleep(200);
  }
  fail(
    `the frontend did not see ${workers} workers within 60 s:\n${
      procs.map((p) => p.log.join('')).join('\n')
    }`,
  );
}

// ------------------------------------------------------------------------------------------
// One request
// ------------------------------------------------------------------------------------------

interface Outcome {
  ok: boolean;
  status: number;
  error?: string;
  ttftMs: number;
  e2eMs: number;
  itlMs: number;
  tokens: number;
  promptTokens: number;
  cachedTokens: number;
  worker?: string;
  /** When the request was sent, on the bench's clock. */
  sentAtMs: number;
}

async function send(base: string, row: TraceRow): Promise<Outcome> {
  const t0 = performance.now();
  const body = JSON.stringify({
    model: MODEL,
    prompt: promptOf(row),
    max_tokens: row.output_length,
    ignore_eos: true,
    stream: true,
    stream_options: { include_usage: true },
    nvext: { extra_fields: ['worker_id'] },
  });
  const out: Outcome = {
    ok: false,
    status: 0,
    ttftMs: NaN,
    e2eMs: NaN,
    itlMs: NaN,
    tokens: 0,
    promptTokens: 0,
    cachedTokens: 0,
    sentAtMs: t0,
  };
  try {
    const response = await fetch(`${base}/v1/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body,
    });
    out.status = response.status;
    if (!response.ok || !response.body) {
      out.error = (await response.text()).slice(0, 300);
      return out;
    }
    const decoder = new TextDecoder();
    let buffer = '';
    let first = NaN;
    let last = NaN;
    let chunks = 0;
    for await (const bytes of response.body as unknown as AsyncIterable<Uint8Array>) {
      buffer += decoder.decode(bytes, { stream: true });
      let at;
      while ((at = buffer.indexOf('\n\n')) >= 0) {
        const event = buffer.slice(0, at);
        buffer = buffer.slice(at + 2);
        const data = event.split('\n').find((l) => l.startsWith('data:'))?.slice(5).trim();
        if (!data || data === '[DONE]') continue;
        const chunk = JSON.parse(data) as {
          choices?: { text?: string }[];
          usage?: { prompt_tokens?: number; prompt_tokens_details?: { cached_tokens?: number } };
          nvext?: { worker_id?: { decode_worker_id?: unknown; prefill_worker_id?: unknown } };
          error?: { message?: string };
        };
        if (chunk.error) {
          out.error = chunk.error.message ?? 'error event';
          return out;
        }
        if (chunk.choices?.length) {
          const now = performance.now();
          if (Number.isNaN(first)) first = now;
          last = now;
          chunks++;
        }
        if (chunk.usage) {
          out.promptTokens = chunk.usage.prompt_tokens ?? 0;
          out.cachedTokens = chunk.usage.prompt_tokens_details?.cached_tokens ?? 0;
        }
        const w = chunk.nvext?.worker_id;
        if (w) out.worker = String(w.decode_worker_id ?? w.prefill_worker_id);
      }
    }
    out.ttftMs = first - t0;
    out.e2eMs = performance.now() - t0;
    out.itlMs = chunks > 1 ? (last - first) / (chunks - 1) : NaN;
    out.tokens = chunks;
    out.ok = chunks > 0;
    if (!out.ok) out.error = 'no chunk';
  } catch (error) {
    out.error = (error as Error).message;
  }
  return out;
}

// ------------------------------------------------------------------------------------------
// Metrics
// ------------------------------------------------------------------------------------------

/** Sums of a Prometheus histogram's buckets, by `le`, over every label set. */
function histogram(text: string, name: string): { le: number; count: number }[] {
  const sums = new Map<number, number>();
  const re = new RegExp(`^${name}_bucket\\{([^}]*)\\} (\\S+)$`, 'gm');
  for (const m of text.matchAll(re)) {
    const le = /le="([^"]+)"/.exec(m[1]!)?.[1];
    if (le === undefined) continue;
    const key = le === '+Inf' ? Infinity : Number(le);
    sums.set(key, (sums.get(key) ?? 0) + Number(m[2]));
  }
  return [...sums].map(([le, count]) => ({ le, count })).sort((a, b) => a.le - b.le);
}

/** The upper bound of the bucket holding quantile `q` (Prometheus's histogram_quantile, coarse). */
function bucketQuantile(buckets: { le: number; count: number }[], q: number): number {
  const total = buckets.at(-1)?.count ?? 0;
  if (total === 0) return NaN;
  const target = q * total;
  let prev = { le: 0, count: 0 };
  for (const b of buckets) {
    if (b.count >= target) {
      if (!Number.isFinite(b.le)) return prev.le;
      const inBucket = b.count - prev.count;
      return inBucket > 0 ? prev.le + (b.le - prev.le) * (target - prev.count) / inBucket : b.le;
    }
    prev = b;
  }
  return NaN;
}

function gaugeMax(text: string, name: string): number {
  let max = 0;
  for (const m of text.matchAll(new RegExp(`^${name}(?:\\{[^}]*\\})? (\\S+)$`, 'gm'))) {
    max = Math.max(max, Number(m[1]));
  }
  return max;
}

const quantile = (values: number[], q: number) => {
  const v = values.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  if (v.length === 0) return NaN;
  return v[Math.min(v.length - 1, Math.floor(q * v.length))]!;
};
const mean = (values: number[]) => {
  const v = values.filter((x) => Number.isFinite(x));
  return v.length ? v.reduce((a, b) => a + b, 0) / v.length : NaN;
};

// ------------------------------------------------------------------------------------------
// One run: a fresh mocker process and frontend per mode
// ------------------------------------------------------------------------------------------

async function runMode(o: Options, rows: TraceRow[], plane: string, mode: string) {
  const dir = mkdtempSync(join(tmpdir(), 'switchboard-replay-'));
  const port = await freePort();
  const base = `http://127.0.0.1:${port}`;
  const ns = `replay${process.pid}${Math.floor(Math.random() * 1e6)}`;
  const env = { DYN_FILE_KV: dir, DYN_NAMESPACE: ns };
  const common = ['--discovery-backend', 'file', '--request-plane', 'tcp', '--event-plane', plane];
  const mocker = start(
    o.runtime,
    [
      'mocker',
      '--model-path',
      MODEL_PATH,
      '--model-name',
      MODEL,
      '--num-workers',
      String(o.workers),
      '--speedup-ratio',
      String(o.mockerSpeedup),
      ...(o.blocks ? ['--num-gpu-blocks-override', String(o.blocks)] : []),
      ...(o.blockSize ? ['--block-size', String(o.blockSize)] : []),
      ...common,
    ],
    env,
    o.profile,
  );
  const frontend = start(
    o.runtime,
    [
      '--http-port',
      String(port),
      '--http-host',
      '127.0.0.1',
      ...common,
      ...modeArgs(mode)!,
      ...o.routerArgs,
    ],
    env,
    o.profile,
  );
  let hogs: ChildProcess[] = [];
  try {
    await waitReady(base, o.workers, [mocker, frontend]);
    hogs = startContention(o.contention);
    const cpu0 = [cpuSeconds(frontend.child.pid), cpuSeconds(mocker.child.pid)];
    let peakQueued = 0;
    const sampler = setInterval(() => {
      fetch(`${base}/metrics`).then((r) => r.text()).then((text) => {
        peakQueued = Math.max(peakQueued, gaugeMax(text, 'dynamo_frontend_queued_requests'));
      }).catch(() => {});
    }, 500);
    const t0 = performance.now();
    const outcomes: Outcome[] = new Array(rows.length);
    let done = 0;
    let failed = 0;
    const progress = setInterval(() => {
      process.stderr.write(
        `\r  ${plane}/${mode}: ${done}/${rows.length} done, ${failed} failed, ` +
          `${((performance.now() - t0) / 1000).toFixed(0)} s   `,
      );
    }, 1000);
    const one = async (i: number) => {
      const outcome = await send(base, rows[i]!);
      outcomes[i] = outcome;
      done++;
      if (!outcome.ok) failed++;
    };
    if (o.concurrency) {
      let next = 0;
      await Promise.all(Array.from({ length: o.concurrency }, async () => {
        while (next < rows.length) await one(next++);
      }));
    } else {
      await Promise.all(rows.map(async (row, i) => {
        const at = row.timestamp / o.speedup - (performance.now() - t0);
        if (at > 0) await sleep(at);
        await one(i);
      }));
    }
    const wallS = (performance.now() - t0) / 1000;
    clearInterval(progress);
    clearInterval(sampler);
    process.stderr.write('\n');
    const metrics = await (await fetch(`${base}/metrics`)).text();
    const cpu = [
      cpuSeconds(frontend.child.pid) - cpu0[0]!,
      cpuSeconds(mocker.child.pid) - cpu0[1]!,
    ];
    const ok = outcomes.filter((x) => x.ok);
    const perWorker = new Map<string, number>();
    for (const x of ok) if (x.worker) perWorker.set(x.worker, (perWorker.get(x.worker) ?? 0) + 1);
    const lag = histogram(metrics, 'dynamo_frontend_kv_event_lag_seconds');
    const errors = new Map<string, number>();
    for (const x of outcomes.filter((x) => !x.ok)) {
      const key = `${x.status} ${x.error ?? ''}`.slice(0, 120);
      errors.set(key, (errors.get(key) ?? 0) + 1);
    }
    const prompt = ok.reduce((a, x) => a + x.promptTokens, 0);
    const misses = missAttribution(rows, outcomes);
    return {
      plane,
      mode,
      requests: rows.length,
      ok: ok.length,
      failed: rows.length - ok.length,
      errors: Object.fromEntries(errors),
      wallS,
      ttftMs: {
        mean: mean(ok.map((x) => x.ttftMs)),
        p50: quantile(ok.map((x) => x.ttftMs), 0.5),
        p90: quantile(ok.map((x) => x.ttftMs), 0.9),
        p99: quantile(ok.map((x) => x.ttftMs), 0.99),
      },
      itlMs: {
        p50: quantile(ok.map((x) => x.itlMs), 0.5),
        p90: quantile(ok.map((x) => x.itlMs), 0.9),
      },
      e2eMs: {
        p50: quantile(ok.map((x) => x.e2eMs), 0.5),
        p90: quantile(ok.map((x) => x.e2eMs), 0.9),
      },
      hitRate: prompt > 0 ? ok.reduce((a, x) => a + x.cachedTokens, 0) / prompt : NaN,
      misses,
      perWorker: {
        workers: perWorker.size,
        min: perWorker.size < o.workers ? 0 : Math.min(...perWorker.values()),
        max: Math.max(0, ...perWorker.values()),
      },
      peakQueued,
      cpuS: { frontend: cpu[0] ?? NaN, workers: cpu[1] ?? NaN },
      eventLagMs: {
        count: lag.at(-1)?.count ?? 0,
        p50: bucketQuantile(lag, 0.5) * 1000,
        p99: bucketQuantile(lag, 0.99) * 1000,
      },
    };
  } finally {
    for (const hog of hogs) hog.kill('SIGKILL');
    await Promise.all([stop(frontend), stop(mocker)]);
    rmSync(dir, { recursive: true, force: true });
  }
}

const o = options();
const rows = readTrace(o);
const top = ceiling(rows);
const span = rows.at(-1)!.timestamp / 1000;
process.stderr.write(
  `bench:replay ${o.trace} [${o.start}, +${rows.length}] ` +
    (o.concurrency
      ? `closed loop, ${o.concurrency} in flight`
      : `open loop, ${span.toFixed(0)} s / ${o.speedup}`) +
    `; ${o.workers} workers at speedup ${o.mockerSpeedup}` +
    (o.contention ? `; ${o.contention} spinning processes during each replay` : '') + '\n',
);
const results: (Awaited<ReturnType<typeof runMode>> & { round: number })[] = [];
for (let round = 1; round <= o.repeat; round++) {
  for (const plane of o.planes) {
    for (const mode of o.modes) results.push({ ...(await runMode(o, rows, plane, mode)), round });
  }
}
const f = (n: number, d = 0) => Number.isFinite(n) ? n.toFixed(d) : '-';
console.log(`\nceiling hit rate (unbounded cache): ${(top * 100).toFixed(1)}%`);
console.log(
  '| events | mode | TTFT mean | p50 | p90 | p99 | ITL p50 | E2E p50 | hit rate | of ceiling | req/worker min-max | peak queued | failed | CPU frontend / workers (s) | event lag p50 / p99 (ms) |',
);
console.log('|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|');
for (const r of results) {
  console.log(
    `| ${r.plane} | ${r.mode}${o.repeat > 1 ? ` #${r.round}` : ''} | ${f(r.ttftMs.mean)} | ${
      f(r.ttftMs.p50)
    } | ${f(r.ttftMs.p90)} | ` +
      `${f(r.ttftMs.p99)} | ${f(r.itlMs.p50, 1)} | ${f(r.e2eMs.p50)} | ${
        f(r.hitRate * 100, 1)
      }% | ` +
      `${
        f(r.hitRate / top, 2)
      } | ${r.perWorker.min}-${r.perWorker.max} | ${r.peakQueued} | ${r.failed} | ` +
      `${f(r.cpuS.frontend, 1)} / ${f(r.cpuS.workers, 1)} | ${f(r.eventLagMs.p50, 1)} / ${
        f(r.eventLagMs.p99, 1)
      } |`,
  );
}
console.log(
  "\nWhere the ceiling's hits went (shares of it): hit, lost to routing (the request went to a " +
    'worker that had not served its prefix), lost in the worker (evicted, still prefilling, partial block)',
);
for (const r of results) {
  console.log(
    `  ${r.plane}/${r.mode}: hit ${f(r.misses.hit, 2)}, routing ${f(r.misses.routing, 2)}, ` +
      `worker ${f(r.misses.worker, 2)}`,
  );
}
// Each mode's TTFT mean as a multiple of round-robin's on the same plane in the same round.
const summary = o.planes.flatMap((plane) =>
  o.modes.map((mode) => {
    const ratios: number[] = [];
    const means: number[] = [];
    for (const r of results.filter((x) => x.plane === plane && x.mode === mode)) {
      means.push(r.ttftMs.mean);
      const base = results.find((x) =>
        x.plane === plane && x.mode === 'round-robin' && x.round === r.round
      );
      if (base) ratios.push(base.ttftMs.mean / r.ttftMs.mean);
    }
    const avg = (v: number[]) => v.reduce((a, b) => a + b, 0) / v.length;
    return {
      plane,
      mode,
      rounds: means.length,
      ttftMeanMs: avg(means),
      vsRoundRobin: ratios.length
        ? { mean: avg(ratios), min: Math.min(...ratios), max: Math.max(...ratios) }
        : null,
    };
  })
);
if (o.repeat > 1) {
  console.log(`\nOver ${o.repeat} rounds: TTFT mean, and round-robin's of the same round over it`);
  console.log(
    '| events | mode | TTFT mean (ms, mean of rounds) | vs round-robin: mean | min | max |',
  );
  console.log('|---|---|---:|---:|---:|---:|');
  for (const m of summary) {
    const v = m.vsRoundRobin;
    console.log(
      `| ${m.plane} | ${m.mode} | ${f(m.ttftMeanMs)} | ${v ? `${f(v.mean, 2)}x` : '-'} | ${
        v ? `${f(v.min, 2)}x` : '-'
      } | ${v ? `${f(v.max, 2)}x` : '-'} |`,
    );
  }
}
for (const r of results) {
  if (r.failed) console.log(`errors ${r.plane}/${r.mode}: ${JSON.stringify(r.errors)}`);
}
finishBench('replay', { options: o, ceiling: top, summary, results });
process.exit(0);
