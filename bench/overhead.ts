/**
 * Streaming overhead: what Switchboard adds to a streamed ~100-token chat completion, per runtime.
 * Results go in `docs/benchmarks.md` ("Streaming overhead (bench/overhead.ts)").
 *
 *   npm run bench:overhead [-- --runtimes node,bun,deno --concurrency 1,64,256,1024 --reps 2
 *     --rounds 3 --capacity-concurrency 256 --warmup 1 --duration 2.5 --harness bun
 *     --no-portkey --profile node,bun --phases ttft,portkey,profile --json]
 *
 * Processes (Switchboard and its baselines on CPU 0, everything else on CPU 1, with `taskset`):
 *
 * - simulated workers (`bench/fixtures/workers.ts`: the mocker at `--speedup-ratio 1000`, one
 *   worker, `--max-num-seqs 1024`, tcp request plane, file discovery), CPU 1;
 * - the load generator (`bench/fixtures/load.ts`), CPU 1; it and the workers run on `--harness`
 *   (default Bun) whatever the runtime under test, so only the proxy changes between rows;
 * - one OpenAI-compatible upstream shared by every proxy that needs one: `bench/fixtures/relay.ts`
 *   on `--harness` (CPU 1) in front of the worker, and `switchboard register` (CPU 1) holding it
 *   in discovery as the model `PASSTHROUGH_MODEL` (text input: Switchboard's passthrough);
 * - per runtime, Switchboard (`--discovery-backend file`, round-robin; it serves `MODEL` from the
 *   worker and `PASSTHROUGH_MODEL` from the upstream) and the bare Hono byte relay
 *   (`bench/fixtures/byte-relay.ts`, forwarding to the upstream), CPU 0;
 * - during the Node phase, `@portkey-ai/gateway` on Node (CPU 0) in front of the same upstream,
 *   when `bench/portkey` is installed (`npm install --prefix bench/portkey`).
 *
 * One kind of cell measures everything: N concurrent streams in a closed loop (each sends, reads
 * its stream to the end, sends again), through one path, with a warm-up and a measured window
 * (see `bench/fixtures/load.ts`). Paths:
 *
 * - straight: the `PreprocessedRequest` Switchboard produced for the chat request (the workers
 *   capture it from a probe) sent to the worker with `createTcpPlaneClient`; TTFT = first item;
 * - switchboard (the main path: templating, tokenizing, the tcp plane to the worker,
 *   detokenizing), passthrough (Switchboard, `PASSTHROUGH_MODEL`), byte-relay, portkey:
 *   `POST /v1/chat/completions` with `stream: true`; TTFT = first SSE event with non-empty content.
 *
 * 1. TTFT at each N of `--concurrency`: added = switchboard - straight at each percentile. A cell
 *    runs `--reps` times (once at N = 1, with twice the duration, and at N >= 1024; `--rounds`
 *    times at the capacity N), the paths in rotating order; the samples are pooled.
 * 2. CPU per stream on one core, from the cells at `--capacity-concurrency`: the CPU time of each
 *    proxy process over its windows per stream finished, and the ratios the goals name: main
 *    path / byte relay, passthrough / byte relay (issue #13: <= 1.8x, <= 1.3x), with streams/s.
 * 3. Portkey: its own path in the Node phase's capacity cells, alternating with Switchboard's
 *    paths round by round: main path / Portkey CPU per stream (goal <= 1/3).
 * 4. Profile (`--profile node,bun`): one more Switchboard run at 256 streams with `--cpu-prof`;
 *    samples from start-up and warm-up are left out. Self time by function and by file, inclusive
 *    time of this repository's functions. (Deno 2.9 has no CPU-profile flag.)
 */
import { finishBench } from './_provenance.ts';
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import {
  closeSync,
  existsSync,
  mkdtempSync,
  openSync,
  readdirSync,
  readFileSync,
  rmSync,
} from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import process from 'node:process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { freePort } from '../tests/helpers/process.ts';

type Runtime = 'node' | 'bun' | 'deno';
type Path = 'straight' | 'switchboard' | 'passthrough' | 'byte-relay' | 'portkey';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const RUNTIMES: readonly Runtime[] = ['node', 'bun', 'deno'];
const HOST = '127.0.0.1';
const MODEL = 'Qwen/Qwen3-0.6B';
/** What `switchboard register` names the shared upstream's model in Switchboard. */
const PASSTHROUGH_MODEL = 'bench/passthrough';
const TOKENS = 100;
const PORTKEY_DIR = 'bench/portkey/node_modules/@portkey-ai/gateway';
/** The chat request every HTTP path sends. */
const CHAT = {
  model: MODEL,
  messages: [
    { role: 'system', content: 'You are a helpful assistant. Answer in plain prose.' },
    { role: 'user', content: 'Tell me a short story about a lighthouse keeper and a storm.' },
  ],
  stream: true,
  max_tokens: TOKENS,
  ignore_eos: true,
};
/**
 * Issue #13's goals: added TTFT p50 at one stream; CPU per stream of the main path and of the
 * passthrough over the byte relay's, and of the main path over Portkey's (Node).
 */
const GOALS = {
  ttftP50: 1,
  mainVsByteRelay: 1.8,
  passthroughVsByteRelay: 1.3,
  mainVsPortkey: 1 / 3,
};
/** A cell starts no stream later than this past its warm-up and duration. */
const LIMIT_EXTRA_MS = 30_000;
const PROFILE_CONCURRENCY = 256;
const PHASES = ['ttft', 'portkey', 'profile'] as const;
type Phase = (typeof PHASES)[number];

interface Options {
  runtimes: Runtime[];
  concurrency: number[];
  reps: number;
  rounds: number;
  capacityConcurrency: number;
  warmup: number;
  duration: number;
  maxRequests: number;
  harness: Runtime;
  portkey: boolean;
  profile: Runtime[];
  phases: Phase[];
  json: boolean;
}

