/**
 * Overload bench (issue 6 "Done when"): a fleet of simulated workers offered 1x, 2x and 3x its
 * capacity, with the busy thresholds (load shedding) off and on. Prints goodput: requests per
 * second that completed with a time to first token within the SLO.
 *
 *   npm run bench:overload [-- --router-modes kv,round-robin --slo-ms 1000 --loads 1,2,3 ...]
 *
 * Everything runs in this one process (mem discovery and events, tcp request plane, as
 * `bench/routing.ts` does), on whichever runtime runs the file; each measured run gets a fresh
 * frontend and fresh workers, so no queue carries over from one run to the next.
 *
 * The workload: `/v1/completions`, streaming, each prompt `--prompt-tokens` random token ids
 * (seeded, so no two prompts share a KV block and the prefix cache never helps), `max_tokens`
 * `--output-tokens`, `ignore_eos`. Token-id prompts keep tokenizing off the frontend's CPU, so the
 * bottleneck is the simulated fleet, not this 2-core machine. TTFT is the time from sending the
 * request to the first SSE chunk that carries text.
 *
 * Phases:
 * 1. **Saturation**: `--saturation-clients` closed-loop clients per worker send back to back for
 *    `--saturation-s`; completed requests per second (second half of the window) is the fleet's
 *    saturation throughput.
 * 2. **Capacity**: Poisson arrivals at 50 %, 60 %, ... 100 % of the saturation throughput,
 *    thresholds off, `--sweep-s` each; the capacity is the highest rate at which at least 95 % of
 *    requests completed within the SLO (the rate where TTFT starts to exceed the SLO). Phases 1
 *    and 2 use `--router-mode round-robin`: every request costs the same, so it splits the load
 *    evenly. `--capacity R` skips both.
 * 3. **Overload**: for each router mode in `--router-modes`, each load in `--loads` (multiples of
 *    the capacity) and thresholds off / on, open-loop Poisson arrivals for `--duration` seconds
 *    on a fresh stack. A request refused with the overload status (503) is not retried. Requests
 *    still open `--grace-s` after the last arrival are cancelled and counted as cut.
 *
 * Goodput = requests sent during the window that completed with TTFT <= SLO, divided by the
 * window. Goal: goodput at 3x with thresholds on >= 95 % of the peak goodput (the highest goodput
 * of any run of the same router mode).
 *
 * Thresholds ("on"): `--active-prefill-tokens-threshold-frac F` (default 1: a worker is busy when
 * more prompt tokens wait for prefill than one full `max_num_batched_tokens` batch) and
 * `--active-decode-blocks-threshold B` (default 0.9: busy when 90 % of the KV cache is in use;
 * this workload never gets there, it is the setting a user would add anyway). See
 * docs/benchmarks.md ("Overload and load shedding") for why and for the results.
 */
import { finishBench } from './_provenance.ts';
import process from 'node:process';
import { parseArgs } from 'node:util';
import { resolveConfig } from '../src/core/config.ts';
import { createJsonLogger, type Logger } from '../src/core/logger.ts';
import { resolveMockerConfig } from '../src/mocker/config.ts';
import type { RunningMocker } from '../src/mocker/worker.ts';
import { type RunningFrontend, startFrontend } from '../src/commands/frontend.ts';
import { createLocalBus } from '../src/runtime/infra.ts';
import { startMockerProcess } from '../src/commands/mocker.ts';
import { detectRuntime } from '../src/runtime/serve.ts';
import { createRandom } from '../src/mocker/engine/random.ts';

const MODEL_PATH = 'tests/fixtures/model';
const MODEL = 'Qwen/Qwen3-0.6B';
const ROUTER_MODES = ['round-robin', 'random', 'kv'] as const;
type RouterMode = (typeof ROUTER_MODES)[number];

// ------------------------------------------------------------------------------------------
// Options
// ------------------------------------------------------------------------------------------

