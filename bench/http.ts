/**
 * HTTP overhead of Switchboard: requests/s of `GET /live` through Switchboard as a ratio of a bare
 * Hono hello-world (`bench/fixtures/hello.ts`) served by the same `serve()` adapter on the same
 * runtime. Both servers of a runtime run side by side and are measured in alternating rounds with
 * wrk, so the ratio comes from one run on one machine. Results go in `docs/benchmarks.md`.
 *
 *   npm run bench:http [-- --runtimes node,bun,deno --rounds 5 --duration 3 --warmup 2
 *                          --connections 64 --threads 1 --pin --json]
 *
 * Each server's stderr (Switchboard writes one JSON access-log line per request) goes to
 * /dev/null: the logging work stays in the measurement, and no reader competes for the CPU.
 * Readiness is therefore detected by polling `GET /live`, not by reading the "listening" line.
 */
import { finishBench } from './_provenance.ts';
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { closeSync, existsSync, openSync, readFileSync } from 'node:fs';
import os from 'node:os';
import process from 'node:process';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { freePort } from '../tests/helpers/process.ts';

type Runtime = 'node' | 'bun' | 'deno';
type Server = 'hello' | 'switchboard';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const RUNTIMES: readonly Runtime[] = ['node', 'bun', 'deno'];
const GOAL = 0.9;
/** Other processes' CPU use above which a runtime's req/s figures are flagged. */
const DISTURBED_CPUS = 0.2;
const HOST = '127.0.0.1';
const EXPECTED_BODY = { status: 'live', message: 'Service is live' };

/** The command that starts `server` on `runtime`, relative to the repository root. */
function command(runtime: Runtime, server: Server, port: number): string[] {
  const flags = ['--http-host', HOST, '--http-port', String(port)];
  const entry = {
    node: server === 'hello' ? 'bench/fixtures/hello.ts' : 'src/main.ts',
    bun: server === 'hello' ? 'bench/fixtures/hello.ts' : 'src/main.ts',
    deno: server === 'hello' ? 'bench/fixtures/hello.ts' : 'main.ts',
  }[runtime];
  switch (runtime) {
    case 'node':
      return ['node', '--import', 'tsx', entry, ...flags];
    case 'bun':
      return ['node_modules/.bin/bun', entry, ...flags];
    case 'deno':
      return ['node_modules/.bin/deno', 'run', '-A', entry, ...flags];
  }
}

interface Options {
  runtimes: Runtime[];
  rounds: number;
  duration: number;
  warmup: number;
  connections: number;
  threads: number;
  retries: number;
  pin: boolean;
  json: boolean;
}

