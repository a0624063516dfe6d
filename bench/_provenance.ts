/**
 * What every bench prints and saves with its figures, so a number can be traced to the code that
 * produced it: the commit, whether the work tree had changes, the machine and its load.
 *
 *   import { finishBench } from './_provenance.ts';   // strips --json-out FILE from process.argv
 *   ...
 *   await finishBench('http', results);                 // prints the provenance line; writes FILE
 *
 * `--json-out FILE` (or BENCH_JSON_OUT=FILE) on any bench writes
 * `{ bench, argv, provenance, results }` to FILE: docs/benchmarks.md's tables point at such
 * files under bench/results/.
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { dirname, resolve } from 'node:path';
import process from 'node:process';

const ROOT = new URL('../', import.meta.url).pathname;

/** `--json-out FILE` / `--json-out=FILE`, taken out of process.argv before the bench parses it. */
function takeJsonOut(): string | undefined {
  const argv = process.argv;
  for (let i = 2; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === '--json-out' && i + 1 < argv.length) {
      const path = argv[i + 1];
      argv.splice(i, 2);
      return path;
    }
    if (arg.startsWith('--json-out=')) {
      argv.splice(i, 1);
      return arg.slice('--json-out='.length);
    }
  }
  return process.env.BENCH_JSON_OUT || undefined;
}

const jsonOut = takeJsonOut();
/** The bench's own arguments. */
const givenArgv = process.argv.slice(2);

export interface Provenance {
  /** `git rev-parse HEAD`, or "unknown" outside a git checkout. */
  commit: string;
  /** Whether tracked or untracked files differed from the commit (bench/results/ not counted). */
  dirty: boolean;
  /** The changed paths, when dirty (at most 20). */
  changes: string[];
  date: string;
  runtime: string;
  cpus: number;
  cpuModel: string;
  /** 1-minute load average at the end of the run (other work on the machine). */
  loadAverage: number;
  os: string;
}

function git(args: string[]): string | undefined {
  const out = spawnSync('git', args, { cwd: ROOT, encoding: 'utf8' });
  // trimEnd only: `status --porcelain` lines start with a space that the path offset counts.
  return out.status === 0 ? out.stdout.trimEnd() : undefined;
}

function runtimeName(): string {
  const g = globalThis as {
    Deno?: { version: { deno: string } };
    Bun?: { version: string };
  };
  if (g.Deno) return `deno ${g.Deno.version.deno}`;
  if (g.Bun) return `bun ${g.Bun.version}`;
  return `node ${process.version}`;
}

export function provenance(): Provenance {
  const changes = (git(['status', '--porcelain', '--untracked-files=normal']) ?? '')
    .split('\n')
    .map((l) => l.slice(3))
    .filter((p) =>
      p !== '' && p !== 'node_modules' && !p.startsWith('bench/results/') && !p.startsWith('.tmp/')
    );
  return {
    commit: git(['rev-parse', 'HEAD']) ?? 'unknown',
    dirty: changes.length > 0,
    changes: changes.slice(0, 20),
    date: new Date().toISOString(),
    runtime: runtimeName(),
    cpus: os.availableParallelism(),
    cpuModel: os.cpus()[0]?.model ?? 'unknown',
    loadAverage: Math.round(os.loadavg()[0]! * 100) / 100,
    os: `${os.type()} ${os.release()} ${os.arch()}`,
  };
}

/** One line: commit (and dirty), date, machine, load. */
export function provenanceLine(p: Provenance = provenance()): string {
  const tree = p.dirty ? ` (dirty tree: ${p.changes.length} changed path(s))` : ' (clean tree)';
  return `Commit ${p.commit.slice(0, 12)}${tree}; ${p.date}; ${p.runtime}; ${p.cpus} CPUs ` +
    `(${p.cpuModel}); load average ${p.loadAverage}.`;
}

/**
 * Prints the provenance line (on stdout under the bench's own report; on stderr when stdout
 * carries JSON) and writes the raw results with it when --json-out was given.
 */
export function finishBench(
  bench: string,
  results: unknown,
  options: { stdoutIsJson?: boolean } = {},
): void {
  const p = provenance();
  (options.stdoutIsJson ? console.error : console.log)(provenanceLine(p));
  if (!jsonOut) return;
  const path = resolve(process.cwd(), jsonOut);
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(
    path,
    `${JSON.stringify({ bench, argv: givenArgv, provenance: p, results }, null, 2)}\n`,
  );
  console.error(`Raw results: ${path}`);
}