function fail(message: string): never {
  process.stderr.write(`bench:overhead: ${message}\n`);
  process.exit(1);
}

const log = (text: string) => process.stderr.write(`${text}\n`);

function parseOptions(argv: string[]): Options {
  const { values } = parseArgs({
    args: argv,
    options: {
      runtimes: { type: 'string', default: RUNTIMES.join(',') },
      concurrency: { type: 'string', default: '1,64,256,1024' },
      reps: { type: 'string', default: '2' },
      rounds: { type: 'string', default: '3' },
      'capacity-concurrency': { type: 'string', default: '256' },
      warmup: { type: 'string', default: '1' },
      duration: { type: 'string', default: '2.5' },
      'max-requests': { type: 'string', default: '20000' },
      harness: { type: 'string', default: 'bun' },
      'no-portkey': { type: 'boolean', default: false },
      profile: { type: 'string', default: 'node,bun' },
      phases: { type: 'string', default: PHASES.join(',') },
      json: { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (values.help) {
    process.stdout.write(
      [
        'Usage: npm run bench:overhead -- [options]',
        '  --runtimes LIST            Switchboard runtimes, subset of node,bun,deno (default: all)',
        '  --concurrency LIST         concurrent streams of the cells (default: 1,64,256,1024)',
        '  --reps N                   repetitions of a cell; 1 at N = 1 and N >= 1024 (default: 2)',
        '  --rounds N                 repetitions of the capacity cells (default: 3)',
        '  --capacity-concurrency N   N of the capacity (and Portkey) cells (default: 256)',
        '  --warmup S                 least unmeasured seconds of a cell (default: 1)',
        '  --duration S               least measured seconds of a cell (default: 2.5)',
        '  --max-requests N           most streams counted in a cell (default: 20000)',
        '  --harness RUNTIME          runtime of the workers and the load generator (default: bun)',
        '  --no-portkey               leave @portkey-ai/gateway out',
        '  --profile LIST             runtimes to CPU-profile at 256 streams (default: node,bun;',
        '                             Deno has no profile flag)',
        '  --phases LIST              subset of ttft,portkey,profile (default: all)',
        '  --json                     print the results as JSON instead of tables',
        '',
      ].join('\n'),
    );
    process.exit(0);
  }
  const list = (text: string) => text.split(',').map((s) => s.trim()).filter(Boolean);
  const runtimeList = (name: string, text: string) => {
    const picked = list(text);
    for (const r of picked) {
      if (!RUNTIMES.includes(r as Runtime)) fail(`--${name}: unknown runtime "${r}"`);
    }
    return picked as Runtime[];
  };
  const positive = (name: string, text: string, integer = true) => {
    const n = Number(text);
    if (!(n > 0) || (integer && !Number.isInteger(n))) {
      fail(`--${name} must be a positive ${integer ? 'integer' : 'number'}, got "${text}"`);
    }
    return n;
  };
  const harness = runtimeList('harness', values.harness);
  if (harness.length !== 1) fail('--harness takes one runtime');
  const capacityConcurrency = positive('capacity-concurrency', values['capacity-concurrency']);
  const concurrency = list(values.concurrency).map((c) => positive('concurrency', c));
  if (!concurrency.includes(capacityConcurrency)) concurrency.push(capacityConcurrency);
  return {
    runtimes: runtimeList('runtimes', values.runtimes),
    concurrency: concurrency.sort((a, b) => a - b),
    reps: positive('reps', values.reps),
    rounds: positive('rounds', values.rounds),
    capacityConcurrency,
    warmup: positive('warmup', values.warmup, false),
    duration: positive('duration', values.duration, false),
    maxRequests: positive('max-requests', values['max-requests']),
    harness: harness[0]!,
    portkey: !values['no-portkey'],
    profile: runtimeList('profile', values.profile).filter((r) => r !== 'deno'),
    phases: list(values.phases).map((p) => {
      if (!PHASES.includes(p as Phase)) fail(`--phases: unknown phase "${p}"`);
      return p as Phase;
    }),
    json: values.json,
  };
}

// ---------------------------------------------------------------------------------------------
// Processes

/** argv running `entry` on `runtime`, relative to the repository root. */
function runtimeArgv(runtime: Runtime, entry: string, flags: string[] = []): string[] {
  switch (runtime) {
    case 'node':
      return ['node', '--import', 'tsx', '--experimental-websocket', ...flags, entry];
    case 'bun':
      return ['node_modules/.bin/bun', ...flags, entry];
    case 'deno':
      return ['node_modules/.bin/deno', 'run', '-A', ...flags, entry];
  }
}

function switchboardEntry(runtime: Runtime): string {
  return runtime === 'deno' ? 'main.ts' : 'src/main.ts';
}

interface Proc {
  name: string;
  argv: string[];
  child: ChildProcess;
  pid: number;
  /** The next line on stdout (when started with `stdout: 'pipe'`). */
  line(timeoutMs?: number): Promise<string>;
  send(line: string): void;
  exited: Promise<void>;
  exitText(): string | undefined;
}

const children = new Set<ChildProcess>();
process.on('exit', () => {
  for (const child of children) child.kill('SIGKILL');
});
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.on(signal, () => process.exit(130));
}

let workDir = '';

function launch(
  name: string,
  argv: string[],
  options: { cpu?: number; env?: Record<string, string>; pipe?: boolean; cwd?: string } = {},
): Proc {
  const full = options.cpu === undefined ? argv : ['taskset', '-c', String(options.cpu), ...argv];
  // Start from the defaults: a DYN_* variable in the caller's environment must not change them.
  const env = Object.fromEntries(
    Object.entries(process.env).filter(([key]) => !key.startsWith('DYN_')),
  );
  const errFd = openSync(join(workDir, `${name}.log`), 'a');
  const child = spawn(full[0]!, full.slice(1), {
    cwd: options.cwd ?? ROOT,
    env: { ...env, ...options.env },
    stdio: [options.pipe ? 'pipe' : 'ignore', options.pipe ? 'pipe' : errFd, errFd],
  });
  closeSync(errFd);
  children.add(child);
  let exitText: string | undefined;
  const exited = new Promise<void>((resolve) => {
    child.once('exit', (code, signal) => {
      children.delete(child);
      exitText = signal ? `signal ${signal}` : `exit code ${code}`;
      resolve();
    });
    child.once('error', (error) => {
      exitText = error.message;
      resolve();
    });
  });
  const lines: string[] = [];
  const waiters: Array<(line: string) => void> = [];
  if (options.pipe && child.stdout) {
    createInterface({ input: child.stdout }).on('line', (line) => {
      const waiter = waiters.shift();
      if (waiter) waiter(line);
      else lines.push(line);
    });
  }
  return {
    name,
    argv: full,
    child,
    pid: child.pid ?? -1,
    exited,
    exitText: () => exitText,
    send(line) {
      child.stdin?.write(`${line}\n`);
    },
    line(timeoutMs = 120_000) {
      const ready = lines.shift();
      if (ready !== undefined) return Promise.resolve(ready);
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => {
          const i = waiters.indexOf(done);
          if (i >= 0) waiters.splice(i, 1);
          reject(new Error(`${name}: no output within ${timeoutMs} ms (${logTail(name)})`));
        }, timeoutMs);
        const done = (line: string) => {
          clearTimeout(timer);
          resolve(line);
        };
        waiters.push(done);
        void exited.then(() => {
          if (!waiters.includes(done)) return;
          clearTimeout(timer);
          reject(new Error(`${name} stopped (${exitText}): ${logTail(name)}`));
        });
      });
    },
  };
}

