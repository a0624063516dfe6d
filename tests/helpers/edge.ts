/**
 * The edge profile's two hosts as child processes, for tests and benches: Deno with only
 * `--allow-net --allow-env` running `deploy/deno/main.ts`, and workerd running the esbuild bundle
 * of `deploy/cloudflare/worker.ts` with a config generated from `deploy/cloudflare/wrangler.toml`
 * (its compatibility date, module rules and variable names). Plus a static server for a model's
 * tokenizer files, which both fetch over HTTP.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { readFile, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import { join } from 'node:path';
import process from 'node:process';
import { freePort, ROOT } from './process.ts';
import { waitFor } from './wait.ts';

export const DENO_BIN = join(ROOT, 'node_modules/.bin/deno');
export const WORKERD_BIN = join(
  ROOT,
  `node_modules/@cloudflare/workerd-${process.platform}-${
    process.arch === 'x64' ? '64' : process.arch
  }/bin/workerd`,
);

export interface EdgeHost {
  url: string;
  child: ChildProcess;
  output(): string;
  /** SIGTERM, then SIGKILL after 5 s; says whether it came to that. */
  stop(): Promise<'exited' | 'killed'>;
}

/** An `EdgeHost` for a spawned host process listening at `url`; output is collected. */
export function trackHost(child: ChildProcess, url: string): EdgeHost {
  let out = '';
  child.stdout?.on('data', (d: Uint8Array) => (out += new TextDecoder().decode(d)));
  child.stderr?.on('data', (d: Uint8Array) => (out += new TextDecoder().decode(d)));
  let gone = false;
  const exited = new Promise<void>((resolve) =>
    child.once('exit', () => {
      gone = true;
      resolve();
    })
  );
  return {
    url,
    child,
    output: () => out,
    async stop() {
      // process.kill rather than child.kill: after child.kill('SIGTERM') Deno's child process
      // reports the signal as its exit at once and refuses the later SIGKILL, alive or not.
      const signal = (name: 'SIGTERM' | 'SIGKILL') => {
        if (!gone && child.pid !== undefined) {
          try {
            process.kill(child.pid, name);
          } catch {
            // Already gone.
          }
        }
      };
      let killed = false;
      signal('SIGTERM');
      const timer = setTimeout(() => {
        killed = !gone;
        signal('SIGKILL');
      }, 5000);
      await exited;
      clearTimeout(timer);
      return killed ? 'killed' : 'exited';
    },
  };
}

async function waitListening(host: EdgeHost, what: string): Promise<EdgeHost> {
  try {
    await waitFor(async () => {
      if (host.child.exitCode !== null) throw new Error(`${what} exited: ${host.output()}`);
      try {
        return (await fetch(`${host.url}/live`)).ok;
      } catch {
        return false;
      }
    }, { timeoutMs: 60_000, intervalMs: 100, what });
  } catch (error) {
    await host.stop();
    throw error;
  }
  return host;
}

/** `deno serve --allow-net --allow-env deploy/deno/main.ts` on a free port. */
export async function startDenoEdge(env: Record<string, string>): Promise<EdgeHost> {
  const port = await freePort();
  const child = spawn(DENO_BIN, [
    'serve',
    '--allow-net',
    '--allow-env',
    '--no-prompt',
    '--host',
    '127.0.0.1',
    '--port',
    String(port),
    'deploy/deno/main.ts',
  ], {
    cwd: ROOT,
    // Only what the test passes, plus PATH/HOME for Deno itself.
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', NO_COLOR: '1', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  return await waitListening(trackHost(child, `http://127.0.0.1:${port}`), 'the Deno edge server');
}

/** What the tests take from wrangler.toml. */
export interface WranglerConfig {
  main: string;
  compatibilityDate: string;
  wasmGlobs: string[];
  vars: Record<string, string>;
}

export async function readWranglerConfig(): Promise<WranglerConfig> {
  const text = await readFile(join(ROOT, 'deploy/cloudflare/wrangler.toml'), 'utf8');
  const field = (name: string) => new RegExp(`^${name}\\s*=\\s*"([^"]*)"`, 'm').exec(text)?.[1];
  const vars: Record<string, string> = {};
  const section = /^\[vars\]\n([\s\S]*?)(?=^\[|(?![\s\S]))/m.exec(text)?.[1] ?? '';
  for (const m of section.matchAll(/^([A-Z_0-9]+)\s*=\s*"([^"]*)"/gm)) vars[m[1]!] = m[2]!;
  const rule = /\[\[rules\]\]\ntype = "CompiledWasm"\nglobs = \[([^\]]*)\]/.exec(text)?.[1] ?? '';
  return {
    main: field('main') ?? '',
    compatibilityDate: field('compatibility_date') ?? '',
    wasmGlobs: [...rule.matchAll(/"([^"]+)"/g)].map((m) => m[1]!),
    vars,
  };
}

/** workerd serving `dir/worker.js` (+ `xxhash3.wasm`) with `vars`, outbound to loopback allowed. */
export async function startWorkerdEdge(
  dir: string,
  vars: Record<string, string>,
  wrangler: WranglerConfig,
): Promise<EdgeHost> {
  const port = await freePort();
  const text = (s: string) => JSON.stringify(s);
  const bindings = Object.entries(vars).map(([k, v]) => `(name = ${text(k)}, text = ${text(v)})`);
  await writeFile(
    join(dir, 'config.capnp'),
    `using Workerd = import "/workerd/workerd.capnp";
const config :Workerd.Config = (
  services = [
    (name = "main", worker = .worker),
    (name = "net", network = (allow = ["public", "private", "local"])),
  ],
  sockets = [(name = "http", address = "127.0.0.1:${port}", http = (), service = "main")],
);
const worker :Workerd.Worker = (
  modules = [
    (name = "worker.js", esModule = embed "worker.js"),
    (name = "xxhash3.wasm", wasm = embed "xxhash3.wasm"),
  ],
  compatibilityDate = ${text(wrangler.compatibilityDate)},
  globalOutbound = "net",
  bindings = [${bindings.join(', ')}],
);
`,
  );
  const child = spawn(WORKERD_BIN, ['serve', join(dir, 'config.capnp'), '--verbose'], {
    cwd: dir,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  return await waitListening(trackHost(child, `http://127.0.0.1:${port}`), 'workerd');
}

/** Serves the files of `dir` (read once) on a free loopback port. */
export async function serveModelFiles(
  dir: string,
): Promise<{ url: string; close(): Promise<void> }> {
  const names = [
    'tokenizer.json',
    'tokenizer_config.json',
    'config.json',
    'generation_config.json',
  ];
  const files = new Map<string, string>();
  for (const name of names) files.set(`/${name}`, await readFile(join(ROOT, dir, name), 'utf8'));
  const server: Server = createServer((req, res) => {
    const body = files.get(req.url ?? '');
    res.writeHead(body === undefined ? 404 : 200, { 'content-type': 'application/json' });
    res.end(body ?? '');
  });
  const port = await new Promise<number>((resolve) =>
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      resolve(typeof address === 'object' && address ? address.port : 0);
    })
  );
  return {
    url: `http://127.0.0.1:${port}/`,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}