interface Options {
  workers: number;
  speedup: number;
  blockSize: number;
  blocks: number;
  maxBatchedTokens: number;
  routerModes: RouterMode[];
  promptTokens: number;
  outputTokens: number;
  sloMs: number;
  durationS: number;
  graceS: number;
  loads: number[];
  capacity?: number;
  saturationClients: number;
  saturationS: number;
  sweepS: number;
  prefillFrac: number;
  decodeBlocks: number;
  seed: number;
  json: boolean;
}

function fail(message: string): never {
  process.stderr.write(`bench:overload: ${message}\n`);
  process.exit(1);
}

const HELP = [
  'Usage: npm run bench:overload -- [options]',
  '  --workers N              simulated workers (default: 2)',
  '  --speedup X              mocker --speedup-ratio (default: 0.5)',
  '  --block-size N           tokens per KV block (default: 64)',
  '  --blocks N               KV blocks per worker, --num-gpu-blocks-override (default: 16384)',
  '  --max-batched-tokens N   mocker --max-num-batched-tokens (default: 4096)',
  '  --router-modes LIST      kv, round-robin and/or random (default: kv,round-robin)',
  '  --prompt-tokens N        prompt length, random token ids (default: 2048)',
  '  --output-tokens N        max_tokens, ignore_eos (default: 16)',
  '  --slo-ms X               TTFT SLO (default: 1000)',
  '  --duration S             seconds of arrivals per overload run (default: 10)',
  '  --grace-s S              wait after the last arrival before cancelling (default: 4)',
  '  --loads LIST             multiples of the capacity (default: 1,2,3)',
  '  --capacity R             requests/s to use as 1x; skips measuring it',
  '  --saturation-clients N   closed-loop clients per worker in phase 1 (default: 8)',
  '  --saturation-s S         seconds of phase 1 (default: 6)',
  '  --sweep-s S              seconds per rate in phase 2 (default: 8)',
  '  --prefill-frac F         thresholds on: --active-prefill-tokens-threshold-frac (default: 1)',
  '  --decode-blocks F        thresholds on: --active-decode-blocks-threshold (default: 0.9)',
  '  --seed N                 workload seed (default: 1)',
  '  --json                   print the results as JSON instead of a table',
  '',
].join('\n');