function parseOptions(argv: string[]): Options {
  const { values } = parseArgs({
    args: argv,
    options: {
      runtimes: { type: 'string', default: RUNTIMES.join(',') },
      rounds: { type: 'string', default: '5' },
      duration: { type: 'string', default: '3' },
      warmup: { type: 'string', default: '2' },
      connections: { type: 'string', default: '64' },
      threads: { type: 'string', default: '1' },
      retries: { type: 'string', default: '3' },
      pin: { type: 'boolean', default: false },
      json: { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (values.help) {
    process.stdout.write(
      [
        'Usage: npm run bench:http -- [options]',
        '  --runtimes LIST    comma-separated subset of node,bun,deno (default: all)',
        '  --rounds N         measured rounds; each measures both servers (default: 5)',
        '  --duration S       seconds of load per server per round (default: 3)',
        '  --warmup S         seconds of load per server before the first round (default: 2)',
        '  --connections N    wrk connections (default: 64)',
        '  --threads N        wrk threads (default: 1)',
        '  --retries N        re-runs per runtime of rounds disturbed by other load (default: 3)',
        '  --pin              pin servers to CPU 0 and wrk to CPU 1 with taskset',
        '  --json             print the results as JSON instead of a table',
        '',
      ].join('\n'),
    );
    process.exit(0);
  }
  const runtimes = values.runtimes.split(',').map((r) => r.trim()).filter(Boolean);
  for (const r of runtimes) {
    if (!RUNTIMES.includes(r as Runtime)) fail(`Unknown runtime "${r}": use node, bun or deno`);
  }
  const positive = (name: string, text: string) => {
    const n = Number(text);
    if (!Number.isInteger(n) || n < 1) fail(`--${name} must be a positive integer, got "${text}"`);
    return n;
  };
  return {
    runtimes: runtimes as Runtime[],
    rounds: positive('rounds', values.rounds),
    duration: positive('duration', values.duration),
    warmup: positive('warmup', values.warmup),
    connections: positive('connections', values.connections),
    threads: positive('threads', values.threads),
    retries: Number.isInteger(Number(values.retries)) && Number(values.retries) >= 0
      ? Number(values.retries)
      : fail(`--retries must be a whole number, got "${values.retries}"`),
    pin: values.pin,
    json: values.json,
  };
}

function fail(message: string): never {
  process.stderr.write(`bench:http: ${message}\n`);
  process.exit(1);
}

/** The first line a command prints, or undefined when it cannot run. */
function firstLine(cmd: string, args: string[]): string | undefined {
  const result = spawnSync(cmd, args, { cwd: ROOT, encoding: 'utf8' });
  if (result.error) return undefined;
  return `${result.stdout}${result.stderr}`.split('\n')[0]?.trim() || undefined;
}

function requireWrk(): string {
  const version = firstLine('wrk', ['-v']);
  if (!version) {
    fail(
      'wrk not found on PATH. Install it (Debian/Ubuntu: `sudo apt-get install wrk`, ' +
        'macOS: `brew install wrk`) and run again.',
    );
  }
  return version;
}

interface Machine {
  date: string;
  nproc: number;
  cpu: string;
  os: string;
  wrk: string;
  /** 1, 5 and 15 minute load averages when the run started: other work skews req/s. */
  load: string;
  versions: Partial<Record<Runtime, string>>;
}

function machineInfo(wrk: string, runtimes: readonly Runtime[]): Machine {
  let cpu = os.cpus()[0]?.model ?? 'unknown';
  try {
    const line = readFileSync('/proc/cpuinfo', 'utf8').split('\n').find((l) =>
      l.startsWith('model name')
    );
    if (line) cpu = line.slice(line.indexOf(':') + 1).trim();
  } catch { /* not Linux: keep os.cpus() */ }
  const versions: Partial<Record<Runtime, string>> = {};
  for (const runtime of runtimes) {
    if (runtime === 'node') versions.node = process.version.replace(/^v/, '');
    if (runtime === 'bun') versions.bun = firstLine('node_modules/.bin/bun', ['--version']);
    if (runtime === 'deno') {
      versions.deno = firstLine('node_modules/.bin/deno', ['--version'])?.split(' ')[1];
    }
  }
  return {
    date: new Date().toISOString().slice(0, 10),
    nproc: os.availableParallelism(),
    cpu,
    os: `${os.type()} ${os.release()} ${os.arch()}`,
    wrk,
    load: os.loadavg().map((n) => n.toFixed(2)).join(' '),
    versions,
  };
}

const children = new Set<ChildProcess>();

function killAll(): void {
  for (const child of children) child.kill('SIGKILL');
}
process.on('exit', killAll);
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.on(signal, () => {
    killAll();
    process.exit(130);
  });
}

interface Running {
  name: Server;
  url: string;
  argv: string[];
  child: ChildProcess;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function start(runtime: Runtime, name: Server, pin: boolean): Promise<Running> {
  const port = await freePort();
  const argv = command(runtime, name, port);
  const full = pin ? ['taskset', '-c', '0', ...argv] : argv;
  // Start from the defaults: a DYN_* variable in the caller's environment must not change them.
  const env = Object.fromEntries(
    Object.entries(process.env).filter(([key]) => !key.startsWith('DYN_')),
  );
  const devNull = openSync('/dev/null', 'w');
  const child = spawn(full[0]!, full.slice(1), {
    cwd: ROOT,
    env,
    stdio: ['ignore', devNull, devNull],
  });
  closeSync(devNull);
  children.add(child);
  let exited: string | undefined;
  child.once('exit', (code, signal) => {
    children.delete(child);
    exited = signal ? `signal ${signal}` : `exit code ${code}`;
  });
  child.once('error', (error) => exited = error.message);
  const url = `http://${HOST}:${port}/live`;
  const deadline = Date.now() + 60_000;
  for (;;) {
    if (exited) {
      fail(
        `${name} on ${runtime} stopped (${exited}); run it by hand to see why:\n  ${
          argv.join(' ')
        }`,
      );
    }
    if (Date.now() > deadline) {
      fail(`${name} on ${runtime} not ready after 60 s: ${argv.join(' ')}`);
    }
    try {
      const response = await fetch(url);
      const body: unknown = await response.json();
      if (response.status !== 200 || JSON.stringify(body) !== JSON.stringify(EXPECTED_BODY)) {
        fail(
          `${name} on ${runtime}: GET /live answered ${response.status} ${JSON.stringify(body)}`,
        );
      }
      return { name, url, argv, child };
    } catch {
      await sleep(100);
    }
  }
}

async function stop(running: Running): Promise<void> {
  const { child } = running;
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 5_000);
  await exited;
  clearTimeout(timer);
}

interface WrkResult {
  rps: number;
  requests: number;
  /** CPU seconds wrk used (NaN where /proc is missing). */
  cpu: number;
  /** Non-2xx answers plus socket errors; any of them makes the round invalid. */
  errors: number;
  raw: string;
}

function runWrk(url: string, seconds: number, options: Options): Promise<WrkResult> {
  const args = [`-t${options.threads}`, `-c${options.connections}`, `-d${seconds}s`, url];
  const wrk = options.pin ? ['taskset', '-c', '1', 'wrk', ...args] : ['wrk', ...args];
  // The shell prints its own /proc stat after reaping wrk: its cutime + cstime are wrk's CPU.
  const script = 'code=0; "$@" || code=$?; echo "@@stat $(cat /proc/$$/stat 2>/dev/null)"; ' +
    'exit $code';
  return new Promise((resolve, reject) => {
    const child = spawn('sh', ['-c', script, 'sh', ...wrk], { stdio: ['ignore', 'pipe', 'pipe'] });
    let raw = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => raw += chunk);
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => raw += chunk);
    child.once('error', reject);
    child.once('close', (code) => {
      const rps = /Requests\/sec:\s+([\d.]+)/.exec(raw);
      const requests = /(\d+) requests in/.exec(raw);
      if (code !== 0 || !rps || !requests) {
        reject(new Error(`wrk failed (exit code ${code}):\n${raw}`));
        return;
      }
      const non2xx = Number(/Non-2xx or 3xx responses:\s+(\d+)/.exec(raw)?.[1] ?? 0);
      const socket = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/
        .exec(raw);
      const socketErrors = socket ? socket.slice(1).reduce((sum, n) => sum + Number(n), 0) : 0;
      const stat = /@@stat .*\) (.*)/.exec(raw)?.[1]?.split(' ');
      const cpu = stat ? (Number(stat[13]) + Number(stat[14])) / CLOCK_TICKS : NaN;
      resolve({
        rps: Number(rps[1]),
        requests: Number(requests[1]),
        cpu,
        errors: non2xx + socketErrors,
        raw,
      });
    });
  });
}