function logTail(name: string): string {
  try {
    return readFileSync(join(workDir, `${name}.log`), 'utf8').trim().split('\n').slice(-5)
      .join('\n');
  } catch {
    return 'no log';
  }
}

async function stop(proc: Proc | undefined, signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
  if (!proc || proc.exitText() !== undefined) return;
  proc.child.kill(signal);
  const timer = setTimeout(() => proc.child.kill('SIGKILL'), 8_000);
  await proc.exited;
  clearTimeout(timer);
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Polls `check` until it returns true; fails when `proc` exits or 60 s pass. */
async function waitUntil(proc: Proc, check: () => Promise<boolean>): Promise<void> {
  const deadline = Date.now() + 60_000;
  for (;;) {
    if (proc.exitText() !== undefined) {
      fail(
        `${proc.name} stopped (${proc.exitText()}): ${proc.argv.join(' ')}\n${logTail(proc.name)}`,
      );
    }
    if (Date.now() > deadline) fail(`${proc.name} not ready after 60 s: ${proc.argv.join(' ')}`);
    try {
      if (await check()) return;
    } catch {
      // not listening yet
    }
    await sleep(100);
  }
}

/** Any HTTP answer means the server listens. */
const answers = (url: string) => async () => {
  const response = await fetch(url);
  await response.body?.cancel();
  return true;
};

// ---------------------------------------------------------------------------------------------
// Load

/** One cell as the load generator reports it (`bench/fixtures/load.ts`); NaN arrives as null. */
interface LoadResult {
  completed: number;
  errors: number;
  firstError?: string;
  windowS: number | null;
  streamsPerS: number | null;
  cpuS: number | null;
  busy: (number | null)[];
  ttft: { p50: number | null; p99: number | null };
  samples: number[];
}

interface Harness {
  workers: Proc;
  load: Proc;
  addresses: string[];
  /** The worker request Switchboard produced for `CHAT`. */
  workerRequest?: unknown;
  /** The shared OpenAI-compatible upstream (`startUpstream`), once the worker request is known. */
  upstream?: { proc: Proc; register: Proc; v1: string };
}

async function runLoad(
  harness: Harness,
  command: {
    target: 'http' | 'plane';
    url?: string;
    headers?: Record<string, string>;
    body: unknown;
    concurrency: number;
    warmupMs: number;
    durationMs: number;
    maxRequests: number;
    cpuPid?: number;
  },
): Promise<LoadResult> {
  const limitMs = command.warmupMs + command.durationMs + LIMIT_EXTRA_MS;
  harness.load.send(
    JSON.stringify({ ...command, limitMs, minTokens: TOKENS, addresses: harness.addresses }),
  );
  // The window may last 1.25 times the warm-up; then in-flight streams finish (60 s at most).
  return JSON.parse(await harness.load.line(3 * limitMs + 60_000)) as LoadResult;
}

// ---------------------------------------------------------------------------------------------
// Stats

const num = (n: number | null | undefined) => (typeof n === 'number' ? n : NaN);

function median(values: readonly number[]): number {
  const sorted = values.filter((v) => !Number.isNaN(v)).sort((a, b) => a - b);
  if (sorted.length === 0) return NaN;
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
}

/** A path's cells pooled. */
interface PathStats {
  reps: number;
  /** Streams counted (started inside a window and completed). */
  n: number;
  errors: number;
  firstError?: string;
  p50: number;
  p90: number;
  p99: number;
  max: number;
  /** Median over reps of streams finished per second of window. */
  streamsPerS: number;
  /** Per rep, for ratios within a rep. */
  repStreamsPerS: number[];
  /** CPU time of the measured process per finished stream, microseconds (all windows pooled). */
  cpuUs: number;
  /** CPU share of the measured process over the windows (1 = one core). */
  cpu: number;
  /** Share of CPU 0 and CPU 1 busy over the windows (every process on the machine). */
  busy: number[];
}

function pool(cells: readonly LoadResult[]): PathStats {
  const samples = cells.flatMap((c) => c.samples).sort((a, b) => a - b);
  const windowS = cells.reduce((sum, c) => sum + num(c.windowS), 0);
  const cpuS = cells.reduce((sum, c) => sum + num(c.cpuS), 0);
  const finished = cells.reduce((sum, c) => sum + num(c.streamsPerS) * num(c.windowS), 0);
  const firstError = cells.find((c) => c.firstError)?.firstError;
  return {
    reps: cells.length,
    n: samples.length,
    errors: cells.reduce((sum, c) => sum + c.errors, 0),
    ...(firstError ? { firstError } : {}),
    p50: percentile(samples, 50),
    p90: percentile(samples, 90),
    p99: percentile(samples, 99),
    max: samples.at(-1) ?? NaN,
    streamsPerS: median(cells.map((c) => num(c.streamsPerS))),
    repStreamsPerS: cells.map((c) => num(c.streamsPerS)),
    cpuUs: (cpuS / finished) * 1e6,
    cpu: cpuS / windowS,
    busy: [0, 1].map((i) =>
      cells.reduce((sum, c) => sum + num(c.busy[i]) * num(c.windowS), 0) / windowS
    ),
  };
}

// ---------------------------------------------------------------------------------------------
// Phases

async function startSwitchboard(
  runtime: Runtime,
  name: string,
  fileKv: string,
  flags: string[] = [],
  models: readonly string[] = [MODEL],
): Promise<{ proc: Proc; url: string }> {
  const port = await freePort();
  const argv = [
    ...runtimeArgv(runtime, switchboardEntry(runtime), flags),
    '--discovery-backend',
    'file',
    '--request-plane',
    'tcp',
    '--router-mode',
    'round-robin',
    '--http-host',
    HOST,
    '--http-port',
    String(port),
  ];
  const proc = launch(name, argv, { cpu: 0, env: { DYN_FILE_KV: fileKv } });
  const base = `http://${HOST}:${port}`;
  await waitForModels(proc, base, models);
  return { proc, url: `${base}/v1/chat/completions` };
}

/** Waits until the Switchboard at `base` lists every model of `models`. */
async function waitForModels(proc: Proc, base: string, models: readonly string[]): Promise<void> {
  await waitUntil(proc, async () => {
    const response = await fetch(`${base}/v1/models`);
    const body = await response.json() as { data?: { id: string }[] };
    const listed = new Set((body.data ?? []).map((m) => m.id));
    return response.status === 200 && models.every((m) => listed.has(m));
  });
}

/**
 * The shared OpenAI-compatible upstream: `bench/fixtures/relay.ts` on the harness runtime (CPU 1)
 * in front of the worker, held in discovery by `switchboard register` (CPU 1) as
 * `PASSTHROUGH_MODEL`, so every Switchboard started after this serves it too.
 */
async function startUpstream(options: Options, harness: Harness, fileKv: string): Promise<void> {
  const port = await freePort();
  const proc = launch('upstream', [
    ...runtimeArgv(options.harness, 'bench/fixtures/relay.ts'),
    '--http-host',
    HOST,
    '--http-port',
    String(port),
    '--worker',
    harness.addresses[0]!,
    '--request',
    JSON.stringify(harness.workerRequest),
    '--model',
    MODEL,
  ], { cpu: 1 });
  const v1 = `http://${HOST}:${port}/v1`;
  await waitUntil(proc, answers(`${v1}/models`));
  const register = launch('register', [
    ...runtimeArgv(options.harness, switchboardEntry(options.harness)),
    'register',
    '--url',
    v1,
    '--model-name',
    PASSTHROUGH_MODEL,
    '--upstream-model',
    MODEL,
    '--discovery-backend',
    'file',
  ], { cpu: 1, env: { DYN_FILE_KV: fileKv } });
  harness.upstream = { proc, register, v1 };
}

/** The bare Hono byte relay (`bench/fixtures/byte-relay.ts`) in front of the shared upstream. */
async function startByteRelay(
  runtime: Runtime,
  name: string,
  upstream: string,
): Promise<{ proc: Proc; url: string }> {
  const port = await freePort();
  const argv = [
    ...runtimeArgv(runtime, 'bench/fixtures/byte-relay.ts'),
    '--http-host',
    HOST,
    '--http-port',
    String(port),
    '--upstream',
    upstream,
  ];
  const proc = launch(name, argv, { cpu: 0 });
  const base = `http://${HOST}:${port}`;
  await waitUntil(proc, answers(`${base}/`));
  return { proc, url: `${base}/v1/chat/completions` };
}

interface Portkey {
  proc: Proc;
  url: string;
  headers: Record<string, string>;
  version: string;
}

/** Portkey on Node (CPU 0), proxying to the shared upstream (CPU 1). */
async function startPortkey(upstream: string): Promise<Portkey> {
  const port = await freePort();
  const proc = launch(
    'portkey',
    [
      'node',
      'node_modules/@portkey-ai/gateway/build/start-server.js',
      `--port=${port}`,
      '--headless',
    ],
    { cpu: 0, cwd: join(ROOT, 'bench/portkey'), env: { NODE_ENV: 'production' } },
  );
  await waitUntil(proc, answers(`http://${HOST}:${port}/`));
  const pkg = JSON.parse(readFileSync(join(ROOT, PORTKEY_DIR, 'package.json'), 'utf8')) as {
    version: string;
  };
  return {
    proc,
    url: `http://${HOST}:${port}/v1/chat/completions`,
    headers: {
      'x-portkey-provider': 'openai',
      'x-portkey-custom-host': upstream,
      authorization: 'Bearer unused',
    },
    version: pkg.version,
  };
}

async function startHarness(options: Options, fileKv: string): Promise<Harness> {
  const workers = launch(
    'workers',
    [
      ...runtimeArgv(options.harness, 'bench/fixtures/workers.ts'),
      '--file-kv',
      fileKv,
      '--speedup-ratio',
      '1000',
      '--max-num-seqs',
      String(Math.max(1024, ...options.concurrency)),
    ],
    { cpu: 1, pipe: true },
  );
  const ready = JSON.parse(await workers.line()) as { ready: boolean; addresses: string[] };
  const load = launch('load', runtimeArgv(options.harness, 'bench/fixtures/load.ts'), {
    cpu: 1,
    pipe: true,
    env: { BUN_CONFIG_MAX_HTTP_REQUESTS: '65536' },
  });
  await load.line();
  return { workers, load, addresses: ready.addresses };
}

/** One probe through Switchboard; the workers print the request they received. */
async function captureWorkerRequest(harness: Harness, url: string): Promise<void> {
  const response = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(CHAT),
  });
  const text = await response.text();
  if (response.status !== 200 || !text.includes('data: [DONE]')) {
    fail(`The probe through Switchboard failed: ${response.status} ${text.slice(0, 300)}`);
  }
  const captured = JSON.parse(await harness.workers.line(10_000)) as { captured?: unknown };
  if (!captured.captured) fail('The workers did not report the request they received');
  harness.workerRequest = captured.captured;
}