function parseOptions(argv: string[]): Options {
  const { values } = parseArgs({
    args: argv,
    options: {
      workers: { type: 'string', default: '2' },
      speedup: { type: 'string', default: '0.5' },
      'block-size': { type: 'string', default: '64' },
      blocks: { type: 'string', default: '16384' },
      'max-batched-tokens': { type: 'string', default: '4096' },
      'router-modes': { type: 'string', default: 'kv,round-robin' },
      'prompt-tokens': { type: 'string', default: '2048' },
      'output-tokens': { type: 'string', default: '16' },
      'slo-ms': { type: 'string', default: '1000' },
      duration: { type: 'string', default: '10' },
      'grace-s': { type: 'string', default: '4' },
      loads: { type: 'string', default: '1,2,3' },
      capacity: { type: 'string' },
      'saturation-clients': { type: 'string', default: '8' },
      'saturation-s': { type: 'string', default: '6' },
      'sweep-s': { type: 'string', default: '8' },
      'prefill-frac': { type: 'string', default: '1' },
      'decode-blocks': { type: 'string', default: '0.9' },
      seed: { type: 'string', default: '1' },
      json: { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (values.help) {
    process.stdout.write(HELP);
    process.exit(0);
  }
  const num = (name: string, text: string, integer: boolean, min = Number.MIN_VALUE) => {
    const n = Number(text);
    if (!(n >= min) || (integer && !Number.isInteger(n))) {
      fail(`--${name} must be ${integer ? 'an integer' : 'a number'} >= ${min}, got "${text}"`);
    }
    return n;
  };
  const modes = values['router-modes'].split(',').map((m) => m.trim()).filter(Boolean);
  for (const mode of modes) {
    if (!ROUTER_MODES.includes(mode as RouterMode)) {
      fail(`Unknown router mode "${mode}": use ${ROUTER_MODES.join(', ')}`);
    }
  }
  return {
    workers: num('workers', values.workers, true, 1),
    speedup: num('speedup', values.speedup, false),
    blockSize: num('block-size', values['block-size'], true, 1),
    blocks: num('blocks', values.blocks, true, 1),
    maxBatchedTokens: num('max-batched-tokens', values['max-batched-tokens'], true, 1),
    routerModes: modes as RouterMode[],
    promptTokens: num('prompt-tokens', values['prompt-tokens'], true, 1),
    outputTokens: num('output-tokens', values['output-tokens'], true, 1),
    sloMs: num('slo-ms', values['slo-ms'], false),
    durationS: num('duration', values.duration, false),
    graceS: num('grace-s', values['grace-s'], false, 0),
    loads: values.loads.split(',').map((s) => num('loads', s.trim(), false)),
    capacity: values.capacity === undefined ? undefined : num('capacity', values.capacity, false),
    saturationClients: num('saturation-clients', values['saturation-clients'], true, 1),
    saturationS: num('saturation-s', values['saturation-s'], false),
    sweepS: num('sweep-s', values['sweep-s'], false),
    prefillFrac: num('prefill-frac', values['prefill-frac'], false, 0),
    decodeBlocks: num('decode-blocks', values['decode-blocks'], false, 0),
    seed: num('seed', values.seed, true, 0),
    json: values.json,
  };
}

// ------------------------------------------------------------------------------------------
// The stack
// ------------------------------------------------------------------------------------------

/**
 * Errors to stderr, except the frontend's one line per refused request ("request failed",
 * `OverloadedError`): shedding them is the point of the bench.
 */
function benchLogger(): Logger {
  return createJsonLogger({
    write: (line) => {
      if (!line.includes('"OverloadedError"')) process.stderr.write(line);
    },
    level: 'error',
  });
}

interface Stack {
  url: string;
  frontend: RunningFrontend;
  mocker: RunningMocker;
  close(): Promise<void>;
}

/** The flags that turn load shedding on. */
function thresholdArgs(options: Options): string[] {
  return [
    '--active-prefill-tokens-threshold-frac',
    String(options.prefillFrac),
    '--active-decode-blocks-threshold',
    String(options.decodeBlocks),
  ];
}

async function startStack(
  options: Options,
  run: { mode: RouterMode; shedding: boolean },
  logger: Logger,
): Promise<Stack> {
  const resolved = resolveConfig({
    argv: [
      ...['--http-host', '127.0.0.1', '--discovery-backend', 'mem', '--request-plane', 'tcp'],
      ...['--router-mode', run.mode],
      ...(run.shedding ? thresholdArgs(options) : []),
    ],
    env: {},
  });
  if (!resolved.ok) fail(resolved.errors.join('\n'));
  const mockerConfig = resolveMockerConfig({
    argv: [
      ...['--model-path', MODEL_PATH, '--model-name', MODEL],
      ...['--num-workers', String(options.workers)],
      ...['--speedup-ratio', String(options.speedup)],
      ...['--block-size', String(options.blockSize)],
      ...['--num-gpu-blocks-override', String(options.blocks)],
      ...['--max-num-batched-tokens', String(options.maxBatchedTokens)],
      ...['--discovery-backend', 'mem', '--request-plane', 'tcp'],
    ],
    env: {},
  });
  if (!mockerConfig.ok) fail(mockerConfig.errors.join('\n'));
  const bus = createLocalBus();
  const frontend = await startFrontend({ ...resolved.config, httpPort: 0 }, {
    env: {},
    logger,
    local: bus,
  });
  const mocker = await startMockerProcess(mockerConfig.config, { env: {}, logger, local: bus });
  const deadline = Date.now() + 10_000;
  while (
    frontend.core.lifecycle.phase !== 'ready' ||
    frontend.core.models.instances(MODEL).length < options.workers
  ) {
    if (Date.now() > deadline) fail('timed out waiting for the workers in discovery');
    await sleep(10);
  }
  return {
    url: `http://127.0.0.1:${frontend.server.port}`,
    frontend,
    mocker,
    async close() {
      await mocker.close();
      await frontend.shutdown('bench over');
    },
  };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

// ------------------------------------------------------------------------------------------
// One request
// ------------------------------------------------------------------------------------------

type Outcome = 'ok' | 'refused' | 'failed' | 'cut';

interface Sample {
  outcome: Outcome;
  /** ms after the run's start. */
  sentMs: number;
  ttftMs: number;
  e2eMs: number;
  error?: string;
}

interface Workload {
  prompt(): number[];
}

function createWorkload(options: Options, seed: number): Workload {
  const random = createRandom(seed);
  return {
    // Ids 1000-99999: ordinary vocabulary entries of Qwen3's 151k, no special tokens.
    prompt: () =>
      Array.from({ length: options.promptTokens }, () => 1000 + Math.floor(random() * 99_000)),
  };
}

/** POSTs one streaming completion and reads it to the end (or until `signal` aborts). */
async function send(
  url: string,
  body: unknown,
  signal: AbortSignal,
  t0: number,
): Promise<Sample> {
  const start = performance.now();
  const sample: Sample = {
    outcome: 'failed',
    sentMs: start - t0,
    ttftMs: Number.NaN,
    e2eMs: Number.NaN,
  };
  try {
    const res = await fetch(`${url}/v1/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(body),
      signal,
    });
    if (!res.ok || !res.body) {
      const text = await res.text();
      sample.outcome = res.status === 503 ? 'refused' : 'failed';
      sample.error = `HTTP ${res.status}: ${text.slice(0, 200)}`;
      return sample;
    }
    const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = '';
    let done = false;
    for (;;) {
      const { value, done: end } = await reader.read();
      if (end) break;
      buffer += value;
      let cut: number;
      while ((cut = buffer.indexOf('\n\n')) >= 0) {
        const event = buffer.slice(0, cut);
        buffer = buffer.slice(cut + 2);
        for (const line of event.split('\n')) {
          if (!line.startsWith('data:')) continue;
          const data = line.slice(5).trim();
          if (data === '[DONE]') {
            done = true;
            continue;
          }
          const chunk = JSON.parse(data) as {
            choices?: { text?: string | null }[];
            error?: { message?: string };
          };
          if (chunk.error) sample.error = chunk.error.message ?? JSON.stringify(chunk.error);
          if (Number.isNaN(sample.ttftMs) && (chunk.choices?.[0]?.text ?? '').length > 0) {
            sample.ttftMs = performance.now() - start;
          }
        }
      }
    }
    sample.e2eMs = performance.now() - start;
    if (done && sample.error === undefined && !Number.isNaN(sample.ttftMs)) sample.outcome = 'ok';
    else sample.error ??= 'stream ended without [DONE]';
  } catch (error) {
    if (signal.aborted) sample.outcome = 'cut';
    else sample.error = (error as Error).message;
  }
  return sample;
}

// ------------------------------------------------------------------------------------------
// Load generators
// ------------------------------------------------------------------------------------------

interface RunSpec {
  label: string;
  mode: RouterMode;
  load: number;
  shedding: boolean;
  /** Offered requests per second. */
  rate: number;
  windowS: number;
}

interface RunResult {
  label: string;
  mode: RouterMode;
  load: number;
  shedding: boolean;
  offeredRate: number;
  windowS: number;
  sent: number;
  ok: number;
  good: number;
  refused: number;
  failed: number;
  cut: number;
  goodput: number;
  ttftP50: number;
  ttftP99: number;
  firstError?: string;
  /** Event-loop lag p99 while the run lasted, ms: how much the bench's own process was starved. */
  lagP99Ms: number;
  cpuS: number;
  /** Requests each worker served during the run. */
  perWorker: number[];
}

function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[i] as number;
}

const sortedOf = (xs: number[]) => [...xs].sort((a, b) => a - b);

function lagProbe() {
  const lags: number[] = [];
  let expected = performance.now() + 20;
  const timer = setInterval(() => {
    const now = performance.now();
    lags.push(Math.max(0, now - expected));
    expected = now + 20;
  }, 20);
  return {
    stop() {
      clearInterval(timer);
      return percentile(sortedOf(lags), 99);
    },
  };
}

function requestBody(workload: Workload, options: Options) {
  return {
    model: MODEL,
    prompt: workload.prompt(),
    max_tokens: options.outputTokens,
    ignore_eos: true,
    stream: true,
  };
}

async function warmUp(stack: Stack, options: Options, workload: Workload): Promise<void> {
  const controller = new AbortController();
  for (let i = 0; i < 2 * options.workers; i++) {
    const s = await send(stack.url, requestBody(workload, options), controller.signal, 0);
    if (s.outcome !== 'ok') fail(`warm-up request failed: ${s.error}`);
  }
}

function summarize(
  samples: Sample[],
  run: RunSpec,
  sloMs: number,
  lagP99Ms: number,
  cpuS: number,
): Omit<RunResult, 'perWorker'> {
  const ok = samples.filter((s) => s.outcome === 'ok');
  const good = ok.filter((s) => s.ttftMs <= sloMs).length;
  const ttft = sortedOf(ok.map((s) => s.ttftMs));
  return {
    label: run.label,
    mode: run.mode,
    load: run.load,
    shedding: run.shedding,
    offeredRate: run.rate,
    windowS: run.windowS,
    sent: samples.length,
    ok: ok.length,
    good,
    refused: samples.filter((s) => s.outcome === 'refused').length,
    failed: samples.filter((s) => s.outcome === 'failed').length,
    cut: samples.filter((s) => s.outcome === 'cut').length,
    goodput: good / run.windowS,
    ttftP50: percentile(ttft, 50),
    ttftP99: percentile(ttft, 99),
    firstError: samples.find((s) => s.outcome === 'failed')?.error,
    lagP99Ms,
    cpuS,
  };
}

/** Open loop: Poisson arrivals at `rate` per second for `windowS`, then `graceS` to finish. */
async function poissonRun(
  stack: Stack,
  options: Options,
  run: RunSpec,
  seed: number,
): Promise<RunResult> {
  const workload = createWorkload(options, seed);
  const arrivals = createRandom(seed ^ 0x5eed);
  const controller = new AbortController();
  const probe = lagProbe();
  const cpu0 = process.cpuUsage();
  const served0 = stack.mocker.workers.map((w) => w.servedRequests());
  const pending: Promise<Sample>[] = [];
  const t0 = performance.now();
  const end = run.windowS * 1000;
  let next = -Math.log(1 - arrivals()) * 1000 / run.rate;
  while (next < end) {
    const wait = t0 + next - performance.now();
    if (wait > 1) await sleep(wait);
    pending.push(send(stack.url, requestBody(workload, options), controller.signal, t0));
    next += -Math.log(1 - arrivals()) * 1000 / run.rate;
  }
  const cutTimer = setTimeout(
    () => controller.abort(),
    Math.max(0, t0 + end + options.graceS * 1000 - performance.now()),
  );
  const samples = await Promise.all(pending);
  clearTimeout(cutTimer);
  // Let the frontend finish cancelling what was cut before the caller closes the workers.
  if (controller.signal.aborted) await sleep(1000);
  const cpu = process.cpuUsage(cpu0);
  const perWorker = stack.mocker.workers.map((w, i) => w.servedRequests() - (served0[i] as number));
  const lag = probe.stop();
  return {
    ...summarize(samples, run, options.sloMs, lag, (cpu.user + cpu.system) / 1e6),
    perWorker,
  };
}

/** Closed loop: `clients` clients send back to back for `seconds`; completed per second. */
async function saturation(stack: Stack, options: Options, clients: number, seconds: number) {
  const workload = createWorkload(options, options.seed + 1000);
  const controller = new AbortController();
  const t0 = performance.now();
  const stopAt = t0 + seconds * 1000;
  // Completions in the second half of the window only: the first half fills the queues.
  const from = t0 + seconds * 500;
  let completed = 0;
  const client = async () => {
    while (performance.now() < stopAt) {
      const s = await send(stack.url, requestBody(workload, options), controller.signal, t0);
      if (s.outcome === 'ok' && t0 + s.sentMs + s.e2eMs >= from) completed++;
      if (s.outcome === 'failed') fail(`saturation request failed: ${s.error}`);
    }
  };
  const timer = setTimeout(() => controller.abort(), seconds * 1000 + 10_000);
  await Promise.all(Array.from({ length: clients }, client));
  clearTimeout(timer);
  return completed / (seconds / 2);
}

// ------------------------------------------------------------------------------------------
// The driver
// ------------------------------------------------------------------------------------------

const f0 = (x: number) => Number.isFinite(x) ? x.toFixed(0) : '-';
const f1 = (x: number) => Number.isFinite(x) ? x.toFixed(1) : '-';
const f2 = (x: number) => Number.isFinite(x) ? x.toFixed(2) : '-';

function log(line: string) {
  process.stderr.write(`bench:overload: ${line}\n`);
}

function describeRun(r: RunResult): string {
  return `${r.label}: offered ${
    f1(r.offeredRate)
  }/s, sent ${r.sent}, ok ${r.ok}, good ${r.good}, ` +
    `refused ${r.refused}, failed ${r.failed}, cut ${r.cut}, goodput ${f2(r.goodput)}/s, ` +
    `TTFT p50 ${f0(r.ttftP50)} p99 ${f0(r.ttftP99)} ms, lag p99 ${f0(r.lagP99Ms)} ms, ` +
    `CPU ${f1(r.cpuS)} s, per worker ${r.perWorker.join('/')}${
      r.firstError ? `, first error: ${r.firstError}` : ''
    }`;
}

async function measureCapacity(options: Options, logger: Logger) {
  const stack = await startStack(options, { mode: 'round-robin', shedding: false }, logger);
  try {
    await warmUp(stack, options, createWorkload(options, options.seed + 999));
    const clients = options.saturationClients * options.workers;
    const sat = await saturation(stack, options, clients, options.saturationS);
    log(`saturation throughput with ${clients} closed-loop clients: ${f2(sat)} req/s`);
    let capacity = 0;
    const sweep: RunResult[] = [];
    for (let pct = 50; pct <= 100; pct += 10) {
      const rate = sat * pct / 100;
      const r = await poissonRun(stack, options, {
        label: `sweep ${pct}%`,
        mode: 'round-robin',
        load: pct / 100,
        shedding: false,
        rate,
        windowS: options.sweepS,
      }, options.seed + pct);
      log(describeRun(r));
      sweep.push(r);
      if (r.good < 0.95 * r.sent) break;
      capacity = rate;
    }
    if (capacity === 0) {
      fail(`even 50 % of the saturation throughput misses the SLO for > 5 % of requests`);
    }
    return { saturation: sat, capacity, sweep };
  } finally {
    await stack.close();
  }
}

function table(results: RunResult[]): string {
  const rows = [
    '| router | load | thresholds | offered req/s | sent | completed | within SLO | refused (503) | failed | cut | goodput req/s | of peak | TTFT p50 ms | TTFT p99 ms | loop lag p99 ms |',
    '|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|',
  ];
  for (const r of results) {
    const peak = peakOf(results, r.mode);
    rows.push(
      `| ${r.mode} | ${r.load}x | ${r.shedding ? 'on' : 'off'} | ${
        f1(r.offeredRate)
      } | ${r.sent} | ` +
        `${r.ok} | ${r.good} | ${r.refused} | ${r.failed} | ${r.cut} | ${f2(r.goodput)} | ` +
        `${f0((100 * r.goodput) / peak)} % | ${f0(r.ttftP50)} | ${f0(r.ttftP99)} | ${
          f0(r.lagP99Ms)
        } |`,
    );
  }
  return rows.join('\n');
}

/** The highest goodput of any run of a router mode. */
const peakOf = (results: RunResult[], mode: RouterMode) =>
  Math.max(...results.filter((r) => r.mode === mode).map((r) => r.goodput));

/** Per router mode: goodput at the highest load with thresholds on, against the mode's peak. */
function goals(results: RunResult[]): { mode: RouterMode; load: number; ratio: number }[] {
  const modes = [...new Set(results.map((r) => r.mode))];
  return modes.flatMap((mode) => {
    const top = results.filter((r) =>
      r.mode === mode && r.shedding
    ).sort((a, b) => b.load - a.load)[0];
    return top ? [{ mode, load: top.load, ratio: top.goodput / peakOf(results, mode) }] : [];
  });
}

async function main(options: Options): Promise<void> {
  const logger = benchLogger();
  const runtime = detectRuntime();
  const started = performance.now();
  let saturationRate: number | undefined;
  let capacity = options.capacity;
  if (capacity === undefined) {
    const measured = await measureCapacity(options, logger);
    saturationRate = measured.saturation;
    capacity = measured.capacity;
  }
  log(`capacity (1x): ${f2(capacity)} req/s`);
  const results: RunResult[] = [];
  for (const mode of options.routerModes) {
    for (const load of options.loads) {
      for (const shedding of [false, true]) {
        const stack = await startStack(options, { mode, shedding }, logger);
        try {
          await warmUp(stack, options, createWorkload(options, options.seed + 999));
          const r = await poissonRun(stack, options, {
            label: `${mode} ${load}x thresholds ${shedding ? 'on' : 'off'}`,
            mode,
            load,
            shedding,
            rate: load * capacity,
            windowS: options.durationS,
          }, options.seed + Math.round(load * 100));
          log(describeRun(r));
          results.push(r);
        } finally {
          await stack.close();
        }
      }
    }
  }
  const elapsedS = (performance.now() - started) / 1000;
  if (options.json) {
    console.log(
      JSON.stringify({
        options,
        saturation: saturationRate,
        capacity,
        results,
        goals: goals(results),
      }),
    );
    finishBench('overload', { options, saturation: saturationRate, capacity, results }, {
      stdoutIsJson: true,
    });
    return;
  }
  const version = runtime === 'node'
    ? process.version
    : runtime === 'bun'
    ? (globalThis as unknown as { Bun: { version: string } }).Bun.version
    : (globalThis as unknown as { Deno: { version: { deno: string } } }).Deno.version.deno;
  console.log(
    `${runtime} ${version}; ${options.workers} workers, speedup ${options.speedup}, ` +
      `${options.blocks} blocks of ${options.blockSize}, max_num_batched_tokens ` +
      `${options.maxBatchedTokens}; prompts ${options.promptTokens} tokens (random ids), ` +
      `${options.outputTokens} output tokens; TTFT SLO ${options.sloMs} ms; ` +
      `${options.durationS} s per run, grace ${options.graceS} s; thresholds on = ` +
      `${thresholdArgs(options).join(' ')}\n` +
      (saturationRate !== undefined ? `saturation throughput ${f2(saturationRate)} req/s, ` : '') +
      `capacity (1x) ${f2(capacity)} req/s; bench took ${f0(elapsedS)} s\n`,
  );
  console.log(table(results));
  console.log('');
  for (const g of goals(results)) {
    console.log(
      `${g.mode}: goodput at ${g.load}x with thresholds on = ${f0(g.ratio * 100)} % of the ` +
        `mode's peak (goal >= 95 %): ${g.ratio >= 0.95 ? 'met' : 'MISSED'}`,
    );
  }
  finishBench('overload', {
    options,
    saturation: saturationRate,
    capacity,
    results,
    goals: goals(results),
  });
}

await main(parseOptions(process.argv.slice(2)));
process.exit(0);
