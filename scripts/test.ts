/**
 * Runs the test suite on Node, Bun and Deno (or the runtimes named on the command line): every
 * test file is its own job, one process per file and runtime, and `--jobs` of them run at once
 * (the runtimes side by side, never the same file on two runtimes at the same time). Prints each
 * file's result as it ends (its whole output when it failed), then skipped tests with their
 * reasons, the slowest files, and per-runtime counts; the last line is "N passed, N failed".
 *
 *   node --import tsx scripts/test.ts [node] [bun] [deno] [--jobs N] [--verbose] [-- file ...]
 *
 * Fails when a file fails, exits non-zero or times out, or a runtime ran zero tests; under
 * CI=true also when a test skipped that `ALLOWED_SKIPS` does not name (docs/testing.md).
 * Environment: TEST_JOBS (default --jobs), TEST_FILE_TIMEOUT_MS (a file's deadline, default 15
 * minutes), TEST_TIMEOUT_MS (one test's deadline, default 5 minutes).
 */
import { spawn } from 'node:child_process';
import { mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import { dirname, join, relative } from 'node:path';
import process from 'node:process';
import { buildTestBundles, BUNDLES_ENV } from './test-bundle.ts';
import { failureExcerpt, parseOutput, type Runtime, RUNTIMES, type Skip } from './test-output.ts';

const root = new URL('../', import.meta.url).pathname;

/**
 * Tests that may skip under CI=true, with why. Everything the suite needs is installed by
 * scripts/provision.sh, so a skip in CI means something is missing: keep this list short.
 * `runtime` absent: any runtime; `test`: a substring of the test's name (absent: any test of the
 * file, including "ran zero tests").
 */
const ALLOWED_SKIPS: ReadonlyArray<{
  file: string;
  runtime?: Runtime;
  test?: string;
  why: string;
}> = [];

/** A file's deadline: the runner kills it (and every process it started) after this long. */
const FILE_TIMEOUT_MS = Number(process.env.TEST_FILE_TIMEOUT_MS ?? 15 * 60_000);
/**
 * One test's deadline: bun's --timeout; Node through scripts/test-timeout.mjs, Deno through
 * scripts/deno-test/ (neither has a flag for it).
 */
const TEST_TIMEOUT_MS = Number(process.env.TEST_TIMEOUT_MS ?? 5 * 60_000);

async function findTests(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const entry of await readdir(join(root, dir), { withFileTypes: true })) {
    const rel = join(dir, entry.name);
    if (entry.name === 'node_modules' || entry.name.startsWith('.')) continue;
    if (entry.isDirectory()) out.push(...await findTests(rel));
    else if (entry.name.endsWith('.test.ts')) out.push(rel);
  }
  return out.sort();
}

// ------------------------------------------------------------------------------------------
// Arguments
// ------------------------------------------------------------------------------------------

const argv = process.argv.slice(2);
const split = argv.indexOf('--');
const own = split < 0 ? argv : argv.slice(0, split);
const picked = own.filter((a): a is Runtime => (RUNTIMES as readonly string[]).includes(a));
const runtimes = picked.length > 0 ? picked : [...RUNTIMES];
const verbose = own.includes('--verbose');
const jobsFlag = own.indexOf('--jobs');
/**
 * Files at once. Most test time is waiting on processes and sockets, so one more than the cores
 * keeps both cores busy; TEST_JOBS=1 runs one file at a time.
 */
const jobs = Math.max(
  1,
  Number(jobsFlag >= 0 ? own[jobsFlag + 1] : process.env.TEST_JOBS ?? availableParallelism() + 1) ||
    1,
);
const files = split >= 0
  ? argv.slice(split + 1).map((f) => relative(root, join(root, f)))
  : [...await findTests('src'), ...await findTests('tests')];
const ci = process.env.CI === 'true';

// ------------------------------------------------------------------------------------------
// One file on one runtime
// ------------------------------------------------------------------------------------------

/** Node 20 has a global WebSocket (needed by the NATS client) only behind this flag. */
const NODE_FLAGS = ['--import', 'tsx', '--experimental-websocket'];
const bin = (name: string) => join(root, 'node_modules', '.bin', name);

