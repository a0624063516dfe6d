/**
 * Test helpers that start Switchboard as a real child process on the runtime the tests run on
 * (node + tsx, bun, or deno), so every e2e test exercises that runtime's server adapter.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { createServer } from 'node:net';
import process from 'node:process';
import { fileURLToPath } from 'node:url';

export const ROOT = fileURLToPath(new URL('../../', import.meta.url));

export type Runtime = 'node' | 'bun' | 'deno';

export function currentRuntime(): Runtime {
  const g = globalThis as Record<string, unknown>;
  return g.Deno ? 'deno' : g.Bun ? 'bun' : 'node';
}

/**
 * Bundles of spawned entries that scripts/test.ts built for this run (scripts/test-bundle.ts):
 * entry (relative to the repository) -> bundle path. Empty when a test file runs by hand.
 */
function testBundles(): Record<string, string> {
  try {
    return JSON.parse(process.env.SWITCHBOARD_TEST_BUNDLES ?? '{}') as Record<string, string>;
  } catch {
    return {};
  }
}

/** The command that runs a TypeScript entry file on the current runtime. */
export function runtimeCommand(entry: string): [string, string[]] {
  switch (currentRuntime()) {
    case 'deno':
      return [process.execPath, ['run', '-A', entry]];
    case 'bun':
      return [process.execPath, [entry]];
    default: {
      // Node: the run's prebuilt bundle when there is one, else tsx transforms on the way.
      const bundle = testBundles()[entry.replace(/^\.\//, '')];
      return bundle
        ? [process.execPath, ['--enable-source-maps', '--experimental-websocket', bundle]]
        : [process.execPath, ['--import', 'tsx', '--experimental-websocket', entry]];
    }
  }
}

/** A port nobody listens on right now. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

export interface Spawned {
  child: ChildProcess;
  /** Everything written to stdout / stderr so far. */
  stdout(): string;
  stderr(): string;
  /** Resolves with the exit code (or the signal name). */
  exited: Promise<number | string>;
  /** Resolves with the first stderr JSON log line whose `msg` matches. */
  waitForLog(msg: string | RegExp, timeoutMs?: number): Promise<Record<string, unknown>>;
  kill(signal?: NodeJS.Signals): void;
}

export function spawnEntry(
  entry: string,
  args: readonly string[],
  options: { env?: Record<string, string> } = {},
): Spawned {
  const [cmd, pre] = runtimeCommand(entry);
  const child = spawn(cmd, [...pre, ...args], {
    cwd: ROOT,
    env: { ...process.env, NO_COLOR: '1', ...options.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  const waiters: Array<() => void> = [];
  child.stdout?.on('data', (d: Buffer) => {
    out += d.toString();
  });
  child.stderr?.on('data', (d: Buffer) => {
    err += d.toString();
    for (const w of waiters.splice(0)) w();
  });
  const exited = new Promise<number | string>((resolve) => {
    child.once('exit', (code, signal) => {
      for (const w of waiters.splice(0)) w();
      resolve(code ?? signal ?? -1);
    });
  });
  let done = false;
  void exited.then(() => {
    done = true;
  });
  // Exited and all output read: a log line that has not come by now never will.
  let closed = false;
  child.once('close', () => {
    closed = true;
    for (const w of waiters.splice(0)) w();
  });
  const findLog = (msg: string | RegExp) => {
    for (const line of err.split('\n')) {
      if (!line.startsWith('{')) continue;
      try {
        const record = JSON.parse(line) as Record<string, unknown>;
        const m = String(record.msg);
        if (typeof msg === 'string' ? m === msg : msg.test(m)) return record;
      } catch {
        // not a log line
      }
    }
    return undefined;
  };
  return {
    child,
    stdout: () => out,
    stderr: () => err,
    exited,
    // process.kill rather than child.kill: Deno's child.kill() makes the exit event report the
    // signal even when the child handled it and exited 0.
    kill: (signal = 'SIGTERM') => {
      if (child.pid !== undefined && !done) process.kill(child.pid, signal);
    },
    waitForLog(msg, timeoutMs = 20_000) {
      return new Promise((resolve, reject) => {
        const timer = setTimeout(
          () => reject(new Error(`no log "${msg}" within ${timeoutMs} ms; stderr:\n${err}`)),
          timeoutMs,
        );
        const check = () => {
          const found = findLog(msg);
          if (found) {
            clearTimeout(timer);
            resolve(found);
          } else if (done || closed) {
            clearTimeout(timer);
            reject(new Error(`process exited before log "${msg}"; stderr:\n${err}`));
          } else waiters.push(check);
        };
        check();
      });
    },
  };
}

export interface RunningServer extends Spawned {
  url: string;
  port: number;
  /** SIGTERM, then wait for exit. */
  stop(): Promise<number | string>;
}

/** Starts the frontend on a free port and waits until it listens. */
export async function startFrontend(
  args: readonly string[] = [],
  options: {
    env?: Record<string, string>;
    entry?: string;
    tls?: boolean;
    subcommand?: string;
    /** How long start-up may take. @default 20000 */
    timeoutMs?: number;
  } = {},
): Promise<RunningServer> {
  // In-process discovery unless the test picks a backend: nothing else needs to run.
  const discovery = args.includes('--discovery-backend') ? [] : ['--discovery-backend', 'mem'];
  // The free port can be taken by another process (any socket bound to port 0) before the
  // frontend binds it; try again on another port when that happens.
  for (let attempt = 1;; attempt++) {
    const port = await freePort();
    const spawned = spawnEntry(options.entry ?? 'src/main.ts', [
      ...(options.subcommand ? [options.subcommand] : []),
      '--http-host',
      '127.0.0.1',
      '--http-port',
      String(port),
      ...discovery,
      ...args,
    ], options);
    try {
      await spawned.waitForLog('listening', options.timeoutMs);
    } catch (error) {
      spawned.kill('SIGKILL');
      if (attempt < 3 && spawned.stderr().includes(`port ${port} already in use`)) continue;
      throw error;
    }
    return runningServer(spawned, port, options.tls ? 'https' : 'http');
  }
}

function runningServer(spawned: Spawned, port: number, scheme: string): RunningServer {
  return {
    ...spawned,
    port,
    url: `${scheme}://127.0.0.1:${port}`,
    async stop() {
      spawned.kill('SIGTERM');
      const timer = setTimeout(() => spawned.kill('SIGKILL'), 15_000);
      const code = await spawned.exited;
      clearTimeout(timer);
      return code;
    },
  };
}

/** Runs an entry to completion and returns its output. */
export async function runEntry(
  entry: string,
  args: readonly string[],
  options: { env?: Record<string, string> } = {},
): Promise<{ code: number | string; stdout: string; stderr: string }> {
  const spawned = spawnEntry(entry, args, options);
  const code = await spawned.exited;
  return { code, stdout: spawned.stdout(), stderr: spawned.stderr() };
}

export interface RunningMockerProcess extends Spawned {
  /** Instance ids (hex) of the simulated workers, from the "simulated workers ready" log line. */
  workers: string[];
  /** SIGTERM (SIGKILL after `graceMs`), then wait for exit. */
  stop(graceMs?: number): Promise<number | string>;
}

/**
 * Starts `switchboard mocker` with the bundled model (unless `args` has `--model-path`) and
 * waits until its workers are registered.
 */
export async function startMocker(
  args: readonly string[] = [],
  options: {
    env?: Record<string, string>;
    entry?: string;
    /** How long start-up may take (a loaded machine starting many processes is slow). @default 60000 */
    timeoutMs?: number;
  } = {},
): Promise<RunningMockerProcess> {
  const model = args.includes('--model-path') ? [] : ['--model-path', 'tests/fixtures/model'];
  const spawned = spawnEntry(
    options.entry ?? 'src/main.ts',
    ['mocker', ...model, ...args],
    options,
  );
  let ready: Record<string, unknown>;
  try {
    ready = await spawned.waitForLog('simulated workers ready', options.timeoutMs ?? 60_000);
  } catch (error) {
    spawned.kill('SIGKILL');
    throw error;
  }
  return {
    ...spawned,
    workers: (ready.workers as string[] | undefined) ?? [],
    async stop(graceMs = 15_000) {
      spawned.kill('SIGTERM');
      const timer = setTimeout(() => spawned.kill('SIGKILL'), graceMs);
      const code = await spawned.exited;
      clearTimeout(timer);
      return code;
    },
  };
}