interface Target {
  url?: string;
  headers?: Record<string, string>;
  /** The chat request. @default CHAT */
  body?: unknown;
  /** The process whose CPU time counts for this path. */
  proc: Proc;
}

interface Row {
  runtime: Runtime;
  concurrency: number;
  paths: Partial<Record<Path, PathStats>>;
}

async function cells(
  options: Options,
  harness: Harness,
  runtime: Runtime,
  concurrency: number,
  targets: Partial<Record<Path, Target>>,
): Promise<Row> {
  const paths = Object.keys(targets) as Path[];
  const reps = concurrency === options.capacityConcurrency
    ? options.rounds
    : concurrency === 1 || concurrency >= 1024
    ? 1
    : options.reps;
  const durationMs = options.duration * 1000 * (concurrency === 1 ? 2 : 1);
  const results: Partial<Record<Path, LoadResult[]>> = {};
  for (let rep = 0; rep < reps; rep++) {
    // Rotate the order, so that a drift in machine speed does not always hit the same path.
    for (const path of paths.map((_, i) => paths[(i + rep) % paths.length]!)) {
      const target = targets[path]!;
      const r = await runLoad(harness, {
        ...(path === 'straight' ? { target: 'plane' as const, body: harness.workerRequest } : {
          target: 'http' as const,
          url: target.url,
          headers: target.headers,
          body: target.body ?? CHAT,
        }),
        concurrency,
        warmupMs: options.warmup * 1000,
        durationMs,
        maxRequests: options.maxRequests,
        cpuPid: target.proc.pid,
      });
      (results[path] ??= []).push(r);
      log(
        `[${runtime}] x${concurrency} ${path} ${rep + 1}/${reps}: ${r.completed} streams, ` +
          `${r.errors} errors, TTFT p50 ${ms(num(r.ttft.p50))} p99 ${ms(num(r.ttft.p99))} ms, ` +
          `${int(num(r.streamsPerS))} streams/s, ` +
          `${int((num(r.cpuS) / (num(r.streamsPerS) * num(r.windowS))) * 1e6)} us CPU/stream, ` +
          `CPU0 ${pct(num(r.busy[0]))} CPU1 ${pct(num(r.busy[1]))}` +
          (r.firstError ? `; first error: ${r.firstError}` : ''),
      );
    }
  }
  const pooled: Row['paths'] = {};
  for (const path of paths) pooled[path] = pool(results[path]!);
  return { runtime, concurrency, paths: pooled };
}