function command(runtime: Runtime, file: string): [string, string[]] {
  const path = `./${file}`;
  switch (runtime) {
    case 'node':
      // Node 20's --test-timeout bounds the whole file; scripts/test-timeout.mjs gives each test
      // its own (TEST_TIMEOUT_MS).
      return [process.execPath, [
        ...NODE_FLAGS,
        '--import',
        './scripts/test-timeout.mjs',
        '--test',
        '--test-reporter=spec',
        `--test-timeout=${FILE_TIMEOUT_MS}`,
        path,
      ]];
    case 'bun':
      return [bin('bun'), ['test', '--timeout', String(TEST_TIMEOUT_MS), path]];
    case 'deno':
      // Types are checked once by `npm run typecheck` (tsc and deno check); checking the whole
      // test program again here can hit TS2589 on Zod's deep route types.
      // The import map swaps in scripts/deno-test/node-test.ts: node:test with a default timeout.
      return [bin('deno'), [
        'test',
        '-A',
        '--no-check',
        '--import-map',
        'scripts/deno-test/import-map.json',
        path,
      ]];
  }
}

interface Result {
  runtime: Runtime;
  file: string;
  passed: number;
  failed: number;
  skips: Skip[];
  code: number | string;
  timedOut: boolean;
  ms: number;
  output: string;
}

const running = new Set<number>();

function runFile(runtime: Runtime, file: string, env: NodeJS.ProcessEnv): Promise<Result> {
  const [cmd, args] = command(runtime, file);
  const started = performance.now();
  return new Promise((resolve) => {
    // Its own process group, so a timeout (or ^C) ends the processes the tests started too.
    const child = spawn(cmd, args, {
      cwd: root,
      env: { ...env, NO_COLOR: '1' },
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true,
    });
    if (child.pid !== undefined) running.add(child.pid);
    let output = '';
    child.stdout.on('data', (d: Buffer) => void (output += d.toString()));
    child.stderr.on('data', (d: Buffer) => void (output += d.toString()));
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      killGroup(child.pid, 'SIGKILL');
    }, FILE_TIMEOUT_MS);
    const finish = (code: number | string) => {
      clearTimeout(timer);
      if (child.pid !== undefined) {
        // Whatever the file left behind in its group goes with it.
        killGroup(child.pid, 'SIGKILL');
        running.delete(child.pid);
      }
      const counts = parseOutput(runtime, output);
      if (timedOut) {
        output += `\n[test.ts] killed after ${FILE_TIMEOUT_MS} ms (TEST_FILE_TIMEOUT_MS)\n`;
      }
      resolve({
        runtime,
        file,
        ...counts,
        code,
        timedOut,
        ms: performance.now() - started,
        output,
      });
    };
    child.on('error', (error) => {
      output += `\n[test.ts] could not start ${cmd}: ${error.message}\n`;
      finish('spawn-error');
    });
    child.on('close', (code, signal) => finish(code ?? signal ?? -1));
  });
}

function killGroup(pid: number | undefined, signal: NodeJS.Signals) {
  if (pid === undefined) return;
  try {
    process.kill(-pid, signal);
  } catch {
    // Already gone.
  }
}

for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.on(signal, () => {
    for (const pid of running) killGroup(pid, 'SIGKILL');
    process.exit(130);
  });
}

// ------------------------------------------------------------------------------------------
// Scheduling
// ------------------------------------------------------------------------------------------

/** How long each file took last time on this machine (runtime:file -> ms), to start long ones first. */
const DURATIONS = join(root, '.tmp', 'test-durations.json');
let previous: Record<string, number> = {};
try {
  previous = JSON.parse(await readFile(DURATIONS, 'utf8')) as Record<string, number>;
} catch {
  // First run here: estimate by kind.
}
/** Without history: processes and chaos first, unit tests last. */
function estimate(runtime: Runtime, file: string): number {
  const known = previous[`${runtime}:${file}`];
  if (known !== undefined) return known;
  if (file.startsWith('tests/chaos/')) return 120_000;
  if (file.startsWith('tests/e2e/')) return 40_000;
  if (file.startsWith('tests/')) return 20_000;
  return 2_000;
}

const queue = runtimes.flatMap((runtime) => files.map((file) => ({ runtime, file })))
  .sort((a, b) =>
    estimate(b.runtime, b.file) - estimate(a.runtime, a.file) || a.file.localeCompare(b.file)
  );

/**
 * Files that stress the machine on purpose (kill and restart servers under load, with lease and
 * call-home deadlines of a few seconds): one at a time, and beside at most one other file, so
 * the rest of the suite never starves them into a false failure (seen at load average 24).
 */
