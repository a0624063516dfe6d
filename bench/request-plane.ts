/**
 * Request-plane overhead: the round trip of one stream (send -> last item) through the tcp, http
 * and nats request planes, as a ratio of calling the same handler in process, at several numbers
 * of concurrent streams, on Node, Bun and Deno. Results go in `docs/benchmarks.md`.
 *
 *   npm run bench:plane [-- --runtimes node,bun,deno --planes tcp,tcp-mux,http,nats --concurrency 1,64,256
 *                           --duration 2 --warmup 1 --rounds 2 --max-requests 20000 --items 16
 *                           --json]
 *
 * The driver (this file, run by Node) spawns the same file with `--child` on each runtime in turn;
 * a child measures every cell and prints its results as one JSON line on stdout, and the driver
 * prints one table. Worker (`RequestPlaneServer`) and frontend (`RequestPlaneClient`) live in the
 * child's one process, so each stream costs the CPU of both sides of the wire on one event loop;
 * only nats-server is another process. The NATS plane needs it: `bash scripts/services.sh start`
 * (a child that cannot reach it skips the plane and says why).
 *
 * The handler yields `--items` small items `{token_ids:[i]}` with no delay. The in-process
 * baseline consumes that async generator directly; every plane carries the same request and items.
 * Both create an AbortController and a random request id per stream, as the frontend does.
 * A cell (one path at one concurrency) first runs unmeasured for `--warmup` seconds and at least 8
 * streams per concurrent stream (connection pools grow, code gets compiled). Then `concurrency`
 * loops each send one request, read its stream to the end and start the next, for `--duration`
 * seconds or `--max-requests` streams (10x that in process, ~100x faster) in all. That time is
 * split into `--rounds` rounds that alternate the paths (in-process, tcp, http, nats, in-process,
 * ...), each after a short re-warm-up (0.5 s and 4 streams per loop), so a burst of other load on
 * the machine hits every path alike; latency percentiles pool the rounds' streams. The measured
 * window follows its warm-up without a pause, so it starts in a steady state rather than with
 * every loop sending at the same instant.
 */
import { finishBench } from './_provenance.ts';
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import os from 'node:os';
import process from 'node:process';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { createHttpPlaneClient, createHttpPlaneServer } from '../src/adapters/plane/http.ts';
import {
  createNatsPlaneClient,
  createNatsPlaneServer,
  DEFAULT_NATS_SERVER,
} from '../src/adapters/plane/nats.ts';
import { createTcpPlaneClient, createTcpPlaneServer } from '../src/adapters/plane/tcp.ts';
import type { EndpointId, TransportAddress } from '../src/core/discovery/types.ts';
import type {
  EndpointHandler,
  HandlerContext,
  RequestPlaneClient,
  RequestPlaneServer,
} from '../src/core/plane/types.ts';
import { createNodeNetwork } from '../src/runtime/net.ts';
import { planeFetch } from '../src/runtime/http-fetch-node.ts';
import { detectRuntime, type RuntimeName, serve } from '../src/runtime/serve.ts';

type Runtime = RuntimeName;
type Plane = 'tcp' | 'tcp-mux' | 'http' | 'nats';
type Path = 'in-process' | Plane;

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const RUNTIMES: readonly Runtime[] = ['node', 'bun', 'deno'];
const PLANES: readonly Plane[] = ['tcp', 'tcp-mux', 'http', 'nats'];
const ENDPOINT: EndpointId = { namespace: 'bench', component: 'backend', endpoint: 'generate' };
const INSTANCE_ID = '1b3e';
/** A small `PreprocessedRequest`-like body; the plane does not look inside it. */
const BODY = {
  token_ids: [128000, 9906, 1917, 0],
  stop_conditions: { max_tokens: 16 },
  sampling_options: { temperature: 0 },
};
/** The in-process path gets this many times `--max-requests`. */
const IN_PROCESS_FACTOR = 10;
/** Warm-up lasts until at least this many streams per concurrent stream were started. */
const WARMUP_STREAMS = 8;
/** Before each later round: this long, and at least this many streams per concurrent stream. */
const REWARM_SECONDS = 0.5;
const REWARM_STREAMS = 4;
/** How long setting a plane up (binding, connecting to nats-server) may take. */
const SETUP_TIMEOUT_MS = 5_000;

interface Options {
  runtimes: Runtime[];
  planes: Plane[];
  concurrency: number[];
  duration: number;
  warmup: number;
  rounds: number;
  maxRequests: number;
  items: number;
  json: boolean;
  child: boolean;
}