const CLOCK_TICKS = Number(firstLine('getconf', ['CLK_TCK']) ?? 100) || 100;

/** CPU seconds a process has used so far (all threads), or NaN where /proc is missing. */
function cpuSeconds(pid: number | undefined): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the parenthesised command name; utime and stime are fields 14 and 15.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS;
  } catch {
    return NaN;
  }
}

/** CPU seconds the whole machine has been busy (steal included), or NaN without /proc. */
function machineBusySeconds(): number {
  try {
    const cpu = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.split(/\s+/).slice(1);
    const [user, nice, system, _idle, _iowait, irq, softirq, steal] = cpu.map(Number);
    return (user! + nice! + system! + irq! + softirq! + (steal ?? 0)) / CLOCK_TICKS;
  } catch {
    return NaN;
  }
}

function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

interface Sample {
  rps: number;
  /** Server CPU time per request, in microseconds (NaN without /proc). */
  cpuUs: number;
  /** CPUs busy with anything but this server and wrk during the round: other load. */
  otherCpus: number;
}

interface RuntimeResult {
  runtime: Runtime;
  rounds: { hello: Sample; switchboard: Sample; ratio: number }[];
  hello: { rps: number; cpuUs: number };
  switchboard: { rps: number; cpuUs: number };
  /** Median over rounds of switchboard req/s divided by hello req/s in the same round. */
  ratio: number;
  ratioMin: number;
  ratioMax: number;
  /** hello CPU per request over switchboard CPU per request (medians): the ratio without noise. */
  cpuRatio: number;
  /** Median over all rounds of CPUs used by other processes while wrk ran. */
  otherCpus: number;
}