const exclusive = (file: string) => file.startsWith('tests/chaos/');

const failureOf = (r: Result) =>
  r.timedOut
    ? `timed out after ${FILE_TIMEOUT_MS} ms`
    : r.code !== 0
    ? `exit ${r.code}`
    : r.failed > 0
    ? `${r.failed} failed`
    : r.passed === 0 && r.skips.length === 0
    ? 'ran zero tests'
    : '';

async function runAll(env: NodeJS.ProcessEnv): Promise<Result[]> {
  const results: Result[] = [];
  const busy = new Set<string>();
  let done = 0;
  const total = queue.length;
  const width = String(total).length;
  await new Promise<void>((resolveAll) => {
    let active = 0;
    const next = () => {
      if (queue.length === 0 && active === 0) return resolveAll();
      for (;;) {
        const chaosRunning = [...busy].some(exclusive);
        if (active >= (chaosRunning ? Math.min(jobs, 2) : jobs)) return;
        // Never the same file on two runtimes at once: tests may use fixed names on the shared
        // etcd and NATS.
        const i = queue.findIndex((j) => !busy.has(j.file) && !(chaosRunning && exclusive(j.file)));
        if (i < 0) return;
        // A chaos file next in line waits until at most one other file runs (and holds its place).
        if (exclusive(queue[i]!.file) && active >= Math.min(jobs, 2)) return;
        const [job] = queue.splice(i, 1);
        active++;
        busy.add(job!.file);
        void runFile(job!.runtime, job!.file, env).then((result) => {
          active--;
          busy.delete(job!.file);
          results.push(result);
          done++;
          const failure = failureOf(result);
          const skipped = result.skips.length > 0 ? `, ${result.skips.length} skipped` : '';
          console.log(
            `[${String(done).padStart(width)}/${total}] ${failure ? 'FAIL' : 'ok  '} ${
              result.runtime.padEnd(4)
            } ${result.file}: ${result.passed} passed, ${result.failed} failed${skipped} (${
              (result.ms / 1000).toFixed(1)
            } s)${failure ? ` ${failure}` : ''}`,
          );
          if (failure || verbose) {
            const indented = result.output.trimEnd().split('\n').map((l) => `    ${l}`).join('\n');
            console.log(indented);
          }
          next();
        });
      }
    };
    next();
  });
  return results;
}

// ------------------------------------------------------------------------------------------
// The run
// ------------------------------------------------------------------------------------------

const startedAt = performance.now();
const bundleDir = join(root, '.tmp', 'test-bundles', String(process.pid));
const env: NodeJS.ProcessEnv = { ...process.env, TEST_TIMEOUT_MS: String(TEST_TIMEOUT_MS) };
// Started from inside a Node test file (tests/scripts/test-runner.test.ts), `node --test` would
// think it is that file's child and run nothing.
delete env.NODE_TEST_CONTEXT;
if (runtimes.includes('node')) {
  // A directory per run: a runner started by a test (tests/scripts/test-runner.test.ts) must not
  // rewrite the bundles this run's children are loading.
  const built = await buildTestBundles(root, bundleDir);
  if ('bundles' in built) env[BUNDLES_ENV] = JSON.stringify(built.bundles);
  else console.log(`note: Node children start through tsx: ${built.error}`);
}
console.log(
  `${files.length} test files on ${runtimes.join(', ')}: ${queue.length} jobs, ${jobs} at once`,
);
const results = await runAll(env);
await rm(bundleDir, { recursive: true, force: true });
const wallMs = performance.now() - startedAt;

// Logs of every file, for reading after the fact.
const LOGS = join(root, '.tmp', 'test-logs');
for (const r of results) {
  const path = join(LOGS, r.runtime, `${r.file}.log`);
  await mkdir(dirname(path), { recursive: true });
  await writeFile(path, r.output);
}
try {
  const durations = { ...previous };
  for (const r of results) durations[`${r.runtime}:${r.file}`] = Math.round(r.ms);
  await writeFile(DURATIONS, JSON.stringify(durations, null, 1));
} catch {
  // Only an ordering hint.
}