// ---------------------------------------------------------------------------------------------
// Profiles

interface CpuProfile {
  nodes: {
    id: number;
    callFrame: { functionName: string; url: string; lineNumber: number };
    children?: number[];
  }[];
  samples: number[];
  timeDeltas: number[];
}

interface ProfileSummary {
  runtime: Runtime;
  file: string;
  /** Non-idle samples after the skipped start. */
  samples: number;
  /** Share of non-idle samples by function and by source file. */
  functions: { name: string; share: number }[];
  files: { name: string; share: number }[];
  /** Inclusive time of functions in src/ and routes/. */
  inclusive: { name: string; share: number }[];
}

function shortUrl(url: string): string {
  if (!url) return '(native)';
  let path = url.replace(/^file:\/\//, '');
  if (path.startsWith(ROOT)) path = path.slice(ROOT.length);
  return path.replace(/^.*node_modules\//, 'node_modules/');
}

/**
 * Self time by function and by file, and inclusive time of this repository's functions (a
 * function counts once per sample however deep it recurses), over the samples taken after
 * `skipMs` from the profile's start (start-up and warm-up left out).
 */
function summarizeProfile(runtime: Runtime, file: string, skipMs: number): ProfileSummary {
  const profile = JSON.parse(readFileSync(file, 'utf8')) as CpuProfile;
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of profile.nodes) for (const child of n.children ?? []) parent.set(child, n.id);
  // Line 1 means "unknown" here: Node reports tsx-transpiled modules that way.
  const label = (frame: CpuProfile['nodes'][number]['callFrame']) =>
    `${frame.functionName || '(anonymous)'}${frame.url ? ` ${shortUrl(frame.url)}` : ''}${
      frame.url && frame.lineNumber > 0 ? `:${frame.lineNumber + 1}` : ''
    }`;
  const functions = new Map<string, number>();
  const files = new Map<string, number>();
  const inclusive = new Map<string, number>();
  const add = (map: Map<string, number>, key: string, dt: number) =>
    map.set(key, (map.get(key) ?? 0) + dt);
  // Each sample weighs one sampling interval: Bun's profiles have no "(idle)" samples, and the
  // time delta of the first sample after an idle stretch covers the idle time.
  let total = 0;
  let clock = 0;
  profile.samples.forEach((id, i) => {
    clock += profile.timeDeltas[i] ?? 0;
    const node = byId.get(id);
    if (!node || clock < skipMs * 1000) return;
    const { functionName, url } = node.callFrame;
    if (functionName === '(idle)' || functionName === '(root)') return;
    total++;
    add(functions, label(node.callFrame), 1);
    add(files, url ? shortUrl(url) : functionName.startsWith('(') ? functionName : '(native)', 1);
    const seen = new Set<string>();
    for (let at: number | undefined = id; at !== undefined; at = parent.get(at)) {
      const frame = byId.get(at)?.callFrame;
      if (!frame || !/^(src|routes)\//.test(shortUrl(frame.url))) continue;
      const key = label(frame);
      if (!seen.has(key)) {
        seen.add(key);
        add(inclusive, key, 1);
      }
    }
  });
  const top = (map: Map<string, number>, n: number) =>
    [...map.entries()].sort((a, b) => b[1] - a[1]).slice(0, n).map(([name, t]) => ({
      name,
      share: t / total,
    }));
  return {
    runtime,
    file,
    samples: total,
    functions: top(functions, 20),
    files: top(files, 15),
    inclusive: top(inclusive, 20),
  };
}

async function profileRun(
  options: Options,
  harness: Harness,
  runtime: Runtime,
  fileKv: string,
): Promise<ProfileSummary | undefined> {
  const dir = join(workDir, `profile-${runtime}`);
  const flags = [`--cpu-prof`, `--cpu-prof-dir=${dir}`];
  const spawnedAt = performance.now();
  const { proc, url } = await startSwitchboard(runtime, `profile-${runtime}`, fileKv, flags);
  let skipMs = 0;
  try {
    const load = {
      target: 'http' as const,
      url,
      body: CHAT,
      concurrency: PROFILE_CONCURRENCY,
      maxRequests: options.maxRequests,
    };
    await runLoad(harness, { ...load, warmupMs: 1000, durationMs: 1000 });
    // The profile starts a little after the spawn, so this skips a little more than start-up.
    skipMs = performance.now() - spawnedAt;
    const result = await runLoad(harness, { ...load, warmupMs: 500, durationMs: 4000 });
    log(`[${runtime}] profiled run: ${result.completed} streams, ${result.errors} errors`);
  } finally {
    await stop(proc);
  }
  const files = existsSync(dir) ? readdirSync(dir).filter((f) => f.endsWith('.cpuprofile')) : [];
  if (files.length === 0) {
    log(`[${runtime}] no .cpuprofile written in ${dir}`);
    return undefined;
  }
  return summarizeProfile(runtime, join(dir, files[0]!), skipMs);
}

// ---------------------------------------------------------------------------------------------
// Report

const int = (n: number) => Number.isFinite(n) ? Math.round(n).toLocaleString('en-US') : 'n/a';
const ms = (n: number) =>
  Number.isFinite(n) ? (Math.abs(n) < 10 ? n.toFixed(2) : n.toFixed(1)) : 'n/a';
const pct = (n: number) => Number.isFinite(n) ? `${Math.round(n * 100)}%` : 'n/a';
const pct1 = (n: number) => `${(n * 100).toFixed(1)}%`;
const fixed2 = (n: number) => Number.isFinite(n) ? n.toFixed(2) : 'n/a';
const signed = (n: number) => Number.isFinite(n) ? `${n >= 0 ? '+' : ''}${ms(n)}` : 'n/a';
const yes = (ok: boolean) => ok ? 'yes' : 'no';

interface Machine {
  date: string;
  nproc: number;
  cpu: string;
  os: string;
  loadStart: string;
  loadEnd?: string;
  versions: Partial<Record<Runtime | 'portkey', string>>;
}

function firstLine(cmd: string, args: string[]): string | undefined {
  const result = spawnSync(cmd, args, { cwd: ROOT, encoding: 'utf8' });
  if (result.error) return undefined;
  return `${result.stdout}${result.stderr}`.split('\n')[0]?.trim() || undefined;
}

const loadAverage = () => os.loadavg().map((n) => n.toFixed(2)).join(' ');

function machineInfo(): Machine {
  let cpu = os.cpus()[0]?.model ?? 'unknown';
  try {
    const line = readFileSync('/proc/cpuinfo', 'utf8').split('\n').find((l) =>
      l.startsWith('model name')
    );
    if (line) cpu = line.slice(line.indexOf(':') + 1).trim();
  } catch { /* not Linux */ }
  return {
    date: new Date().toISOString().slice(0, 10),
    nproc: os.availableParallelism(),
    cpu,
    os: `${os.type()} ${os.release()} ${os.arch()}`,
    loadStart: loadAverage(),
    versions: {
      node: process.version.replace(/^v/, ''),
      bun: firstLine('node_modules/.bin/bun', ['--version']),
      deno: firstLine('node_modules/.bin/deno', ['--version'])?.split(' ')[1],
    },
  };
}

interface Results {
  machine: Machine;
  options: Options;
  promptTokens: number;
  rows: Row[];
  portkey: { status: string; runtime?: Runtime };
  profiles: ProfileSummary[];
  totalS: number;
}

function ttftTable(r: Results): string[] {
  const o = r.options;
  const out = [
    '### TTFT (ms): straight to the worker vs through Switchboard and the byte relay',
    '',
    `Closed loop of N streams, ${o.warmup} s warm-up and a window of at least ${o.duration} s ` +
    `per cell; ${o.reps} reps pooled (${o.rounds} at N = ${o.capacityConcurrency}, 1 at N = 1 ` +
    'and N >= 1024). Added = switchboard (main path) - straight at each percentile. Main path ' +
    'CPU = its share of one core over the windows. Passthrough and byte relay go through the ' +
    'shared upstream (relay.ts on CPU 1), one hop more than straight.',
    '',
    '| Runtime | N | straight p50 / p99 | main path p50 / p99 | added p50 | added p99 | ' +
    'passthrough p50 / p99 | byte relay p50 / p99 | streams/s straight / main / passthrough / ' +
    `byte relay | main path CPU | added p50 <= ${GOALS.ttftP50} ms at N = 1 |`,
    '| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |',
  ];
  for (const row of r.rows) {
    const s = row.paths.straight!;
    const b = row.paths.switchboard!;
    const pass = row.paths.passthrough!;
    const bytes = row.paths['byte-relay']!;
    const addedP50 = b.p50 - s.p50;
    const addedP99 = b.p99 - s.p99;
    out.push(
      `| ${row.runtime} | ${row.concurrency} | ${ms(s.p50)} / ${ms(s.p99)} | ` +
        `${ms(b.p50)} / ${ms(b.p99)} | ${signed(addedP50)} | ${signed(addedP99)} | ` +
        `${ms(pass.p50)} / ${ms(pass.p99)} | ${ms(bytes.p50)} / ${ms(bytes.p99)} | ` +
        `${int(s.streamsPerS)} / ${int(b.streamsPerS)} / ${int(pass.streamsPerS)} / ` +
        `${int(bytes.streamsPerS)} | ${pct(b.cpu)} | ` +
        `${row.concurrency === 1 ? yes(addedP50 <= GOALS.ttftP50) : '-'} |`,
    );
  }
  const errors = r.rows.flatMap((row) =>
    Object.entries(row.paths).filter(([, d]) => d.errors > 0).map(([p, d]) =>
      `${row.runtime} x${row.concurrency} ${p}: ${d.errors} errors (${d.firstError})`
    )
  );
  out.push('', errors.length ? `Errors: ${errors.join('; ')}` : 'No errors.');
  return out;
}

/** The Node row's Portkey cells (run in the same rounds), if any. */
const portkeyOf = (r: Results) => r.rows.find((row) => row.paths.portkey)?.paths.portkey;

function cpuTable(r: Results): string[] {
  const o = r.options;
  const rows = r.rows.filter((row) => row.concurrency === o.capacityConcurrency);
  if (rows.length === 0) return [];
  const pk = portkeyOf(r);
  const out = [
    '',
    `### CPU per stream on one core: ${o.capacityConcurrency} streams, proxy on CPU 0, load, ` +
    'workers and the upstream on CPU 1',
    '',
    `${o.rounds} rounds, paths in rotating order. CPU us/stream = CPU time of the proxy process ` +
    'over its windows / streams finished in them. Goals (issue #13): main path <= ' +
    `${GOALS.mainVsByteRelay}x the byte relay, passthrough <= ${GOALS.passthroughVsByteRelay}x ` +
    `the byte relay, main path <= ${fixed2(GOALS.mainVsPortkey)}x Portkey (Node, same rounds).`,
    '',
    '| Runtime | byte relay | passthrough | main path | Portkey | main / byte relay | ' +
    'passthrough / byte relay | main / Portkey | streams/s byte relay / passthrough / main / ' +
    'Portkey | proxy CPU byte relay / passthrough / main | worker CPU us/stream | goals met ' +
    '(main/byte, pass/byte, main/Portkey) |',
    '| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |',
  ];
  for (const row of rows) {
    const bytes = row.paths['byte-relay']!;
    const pass = row.paths.passthrough!;
    const main = row.paths.switchboard!;
    const own = row.paths.portkey;
    const mainVsBytes = main.cpuUs / bytes.cpuUs;
    const passVsBytes = pass.cpuUs / bytes.cpuUs;
    const mainVsPortkey = own ? main.cpuUs / own.cpuUs : NaN;
    out.push(
      `| ${row.runtime} | ${int(bytes.cpuUs)} | ${int(pass.cpuUs)} | ${int(main.cpuUs)} | ` +
        `${own ? int(own.cpuUs) : '-'} | ${fixed2(mainVsBytes)} | ${fixed2(passVsBytes)} | ` +
        `${own ? fixed2(mainVsPortkey) : '-'} | ${int(bytes.streamsPerS)} / ` +
        `${int(pass.streamsPerS)} / ${int(main.streamsPerS)} / ` +
        `${own ? int(own.streamsPerS) : '-'} | ${pct(bytes.cpu)} / ${pct(pass.cpu)} / ` +
        `${pct(main.cpu)} | ${int(row.paths.straight!.cpuUs)} | ` +
        `${yes(mainVsBytes <= GOALS.mainVsByteRelay)}, ` +
        `${yes(passVsBytes <= GOALS.passthroughVsByteRelay)}, ` +
        `${own ? yes(mainVsPortkey <= GOALS.mainVsPortkey) : '-'} |`,
    );
  }
  if (pk) {
    out.push(
      '',
      `Portkey (${r.portkey.status}): TTFT p50 ${ms(pk.p50)} / p99 ${ms(pk.p99)} ms, ` +
        `${pct(pk.cpu)} of a core, ${pk.errors} errors. It waits a fixed 25 ms before relaying a ` +
        "stream's first chunk (in its TTFT and stream duration), and answers every stream with " +
        'a 500 unless @hono/node-server is pinned to 1.13.5 (`overrides` in ' +
        'bench/portkey/package.json).',
    );
  } else out.push('', `Portkey not measured: ${r.portkey.status}.`);
  return out;
}

function profileTables(r: Results): string[] {
  return r.profiles.flatMap((p) => [
    '',
    `### Profile: Switchboard on ${p.runtime}, ${PROFILE_CONCURRENCY} streams ` +
    `(${int(p.samples)} non-idle samples after warm-up)`,
    '',
    '| Self time | Function |',
    '| ---: | --- |',
    ...p.functions.map((f) => `| ${pct1(f.share)} | \`${f.name}\` |`),
    '',
    '| Self time | File |',
    '| ---: | --- |',
    ...p.files.map((f) => `| ${pct1(f.share)} | \`${f.name}\` |`),
    '',
    '| Inclusive | Function in src/ or routes/ |',
    '| ---: | --- |',
    ...p.inclusive.map((f) => `| ${pct1(f.share)} | \`${f.name}\` |`),
  ]);
}

function report(r: Results): string {
  const o = r.options;
  const v = r.machine.versions;
  const busyNote = Number(r.machine.loadStart.split(' ')[0]) > 1.5
    ? ['', 'Other processes were using the CPUs (load average above): expect skewed latencies.']
    : [];
  const out: string[] = [
    `Date: ${r.machine.date}; ${r.machine.nproc} CPUs (${r.machine.cpu}), ${r.machine.os}`,
    `Load average (1, 5, 15 min) at start ${r.machine.loadStart}, at end ${r.machine.loadEnd}`,
    `Runtimes: node ${v.node}, bun ${v.bun}, deno ${v.deno}` +
    (v.portkey ? `; @portkey-ai/gateway ${v.portkey}` : ''),
    `Workers (mocker, speedup 1000), load generator and the OpenAI-compatible upstream ` +
    `(bench/fixtures/relay.ts) on ${o.harness}, CPU 1; proxies on CPU 0. ` +
    `Chat request: ${r.promptTokens} prompt tokens, ${TOKENS} output tokens. ` +
    `Total ${Math.round(r.totalS)} s.`,
    ...busyNote,
    '',
    ...ttftTable(r),
    ...cpuTable(r),
    ...profileTables(r),
  ];
  return `${out.join('\n')}\n`;
}

// ---------------------------------------------------------------------------------------------

async function main(): Promise<void> {
  const options = parseOptions(process.argv.slice(2));
  const started = performance.now();
  if (!firstLine('taskset', ['--version'])) fail('taskset (util-linux) not found on PATH');
  if (os.availableParallelism() < 2) fail('needs at least 2 CPUs (proxies on 0, load on 1)');
  for (const bin of ['node_modules/.bin/bun', 'node_modules/.bin/deno']) {
    if (!existsSync(join(ROOT, bin))) fail(`${bin} is missing: run \`npm ci\` first`);
  }
  const has = (phase: Phase) => options.phases.includes(phase);
  const machine = machineInfo();
  workDir = mkdtempSync(join(os.tmpdir(), 'switchboard-overhead-'));
  const fileKv = join(workDir, 'kv');
  log(`bench:overhead: logs and profiles in ${workDir}`);

  const results: Results = {
    machine,
    options,
    promptTokens: 0,
    rows: [],
    portkey: { status: 'not run' },
    profiles: [],
    totalS: 0,
  };
  const portkeyInstalled = existsSync(join(ROOT, PORTKEY_DIR, 'build/start-server.js'));
  if (!options.portkey || !has('portkey')) results.portkey.status = 'left out by the options';
  else if (!portkeyInstalled) {
    results.portkey.status = 'not installed (run `npm install --prefix bench/portkey`)';
  }
  // Portkey runs during the Node phase (its own runtime), else during the first one.
  const portkeyRuntime = options.runtimes.includes('node') ? 'node' : options.runtimes[0];

  const harness = await startHarness(options, fileKv);
  try {
    for (const runtime of options.runtimes) {
      if (!has('ttft') && !has('portkey') && harness.workerRequest) break;
      const models = harness.upstream ? [MODEL, PASSTHROUGH_MODEL] : [MODEL];
      const sb = await startSwitchboard(runtime, `switchboard-${runtime}`, fileKv, [], models);
      let byteRelay: { proc: Proc; url: string } | undefined;
      let portkey: Portkey | undefined;
      try {
        if (!harness.workerRequest) {
          await captureWorkerRequest(harness, sb.url);
          const ids = (harness.workerRequest as { token_ids?: unknown[] }).token_ids;
          results.promptTokens = ids?.length ?? 0;
        }
        if (!harness.upstream) {
          await startUpstream(options, harness, fileKv);
          await waitForModels(sb.proc, sb.url.replace(/\/v1\/chat\/completions$/, ''), [
            MODEL,
            PASSTHROUGH_MODEL,
          ]);
        }
        const upstream = harness.upstream!.v1;
        byteRelay = await startByteRelay(runtime, `byte-relay-${runtime}`, upstream);
        const withPortkey = runtime === portkeyRuntime && options.portkey && has('portkey') &&
          portkeyInstalled;
        if (withPortkey) {
          portkey = await startPortkey(upstream);
          machine.versions.portkey = portkey.version;
          results.portkey = {
            status: `Portkey ${portkey.version} on Node ${machine.versions.node}, upstream ` +
              `bench/fixtures/relay.ts on ${options.harness} (CPU 1)`,
            runtime,
          };
        }
        for (const concurrency of options.concurrency) {
          const capacityCell = concurrency === options.capacityConcurrency;
          if (!has('ttft') && !(capacityCell && portkey)) continue;
          results.rows.push(
            await cells(options, harness, runtime, concurrency, {
              straight: { proc: harness.workers },
              switchboard: { url: sb.url, proc: sb.proc },
              passthrough: {
                url: sb.url,
                proc: sb.proc,
                body: { ...CHAT, model: PASSTHROUGH_MODEL },
              },
              'byte-relay': { url: byteRelay.url, proc: byteRelay.proc },
              ...(portkey && capacityCell
                ? { portkey: { url: portkey.url, headers: portkey.headers, proc: portkey.proc } }
                : {}),
            }),
          );
        }
      } finally {
        await Promise.all([stop(sb.proc), stop(byteRelay?.proc), stop(portkey?.proc)]);
      }
    }
    for (const runtime of has('profile') ? options.profile : []) {
      const summary = await profileRun(options, harness, runtime, fileKv);
      if (summary) results.profiles.push(summary);
    }
  } finally {
    harness.load.child.stdin?.end();
    await stop(harness.upstream?.register);
    await Promise.all([stop(harness.load), stop(harness.workers), stop(harness.upstream?.proc)]);
  }
  machine.loadEnd = loadAverage();
  results.totalS = (performance.now() - started) / 1000;
  process.stdout.write(options.json ? `${JSON.stringify(results, null, 2)}\n` : report(results));
  finishBench('overhead', results, { stdoutIsJson: options.json });
  // Keep the profiles; remove the rest (discovery files, logs).
  if (results.profiles.length === 0) rmSync(workDir, { recursive: true, force: true });
  else {
    rmSync(fileKv, { recursive: true, force: true });
    log(`bench:overhead: profiles kept in ${workDir}`);
  }
}

await main();