function fail(message: string): never {
  process.stderr.write(`bench:plane: ${message}\n`);
  process.exit(1);
}

function parseOptions(argv: string[]): Options {
  const { values } = parseArgs({
    args: argv,
    options: {
      runtimes: { type: 'string', default: RUNTIMES.join(',') },
      planes: { type: 'string', default: PLANES.join(',') },
      concurrency: { type: 'string', default: '1,64,256' },
      duration: { type: 'string', default: '2' },
      warmup: { type: 'string', default: '1' },
      rounds: { type: 'string', default: '2' },
      'max-requests': { type: 'string', default: '20000' },
      items: { type: 'string', default: '16' },
      json: { type: 'boolean', default: false },
      child: { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (values.help) {
    process.stdout.write(
      [
        'Usage: npm run bench:plane -- [options]',
        '  --runtimes LIST     comma-separated subset of node,bun,deno (default: all)',
        '  --planes LIST       comma-separated subset of tcp,tcp-mux,http,nats (default: all)',
        '  --concurrency LIST  concurrent streams per cell (default: 1,64,256)',
        '  --duration S        measured seconds per cell, split over the rounds (default: 2)',
        '  --rounds N          rounds per concurrency, alternating the paths (default: 2)',
        '  --warmup S          unmeasured seconds before each cell, and at least 8 streams per',
        '                      concurrent stream (default: 1)',
        '  --max-requests N    most streams started per cell; 10x that in process (default: 20000)',
        '  --items N           items per stream (default: 16)',
        '  --json              print the results as JSON instead of a table',
        '',
      ].join('\n'),
    );
    process.exit(0);
  }
  const list = (text: string) => text.split(',').map((s) => s.trim()).filter(Boolean);
  const oneOf = <T extends string>(name: string, text: string, allowed: readonly T[]): T[] => {
    const picked = list(text);
    for (const p of picked) {
      if (!allowed.includes(p as T)) fail(`Unknown ${name} "${p}": use ${allowed.join(', ')}`);
    }
    return picked as T[];
  };
  const positive = (name: string, text: string, integer: boolean) => {
    const n = Number(text);
    if (!(n > 0) || (integer && !Number.isInteger(n))) {
      fail(`--${name} must be a positive ${integer ? 'integer' : 'number'}, got "${text}"`);
    }
    return n;
  };
  return {
    runtimes: oneOf('runtime', values.runtimes, RUNTIMES),
    planes: oneOf('plane', values.planes, PLANES),
    concurrency: list(values.concurrency).map((c) => positive('concurrency', c, true)),
    duration: positive('duration', values.duration, false),
    warmup: Number(values.warmup) >= 0 ? Number(values.warmup) : fail('--warmup must be >= 0'),
    rounds: positive('rounds', values.rounds, true),
    maxRequests: positive('max-requests', values['max-requests'], true),
    items: positive('items', values.items, true),
    json: values.json,
    child: values.child,
  };
}

// ---------------------------------------------------------------------------------------------
// Child: measures every cell on the runtime it runs on.

interface Cell {
  path: Path;
  concurrency: number;
  /** Streams read to their end in the measured window. */
  streams: number;
  errors: number;
  firstError?: string;
  seconds: number;
  p50Us: number;
  p99Us: number;
  meanUs: number;
  streamsPerSecond: number;
  /** CPU time of this process (frontend and worker together) per stream. */
  cpuUsPerStream: number;
  /** The part of `cpuUsPerStream` spent in the kernel (sockets), 0 to 1. */
  cpuSystemShare: number;
  /** CPU time of nats-server per stream (nats cells, when its pid is known). */
  natsServerCpuUsPerStream?: number;
}

interface ChildResult {
  runtime: Runtime;
  version: string;
  cells: Cell[];
  /** Planes that could not be set up, with the reason. */
  skipped: Partial<Record<Plane, string>>;
}

/** Reads one stream to its end; resolves with the number of items. */
type Call = () => Promise<number>;

function runtimeVersion(runtime: Runtime): string {
  const g = globalThis as { Bun?: { version: string }; Deno?: { version: { deno: string } } };
  if (runtime === 'bun') return g.Bun?.version ?? '?';
  if (runtime === 'deno') return g.Deno?.version.deno ?? '?';
  return process.version.replace(/^v/, '');
}

function fixedStream(items: number): EndpointHandler {
  return async function* (_body: unknown, _context: HandlerContext) {
    for (let i = 0; i < items; i++) yield { token_ids: [i] };
  };
}

async function drain(stream: AsyncIterable<unknown>): Promise<number> {
  let n = 0;
  for await (const _ of stream) n++;
  return n;
}

function within<T>(promise: Promise<T>, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new Error(`${what} took longer than ${SETUP_TIMEOUT_MS} ms`)),
      SETUP_TIMEOUT_MS,
    );
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

interface PlaneUnderTest {
  call: Call;
  close(): Promise<void>;
}

async function setUpPlane(plane: Plane, handler: EndpointHandler): Promise<PlaneUnderTest> {
  let client: RequestPlaneClient;
  let server: RequestPlaneServer;
  switch (plane) {
    case 'tcp':
    case 'tcp-mux': {
      // `tcp` is the classic call-home (a new connection per stream), `tcp-mux` the response mux.
      const network = createNodeNetwork();
      const responseMux = plane === 'tcp-mux';
      client = createTcpPlaneClient({ network, responseMux });
      server = createTcpPlaneServer({ network, host: '127.0.0.1', responseMux });
      break;
    }
    case 'http':
      // The fetch the frontend uses on this runtime (src/runtime/infra.ts).
      client = createHttpPlaneClient({ fetch: planeFetch() });
      server = createHttpPlaneServer({ serve });
      break;
    case 'nats':
      client = createNatsPlaneClient({ servers: DEFAULT_NATS_SERVER });
      server = createNatsPlaneServer({ servers: DEFAULT_NATS_SERVER });
      break;
  }
  const close = async () => {
    await client.close().catch(() => {});
    await server.close().catch(() => {});
  };
  try {
    const address: TransportAddress = await within(
      server.serve(ENDPOINT, INSTANCE_ID, handler),
      `Serving on the ${plane} plane`,
    );
    const call: Call = async () => {
      const controller = new AbortController();
      const id = crypto.randomUUID();
      const stream = await client.send(address, { id, headers: {}, body: BODY }, {
        signal: controller.signal,
      });
      return await drain(stream);
    };
    await within(call(), `A first request on the ${plane} plane`);
    return { call, close };
  } catch (error) {
    await close();
    throw error;
  }
}

function percentile(sorted: Float64Array, p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.ceil(p * sorted.length) - 1)]!;
}

const CLOCK_TICKS_PER_SECOND = 100;

/** The pid of the nats-server `scripts/services.sh` started, if that is the one running. */
function natsServerPid(): number | undefined {
  try {
    const pid = Number(readFileSync(`${ROOT}.tmp/services/nats.pid`, 'utf8').trim());
    return Number.isInteger(pid) && pid > 0 && !Number.isNaN(processCpuMicros(pid))
      ? pid
      : undefined;
  } catch {
    return undefined;
  }
}

/** CPU time another process has used so far, from /proc (10 ms resolution), or NaN. */
function processCpuMicros(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return ((Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS_PER_SECOND) * 1e6;
  } catch {
    return NaN;
  }
}

interface Sample {
  /** Send -> last item of every stream started in the measured window. */
  latenciesUs: Float64Array;
  /** Streams (started at any time) that finished inside the measured window. */
  completed: number;
  /** Streams started in the measured window that failed. */
  errors: number;
  /** The first failure, warm-up included. */
  firstError?: string;
  /** Length of the measured window. */
  seconds: number;
  cpuUser: number;
  cpuSystem: number;
  natsCpu: number;
}

interface LoadOptions {
  concurrency: number;
  items: number;
  /** Unmeasured lead-in: at least this long... */
  warmupSeconds: number;
  /** ...and until this many streams were started (or 10 s more passed). */
  warmupStreams: number;
  /** The measured window: this long, or until `maxRequests` streams were started in it. */
  seconds: number;
  maxRequests: number;
  natsPid: number | undefined;
}

/**
 * `concurrency` loops of call-then-next. The measured window follows the warm-up without a
 * break, so the loops are not all started at the same instant when it opens: a burst of 256
 * simultaneous requests would measure the burst, not the steady state.
 */
async function load(call: Call, options: LoadOptions): Promise<Sample> {
  const { natsPid } = options;
  const latencies = new Float64Array(options.maxRequests);
  let phase: 'warmup' | 'measure' | 'done' = 'warmup';
  let warmupStarted = 0;
  let started = 0;
  let recorded = 0;
  let completed = 0;
  let errors = 0;
  let firstError: string | undefined;
  const begin = performance.now();
  const warmupEnd = begin + options.warmupSeconds * 1000;
  const warmupCap = warmupEnd + 10_000;
  let windowStart = 0;
  let windowEnd = 0;
  let cpuBefore = process.cpuUsage();
  let cpu = { user: 0, system: 0 };
  let natsBefore = NaN;
  let natsCpu = NaN;
  const natsNow = () => (natsPid === undefined ? NaN : processCpuMicros(natsPid));

  /** Moves through the phases; false once no new stream may start. */
  const advance = (now: number): boolean => {
    if (
      phase === 'warmup' &&
      ((now >= warmupEnd && warmupStarted >= options.warmupStreams) || now >= warmupCap)
    ) {
      phase = 'measure';
      windowStart = now;
      natsBefore = natsNow();
      cpuBefore = process.cpuUsage();
    }
    if (
      phase === 'measure' &&
      (now >= windowStart + options.seconds * 1000 || started >= options.maxRequests)
    ) {
      cpu = process.cpuUsage(cpuBefore);
      natsCpu = natsNow() - natsBefore;
      phase = 'done';
      windowEnd = now;
    }
    return phase !== 'done';
  };

  const lane = async () => {
    while (advance(performance.now())) {
      const measured = phase === 'measure';
      if (measured) started++;
      else warmupStarted++;
      const t0 = performance.now();
      try {
        const items = await call();
        if (items !== options.items) throw new Error(`Got ${items} items, not ${options.items}`);
        const t1 = performance.now();
        if (measured) latencies[recorded++] = (t1 - t0) * 1000;
        if (phase === 'measure' && t1 >= windowStart) completed++;
      } catch (error) {
        if (measured) errors++;
        firstError ??= error instanceof Error ? `${error.name}: ${error.message}` : String(error);
      }
    }
  };
  await Promise.all(Array.from({ length: options.concurrency }, lane));
  return {
    latenciesUs: latencies.subarray(0, recorded),
    completed,
    errors,
    firstError,
    seconds: (windowEnd - windowStart) / 1000,
    cpuUser: cpu.user,
    cpuSystem: cpu.system,
    natsCpu,
  };
}

/** One measured window of `path` at `concurrency`, after its warm-up. */
function measureRound(
  path: Path,
  call: Call,
  concurrency: number,
  options: Options & { round: number; natsPid: number | undefined },
): Promise<Sample> {
  // The in-process path is ~100x faster: give it more streams, so its window is not a blip.
  const perCell = options.maxRequests * (path === 'in-process' ? IN_PROCESS_FACTOR : 1);
  // Until connection pools have grown to `concurrency` connections and the code is compiled
  // (Node's fetch takes over a second to ramp up to 64 connections), latencies are not steady.
  // Later rounds only top the pools up (idle keep-alive connections may have been closed) and
  // let the loops drift apart.
  const first = options.round === 0;
  return load(call, {
    concurrency,
    items: options.items,
    warmupSeconds: first ? options.warmup : Math.min(options.warmup, REWARM_SECONDS),
    warmupStreams: (first ? WARMUP_STREAMS : REWARM_STREAMS) * concurrency,
    seconds: options.duration / options.rounds,
    maxRequests: Math.ceil(perCell / options.rounds),
    natsPid: options.natsPid,
  });
}

/** Pools the rounds of one cell: latency percentiles over every stream, totals for the rest. */
function summarize(path: Path, concurrency: number, samples: readonly Sample[]): Cell {
  const total = (pick: (s: Sample) => number) => samples.reduce((a, s) => a + pick(s), 0);
  const sorted = new Float64Array(total((s) => s.latenciesUs.length));
  let offset = 0;
  for (const sample of samples) {
    sorted.set(sample.latenciesUs, offset);
    offset += sample.latenciesUs.length;
  }
  sorted.sort();
  const streams = total((s) => s.completed);
  const seconds = total((s) => s.seconds);
  const user = total((s) => s.cpuUser);
  const system = total((s) => s.cpuSystem);
  const natsCpu = total((s) => s.natsCpu);
  const cell: Cell = {
    path,
    concurrency,
    streams,
    errors: total((s) => s.errors),
    seconds,
    p50Us: percentile(sorted, 0.5),
    p99Us: percentile(sorted, 0.99),
    meanUs: sorted.reduce((a, b) => a + b, 0) / sorted.length,
    streamsPerSecond: streams / seconds,
    cpuUsPerStream: (user + system) / streams,
    cpuSystemShare: system / (user + system),
  };
  const firstError = samples.find((s) => s.firstError !== undefined)?.firstError;
  if (firstError !== undefined) cell.firstError = firstError;
  if (path === 'nats' && !Number.isNaN(natsCpu)) cell.natsServerCpuUsPerStream = natsCpu / streams;
  return cell;
}

async function child(options: Options): Promise<void> {
  const runtime = detectRuntime();
  const log = (text: string) => process.stderr.write(`[${runtime}] ${text}\n`);
  const handler = fixedStream(options.items);
  const inProcess: Call = async () => {
    const controller = new AbortController();
    const context = { id: crypto.randomUUID(), headers: {}, signal: controller.signal };
    return await drain(handler(BODY, context));
  };
  const calls: Partial<Record<Path, Call>> = { 'in-process': inProcess };
  const planes: PlaneUnderTest[] = [];
  const skipped: ChildResult['skipped'] = {};
  for (const plane of options.planes) {
    try {
      const set = await setUpPlane(plane, handler);
      planes.push(set);
      calls[plane] = set.call;
    } catch (error) {
      skipped[plane] = error instanceof Error ? error.message : String(error);
      log(`skipping ${plane}: ${skipped[plane]}`);
    }
  }
  const natsPid = natsServerPid();
  const cells: Cell[] = [];
  const paths = (['in-process', ...PLANES] as const).filter((path) => calls[path]);
  for (const concurrency of options.concurrency) {
    // Rounds alternate the paths, so a burst of other load on the machine hits them alike.
    const samples = new Map<Path, Sample[]>(paths.map((path) => [path, []]));
    for (let round = 0; round < options.rounds; round++) {
      for (const path of paths) {
        const sample = await measureRound(path, calls[path]!, concurrency, {
          ...options,
          round,
          natsPid,
        });
        samples.get(path)!.push(sample);
      }
    }
    for (const path of paths) {
      const cell = summarize(path, concurrency, samples.get(path)!);
      cells.push(cell);
      log(
        `${path} x${concurrency}: ${cell.streams} streams, p50 ${us(cell.p50Us)}, ` +
          `p99 ${us(cell.p99Us)}, ${int(cell.streamsPerSecond)} streams/s` +
          (cell.errors ? `, ${cell.errors} errors (${cell.firstError})` : ''),
      );
    }
  }
  for (const plane of planes) await plane.close();
  const result: ChildResult = { runtime, version: runtimeVersion(runtime), cells, skipped };
  process.stdout.write(`${JSON.stringify(result)}\n`);
  // nats.ws or a lingering socket must not keep the process alive.
  process.exit(0);
}

// ---------------------------------------------------------------------------------------------
// Driver: runs a child per runtime and prints one table.

function int(n: number): string {
  return Number.isFinite(n) ? Math.round(n).toLocaleString('en-US') : '-';
}

/** Microseconds as `µs` below 1 ms, else as `ms`. */
function us(n: number): string {
  if (!Number.isFinite(n)) return '-';
  if (n < 10) return `${n.toFixed(1)} µs`;
  if (n < 1000) return `${Math.round(n)} µs`;
  return `${(n / 1000).toFixed(n < 10_000 ? 2 : 1)} ms`;
}

function ratio(n: number): string {
  if (!Number.isFinite(n)) return '-';
  return n < 10 ? n.toFixed(1) : Math.round(n).toLocaleString('en-US');
}

function times(n: number): string {
  return Number.isFinite(n) ? `${ratio(n)}×` : '-';
}

function childCommand(runtime: Runtime): string[] {
  const entry = 'bench/request-plane.ts';
  switch (runtime) {
    case 'node':
      return ['node', '--import', 'tsx', '--experimental-websocket', entry, '--child'];
    case 'bun':
      return ['node_modules/.bin/bun', entry, '--child'];
    case 'deno':
      return ['node_modules/.bin/deno', 'run', '-A', entry, '--child'];
  }
}

function runChild(runtime: Runtime, options: Options): Promise<ChildResult> {
  const argv = [
    ...childCommand(runtime),
    '--planes',
    options.planes.join(','),
    '--concurrency',
    options.concurrency.join(','),
    '--duration',
    String(options.duration),
    '--warmup',
    String(options.warmup),
    '--rounds',
    String(options.rounds),
    '--max-requests',
    String(options.maxRequests),
    '--items',
    String(options.items),
  ];
  // Start from the defaults: a DYN_* or NATS_* variable must not change what is measured.
  const env = Object.fromEntries(
    Object.entries(process.env).filter(([key]) => !/^(DYN_|NATS_)/.test(key)),
  );
  return new Promise((resolve, reject) => {
    const child = spawn(argv[0]!, argv.slice(1), {
      cwd: ROOT,
      env,
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let stdout = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => stdout += chunk);
    child.once('error', reject);
    child.once('close', (code, signal) => {
      const last = stdout.trim().split('\n').pop() ?? '';
      try {
        if (code !== 0) throw new Error(signal ? `signal ${signal}` : `exit code ${code}`);
        resolve(JSON.parse(last) as ChildResult);
      } catch (error) {
        reject(
          new Error(
            `${runtime} child failed (${(error as Error).message}); run it by hand:\n  ${
              argv.join(' ')
            }\n${stdout}`,
          ),
        );
      }
    });
  });
}

function cpuModel(): string {
  try {
    const line = readFileSync('/proc/cpuinfo', 'utf8').split('\n').find((l) =>
      l.startsWith('model name')
    );
    if (line) return line.slice(line.indexOf(':') + 1).trim();
  } catch { /* not Linux */ }
  return os.cpus()[0]?.model ?? 'unknown';
}

function table(results: ChildResult[]): string {
  const lines = [
    `| ${
      [
        'Runtime',
        'Streams',
        'Path',
        'p50',
        'p99',
        'Streams/s',
        'p50 vs in-process',
        'Streams/s vs in-process',
        'CPU/stream (kernel share) + nats-server',
        'Errors',
      ].join(' | ')
    } |`,
    '|---|---:|---|---:|---:|---:|---:|---:|---:|---:|',
  ];
  for (const result of results) {
    for (const cell of result.cells) {
      const base = result.cells.find((c) =>
        c.path === 'in-process' && c.concurrency === cell.concurrency
      );
      const isBase = cell.path === 'in-process';
      const cpu = `${us(cell.cpuUsPerStream)} (${Math.round(cell.cpuSystemShare * 100)}% sys)` +
        (cell.natsServerCpuUsPerStream === undefined
          ? ''
          : ` +${us(cell.natsServerCpuUsPerStream)}`);
      lines.push(
        `| ${result.runtime} ${result.version} | ${cell.concurrency} | ${cell.path} | ` +
          `${us(cell.p50Us)} | ${us(cell.p99Us)} | ${int(cell.streamsPerSecond)} | ` +
          `${isBase || !base ? '1' : times(cell.p50Us / base.p50Us)} | ` +
          `${
            isBase || !base ? '1' : `1/${ratio(base.streamsPerSecond / cell.streamsPerSecond)}`
          } | ` +
          `${cpu} | ${cell.errors}${cell.firstError ? ` (${cell.firstError})` : ''} |`,
      );
    }
    for (const [plane, reason] of Object.entries(result.skipped)) {
      lines.push(`| ${result.runtime} ${result.version} | - | ${plane} | skipped: ${reason} |`);
    }
  }
  return lines.join('\n');
}

async function driver(options: Options): Promise<void> {
  const started = new Date();
  const load = os.loadavg().map((n) => n.toFixed(2)).join(' ');
  const results: ChildResult[] = [];
  for (const runtime of options.runtimes) {
    try {
      results.push(await runChild(runtime, options));
    } catch (error) {
      fail((error as Error).message);
    }
  }
  if (options.json) {
    process.stdout.write(`${JSON.stringify({ options, results }, null, 2)}\n`);
    finishBench('request-plane', { options, results }, { stdoutIsJson: true });
    return;
  }
  const versions = results.map((r) => `${r.runtime} ${r.version}`).join(', ');
  const seconds = ((Date.now() - started.getTime()) / 1000).toFixed(0);
  process.stdout.write(
    [
      `Date: ${started.toISOString().slice(0, 10)}; machine: ${os.availableParallelism()} CPUs ` +
      `(${cpuModel()}), ${os.type()} ${os.release()} ${os.arch()}, load average ${load}; ` +
      `${versions}.`,
      `Cells: ${options.warmup} s warm-up, then ${options.duration} s (at most ` +
      `${options.maxRequests} streams) in ${options.rounds} alternating rounds each; ` +
      `${options.items} items per stream; total ${seconds} s.`,
      '',
      table(results),
      '',
    ].join('\n'),
  );
  finishBench('request-plane', { options, results });
}

const options = parseOptions(process.argv.slice(2));
if (options.child) await child(options);
else await driver(options);