// Skips, with the reason node printed for the same test when the runner printed none.
const reasons = new Map<string, string>();
for (const r of results) {
  for (const s of r.skips) if (s.reason) reasons.set(`${r.file}\0${s.name}`, s.reason);
}
interface SkipLine {
  runtime: Runtime;
  file: string;
  name: string;
  reason: string;
  allowed: boolean;
}
const skipLines: SkipLine[] = [];
for (const r of results) {
  const entries = r.skips.map((s) => ({
    name: s.name,
    reason: s.reason ?? reasons.get(`${r.file}\0${s.name}`) ??
      `${r.runtime} prints no reason; see the test's skip option`,
  }));
  if (r.passed === 0 && r.failed === 0 && r.skips.length === 0 && r.code === 0) {
    entries.push({ name: '(the whole file)', reason: 'ran zero tests' });
  }
  // Bun neither runs nor reports the tests of a skipped describe; Node reports the describe.
  // Every file runs the same node:test calls on both, so their counts agree unless that
  // happened: then Node's skips stand in for what Bun hid.
  const node = r.runtime === 'bun'
    ? results.find((n) => n.runtime === 'node' && n.file === r.file)
    : undefined;
  const total = (x: Result) => x.passed + x.failed + x.skips.length;
  if (node && total(node) > total(r)) {
    const seen = new Set(r.skips.map((s) => s.name));
    for (const s of node.skips.filter((s) => !seen.has(s.name))) {
      entries.push({
        name: s.name,
        reason: `not run and not reported by bun (a skipped describe); node: ${
          s.reason ?? 'no reason'
        }`,
      });
    }
  }
  for (const e of entries) {
    const allowed = ALLOWED_SKIPS.some((a) =>
      a.file === r.file && (!a.runtime || a.runtime === r.runtime) &&
      (!a.test || e.name.includes(a.test))
    );
    skipLines.push({ runtime: r.runtime, file: r.file, ...e, allowed });
  }
}

const byRuntime = (rt: Runtime) => results.filter((r) => r.runtime === rt);
if (skipLines.length > 0) {
  console.log('\nSkipped:');
  for (const rt of runtimes) {
    for (const s of skipLines.filter((l) => l.runtime === rt)) {
      console.log(
        `  ${rt} ${s.file} > ${s.name}: ${s.reason}${s.allowed ? ' (allowed)' : ''}`,
      );
    }
  }
}

console.log('\nSlowest files:');
for (const r of [...results].sort((a, b) => b.ms - a.ms).slice(0, 10)) {
  console.log(`  ${(r.ms / 1000).toFixed(1).padStart(6)} s  ${r.runtime.padEnd(4)} ${r.file}`);
}

const failedFiles = results.filter((r) => failureOf(r) !== '');
if (failedFiles.length > 0) {
  console.log('\nFailed files (full logs under .tmp/test-logs/):');
  for (const r of failedFiles) {
    console.log(`  ${r.runtime} ${r.file}: ${failureOf(r)}`);
    for (const line of failureExcerpt(r.output)) console.log(`      ${line}`);
  }
}

let ok = failedFiles.length === 0;
const summary: string[] = [];
let [totalPassed, totalFailed] = [0, 0];
for (const rt of runtimes) {
  const rs = byRuntime(rt);
  const passed = rs.reduce((n, r) => n + r.passed, 0);
  const failed = rs.reduce((n, r) => n + r.failed, 0) +
    rs.filter((r) => r.failed === 0 && failureOf(r) !== '').length;
  const skipped = skipLines.filter((l) => l.runtime === rt).length;
  const ms = rs.reduce((n, r) => n + r.ms, 0);
  totalPassed += passed;
  totalFailed += failed;
  const zero = passed === 0 && files.length > 0 ? ' (ran zero tests)' : '';
  if (zero) ok = false;
  summary.push(
    `${rt}: ${passed} passed, ${failed} failed, ${skipped} skipped; ${
      (ms / 1000).toFixed(0)
    } s of file time${zero}`,
  );
}
const unexpected = skipLines.filter((l) => !l.allowed);
if (ci && unexpected.length > 0) {
  ok = false;
  summary.push(
    `CI=true: ${unexpected.length} skip(s) not in ALLOWED_SKIPS (scripts/test.ts): install what ` +
      'they need (scripts/provision.sh) or allow them with a reason',
  );
}
console.log(`\n${summary.join('\n')}`);
console.log(`wall time ${(wallMs / 1000).toFixed(0)} s, ${jobs} files at once`);
console.log(`${totalPassed} passed, ${totalFailed} failed`);
process.exit(ok ? 0 : 1);