async function measure(runtime: Runtime, options: Options): Promise<RuntimeResult> {
  const log = (text: string) => process.stderr.write(`[${runtime}] ${text}\n`);
  const servers = {
    hello: await start(runtime, 'hello', options.pin),
    switchboard: await start(runtime, 'switchboard', options.pin),
  };
  const load = async (name: Server, seconds: number): Promise<Sample> => {
    const pid = servers[name].child.pid;
    const cpuBefore = cpuSeconds(pid);
    const busyBefore = machineBusySeconds();
    const wallBefore = performance.now();
    const result = await runWrk(servers[name].url, seconds, options);
    const wall = (performance.now() - wallBefore) / 1000;
    const busy = machineBusySeconds() - busyBefore;
    const cpu = cpuSeconds(pid) - cpuBefore;
    if (result.errors > 0) {
      throw new Error(`${name} on ${runtime}: ${result.errors} errors under load\n${result.raw}`);
    }
    return {
      rps: result.rps,
      cpuUs: (cpu / result.requests) * 1e6,
      otherCpus: Math.max(0, (busy - cpu - result.cpu) / wall),
    };
  };
  const show = (s: Sample) =>
    `${int(s.rps)} req/s, ${us(s.cpuUs)} us CPU/req, other load ${fixed2(s.otherCpus)} CPUs`;
  const rounds: RuntimeResult['rounds'] = [];
  try {
    for (const name of ['hello', 'switchboard'] as const) {
      log(`warm-up ${name}: ${show(await load(name, options.warmup))}`);
    }
    // Each round measures both servers back to back, alternating which goes first, and yields
    // one ratio: a drift in machine speed (other load, CPU boost) then hits both alike.
    // A round during which other processes took more than DISTURBED_CPUS is run again.
    for (let i = 0, retries = 0; i < options.rounds; i++) {
      const order: Server[] = i % 2 ? ['switchboard', 'hello'] : ['hello', 'switchboard'];
      const got: Partial<Record<Server, Sample>> = {};
      for (const name of order) got[name] = await load(name, options.duration);
      const hello = got.hello!;
      const switchboard = got.switchboard!;
      const other = Math.max(hello.otherCpus, switchboard.otherCpus);
      if (other > DISTURBED_CPUS && retries < options.retries) {
        retries++;
        log(`round ${i + 1} disturbed (other load ${fixed2(other)} CPUs): running it again`);
        i--;
        continue;
      }
      const ratio = switchboard.rps / hello.rps;
      rounds.push({ hello, switchboard, ratio });
      log(
        `round ${i + 1}: hello ${show(hello)}; switchboard ${show(switchboard)}; ` +
          `ratio ${ratio.toFixed(2)}`,
      );
    }
  } finally {
    await Promise.all([stop(servers.hello), stop(servers.switchboard)]);
  }
  const ratios = rounds.map((r) => r.ratio);
  const summary = (name: Server) => ({
    rps: median(rounds.map((r) => r[name].rps)),
    cpuUs: median(rounds.map((r) => r[name].cpuUs)),
  });
  const hello = summary('hello');
  const switchboard = summary('switchboard');
  return {
    runtime,
    rounds,
    hello,
    switchboard,
    ratio: median(ratios),
    ratioMin: Math.min(...ratios),
    ratioMax: Math.max(...ratios),
    cpuRatio: hello.cpuUs / switchboard.cpuUs,
    otherCpus: median(rounds.flatMap((r) => [r.hello.otherCpus, r.switchboard.otherCpus])),
  };
}

