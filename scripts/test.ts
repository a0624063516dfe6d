/**
 * Runs the whole test suite on Node, Bun and Deno (or the runtimes named on the command line),
 * streaming each runner's output, and fails if any runner failed or ran zero tests.
 *
 *   node --import tsx scripts/test.ts [node] [bun] [deno] [-- file ...]
 */
import { spawn } from 'node:child_process';
import { readdir } from 'node:fs/promises';
import { join, relative } from 'node:path';
import process from 'node:process';

const root = new URL('../', import.meta.url).pathname;
const RUNTIMES = ['node', 'bun', 'deno'] as const;
type Runtime = typeof RUNTIMES[number];

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

const argv = process.argv.slice(2);
const split = argv.indexOf('--');
const picked = (split < 0 ? argv : argv.slice(0, split)).filter((a): a is Runtime =>
  (RUNTIMES as readonly string[]).includes(a)
);
const runtimes = picked.length > 0 ? picked : [...RUNTIMES];
const files = split >= 0
  ? argv.slice(split + 1).map((f) => relative(root, join(root, f)))
  : [...await findTests('src'), ...await findTests('tests')];

/** Node 20 has a global WebSocket (needed by the NATS client) only behind this flag. */
const NODE_FLAGS = ['--import', 'tsx', '--experimental-websocket'];
const bin = (name: string) => join(root, 'node_modules', '.bin', name);
function command(runtime: Runtime): [string, string[]] {
  const paths = files.map((f) => `./${f}`);
  switch (runtime) {
    case 'node':
      return [process.execPath, [...NODE_FLAGS, '--test', '--test-reporter=spec', ...paths]];
    case 'bun':
      return [bin('bun'), ['test', '--timeout', '120000', ...paths]];
    case 'deno':
      // Types are checked once by `npm run typecheck` (tsc and deno check); checking the whole
      // test program again here can hit TS2589 on Zod's deep route types.
      return [bin('deno'), ['test', '-A', '--quiet', '--no-check', ...paths]];
  }
}

function counts(runtime: Runtime, output: string): { passed: number; failed: number } {
  // deno-lint-ignore no-control-regex
  const text = output.replace(/\x1b\[[0-9;]*m/g, '');
  const last = (re: RegExp) => {
    const all = [...text.matchAll(re)];
    return Number(all[all.length - 1]?.[1] ?? 0);
  };
  switch (runtime) {
    case 'node':
      return { passed: last(/^[ℹ#] pass (\d+)/gm), failed: last(/^[ℹ#] fail (\d+)/gm) };
    case 'bun':
      return { passed: last(/^\s*(\d+) pass$/gm), failed: last(/^\s*(\d+) fail$/gm) };
    case 'deno':
      return {
        passed: last(/(\d+) passed(?: \(\d+ steps?\))? \| \d+ failed/g),
        failed: last(/\d+ passed(?: \(\d+ steps?\))? \| (\d+) failed/g),
      };
  }
}

function run(runtime: Runtime): Promise<{ code: number; output: string }> {
  const [cmd, args] = command(runtime);
  return new Promise((resolve) => {
    const child = spawn(cmd, args, { cwd: root, env: { ...process.env, NO_COLOR: '1' } });
    let output = '';
    const onData = (stream: NodeJS.WriteStream) => (d: Buffer) => {
      output += d.toString();
      stream.write(d);
    };
    child.stdout.on('data', onData(process.stdout));
    child.stderr.on('data', onData(process.stderr));
    child.on('close', (code) => resolve({ code: code ?? 1, output }));
  });
}

let ok = true;
const summary: string[] = [];
let [totalPassed, totalFailed] = [0, 0];
for (const runtime of runtimes) {
  console.log(`\n=== ${runtime}: ${files.length} test files ===`);
  const { code, output } = await run(runtime);
  const { passed, failed } = counts(runtime, output);
  totalPassed += passed;
  totalFailed += failed;
  const problem = code !== 0 ? ` (exit ${code})` : passed === 0 ? ' (ran zero tests)' : '';
  if (problem) ok = false;
  summary.push(`${runtime}: ${passed} passed, ${failed} failed${problem}`);
}
console.log(`\n${summary.join('\n')}`);
console.log(`${totalPassed} passed, ${totalFailed} failed`);
process.exit(ok ? 0 : 1);