const int = (n: number) => Math.round(n).toLocaleString('en-US');
const us = (n: number) => Number.isNaN(n) ? 'n/a' : n.toFixed(1);
const fixed2 = (n: number) => Number.isNaN(n) ? 'n/a' : n.toFixed(2);

function report(machine: Machine, results: readonly RuntimeResult[], options: Options): string {
  const versions = Object.entries(machine.versions).map(([r, v]) => `${r} ${v ?? '?'}`)
    .join(', ');
  const lines = [
    `Date: ${machine.date}`,
    `Machine: ${machine.nproc} CPUs, ${machine.cpu}, ${machine.os}; load average ${machine.load}`,
    `Runtimes: ${versions}; ${machine.wrk.split(' [')[0]}`,
    `Load: wrk -t${options.threads} -c${options.connections} -d${options.duration}s ` +
    `GET /live, ${options.warmup} s warm-up per server, ${options.rounds} rounds alternating ` +
    `hello and switchboard${options.pin ? '; servers on CPU 0, wrk on CPU 1' : ''}`,
    '',
    '| Runtime | hello req/s | switchboard req/s | ratio (min-max) | hello CPU us/req | ' +
    'switchboard CPU us/req | CPU ratio | other load | ratio >= 0.9 |',
    '| ------- | ----------: | ----------------: | --------------: | ---------------: | ' +
    '---------------------: | --------: | ---------: | ------------ |',
    ...results.map((r) =>
      `| ${r.runtime} | ${int(r.hello.rps)} | ${int(r.switchboard.rps)} | ` +
      `${fixed2(r.ratio)} (${fixed2(r.ratioMin)}-${fixed2(r.ratioMax)}) | ${us(r.hello.cpuUs)} | ` +
      `${us(r.switchboard.cpuUs)} | ${fixed2(r.cpuRatio)} | ${fixed2(r.otherCpus)} CPUs | ` +
      `${r.ratio >= GOAL ? 'yes' : 'no'} |`
    ),
    '',
    'req/s and CPU us/req (server CPU time per request) are medians over the rounds; ratio is',
    'the median of per-round ratios (switchboard / hello); CPU ratio is hello CPU/req over',
    'switchboard CPU/req; other load is the median CPU use of other processes during the rounds.',
  ];
  const disturbed = results.filter((r) => r.otherCpus > DISTURBED_CPUS).map((r) => r.runtime);
  if (disturbed.length > 0) {
    lines.push(
      '',
      `WARNING: other processes used more than ${DISTURBED_CPUS} CPUs while ${
        disturbed.join(', ')
      } ran: its req/s figures are disturbed (CPU us/req much less so). Rerun on a quiet machine.`,
    );
  }
  return `${lines.join('\n')}\n`;
}

async function main(): Promise<void> {
  const options = parseOptions(process.argv.slice(2));
  const wrk = requireWrk();
  if (options.pin && !firstLine('taskset', ['--version'])) fail('--pin needs taskset (util-linux)');
  for (const runtime of options.runtimes) {
    const bin = { node: undefined, bun: 'node_modules/.bin/bun', deno: 'node_modules/.bin/deno' }[
      runtime
    ];
    if (bin && !existsSync(`${ROOT}${bin}`)) fail(`${bin} is missing: run \`npm ci\` first`);
  }
  const machine = machineInfo(wrk, options.runtimes);
  const results: RuntimeResult[] = [];
  for (const runtime of options.runtimes) results.push(await measure(runtime, options));
  process.stdout.write(
    options.json
      ? `${JSON.stringify({ machine, options, results }, null, 2)}\n`
      : report(machine, results, options),
  );
  finishBench('http', { machine, options, results }, { stdoutIsJson: options.json });
}

await main();
