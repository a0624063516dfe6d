/**
 * Abuse bench (issue 16): each case of the security review, at full size, against a real
 * frontend per runtime (`switchboard demo`: frontend and two simulated workers in one process),
 * while a prober sends `GET /live` every 10 ms on its own connection. One row per case: the
 * status(es) the case got, how long it took, and `/live` latency (p50, p99, max) while it was in
 * flight. Goal: /live p99 under 50 ms for every case, and no 5xx.
 *
 *   npm run bench:abuse [-- --runtimes node,bun,deno --cases 'all' --frontend-args="..." --json-out F]
 *
 * `--cases` takes parts of case names separated by `;` (`--cases '38 MB;33 MB;idle'`).
 * `--frontend-args` adds flags to the frontend (for example `--http-body-thread-mb 0`, to see a
 * case with large bodies parsed on the event loop); `--json-out` writes the rows with provenance.
 *
 * A benchmark, not a test: the machine is shared, so figures move from run to run. The body
 * deadline is set to 5 s (default 60 s) so the slow-body case ends quickly.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { connect } from 'node:net';
import process from 'node:process';
import { parseArgs } from 'node:util';
import { finishBench } from './_provenance.ts';

const MODEL = 'Qwen/Qwen3-0.6B';
const ROOT = new URL('..', import.meta.url).pathname;

const { values: args } = parseArgs({
  options: {
    runtimes: { type: 'string', default: 'node,bun,deno' },
    cases: { type: 'string', default: 'all' },
    port: { type: 'string', default: '18931' },
    'frontend-args': { type: 'string', default: '' },
  },
});

const COMMANDS: Record<string, string[]> = {
  node: [process.execPath, '--import', 'tsx', 'src/main.ts'],
  bun: [`${ROOT}node_modules/.bin/bun`, 'src/main.ts'],
  deno: [`${ROOT}node_modules/.bin/deno`, 'run', '-A', 'src/main.ts'],
};

interface CaseResult {
  statuses: number[];
}

interface Case {
  name: string;
  run(base: string, port: number): Promise<CaseResult>;
}

const post = async (base: string, path: string, body: unknown): Promise<number> => {
  const res = await fetch(`${base}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
  await res.arrayBuffer();
  return res.status;
};

const messages = [{ role: 'user', content: 'hi' }];
const spaces = ' '.repeat(655_000);

/** Opens a connection, declares a 100-byte body, sends one byte and waits for the answer. */
function slowBody(port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1', () => {
      socket.write(
        'POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n' +
          'Content-Length: 100\r\nConnection: close\r\n\r\n{',
      );
    });
    let data = '';
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => {
      data += chunk;
      const m = /^HTTP\/1\.[01] (\d{3})/.exec(data);
      if (m) {
        socket.destroy();
        resolve(Number(m[1]));
      }
    });
    socket.on('error', reject);
  });
}

const single = (fn: (base: string, port: number) => Promise<number>) =>
async (
  base: string,
  port: number,
): Promise<CaseResult> => ({ statuses: [await fn(base, port)] });

const CASES: Case[] = [
  {
    name: 'idle (baseline, 1 s)',
    run: () => new Promise((resolve) => setTimeout(() => resolve({ statuses: [] }), 1000)),
  },
  {
    name: 'chat, 655k spaces',
    run: single((b) =>
      post(b, '/v1/chat/completions', {
        model: MODEL,
        messages: [{ role: 'user', content: spaces }],
        max_tokens: 2,
      })
    ),
  },
  {
    name: 'completions, 4 x 655k spaces (2.6 MB)',
    run: single((b) =>
      post(b, '/v1/completions', { model: MODEL, prompt: [spaces, spaces, spaces, spaces] })
    ),
  },
  {
    name: 'completions, 128 prompts x 300k (38 MB)',
    run: single((b) =>
      post(b, '/v1/completions', {
        model: MODEL,
        prompt: Array.from({ length: 128 }, () => 'a '.repeat(150_000)),
      })
    ),
  },
  {
    name: 'chat, 1M empty messages (33 MB)',
    run: single((b) =>
      post(
        b,
        '/v1/chat/completions',
        `{"model":"${MODEL}","messages":[${
          Array.from({ length: 1_000_000 }, () => '{"role":"user","content":""}').join(',')
        }]}`,
      )
    ),
  },
  {
    name: 'stop: 32 x 10k characters',
    run: single((b) =>
      post(b, '/v1/chat/completions', {
        model: MODEL,
        messages,
        stop: Array.from({ length: 32 }, (_, i) => `${i}`.padEnd(10_000, 'x')),
      })
    ),
  },
  {
    name: 'stop: 32 x 1024 characters, n=16, 256 tokens',
    run: single((b) =>
      post(b, '/v1/chat/completions', {
        model: MODEL,
        messages,
        n: 16,
        max_tokens: 256,
        ignore_eos: true,
        stop: Array.from({ length: 32 }, (_, i) => `${i}`.padEnd(1024, 'e')),
      })
    ),
  },
  {
    name: 'slow body x 16 (1 byte, then nothing)',
    run: async (_b, port) => ({
      statuses: await Promise.all(Array.from({ length: 16 }, () => slowBody(port))),
    }),
  },
  {
    name: 'JSON nested 5,000 levels',
    run: single((b) =>
      post(
        b,
        '/v1/chat/completions',
        `{"model":"${MODEL}","messages":${'['.repeat(5000)}${']'.repeat(5000)}}`,
      )
    ),
  },
  {
    name: 'max_tokens: 1e400',
    run: single((b) =>
      post(
        b,
        '/v1/chat/completions',
        `{"model":"${MODEL}","messages":[{"role":"user","content":"hi"}],"max_tokens":1e400}`,
      )
    ),
  },
  {
    name: 'GET /docs/constructor',
    run: single(async (b) => {
      const res = await fetch(`${b}/docs/constructor`);
      await res.arrayBuffer();
      return res.status;
    }),
  },
  {
    name: 'deep tool schema (100 levels)',
    run: single((b) => {
      let schema: Record<string, unknown> = { type: 'string' };
      for (let i = 0; i < 100; i++) schema = { type: 'object', properties: { a: schema } };
      return post(b, '/v1/chat/completions', {
        model: MODEL,
        messages,
        tools: [{ type: 'function', function: { name: 'f', parameters: schema } }],
      });
    }),
  },
  {
    name: 'n=128 x top_logprobs 20 x 100 tokens, x16',
    run: async (b) => ({
      statuses: await Promise.all(Array.from({ length: 16 }, () =>
        post(b, '/v1/chat/completions', {
          model: MODEL,
          messages,
          n: 128,
          logprobs: true,
          top_logprobs: 20,
          max_tokens: 100,
          stream: true,
        }))),
    }),
  },
];

/** GETs /live back to back, 10 ms apart, until stopped; resolves to the latencies in ms. */
/**
 * The prober: its own process, so the client building and sending a 38 MB body in this one never
 * delays a probe (it did when they shared this event loop). It sends `GET /live` every 10 ms and,
 * when told to stop on stdin, prints the latencies as JSON.
 */
const PROBER = `
const base = process.argv[1];
const latencies = [];
let running = true;
process.stdin.once('data', () => { running = false; });
(async () => {
  while (running) {
    const start = performance.now();
    try { const res = await fetch(base + '/live'); await res.arrayBuffer(); } catch {}
    latencies.push(performance.now() - start);
    if (latencies.length === 1) process.stdout.write('ready\\n');
    await new Promise((r) => setTimeout(r, 10));
  }
  process.stdout.write(JSON.stringify(latencies.slice(1)) + '\\n');
  process.exit(0);
})();
`;

async function probe(base: string): Promise<{ stop(): Promise<number[]> }> {
  const child = spawn(process.execPath, ['-e', PROBER, base], {
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  let out = '';
  child.stdout!.setEncoding('utf8');
  const ready = new Promise<void>((resolve, reject) => {
    child.stdout!.on('data', (d: string) => {
      out += d;
      if (out.includes('ready\n')) resolve();
    });
    child.once('exit', (code) => reject(new Error(`prober exited with ${code}`)));
  });
  await ready;
  return {
    async stop() {
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.stdin!.end('stop\n');
      await exited;
      const last = out.trim().split('\n').at(-1) ?? '[]';
      return JSON.parse(last) as number[];
    },
  };
}

const quantile = (sorted: number[], q: number) =>
  sorted.length === 0 ? NaN : sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;

async function waitReady(base: string, child: ChildProcess): Promise<void> {
  const deadline = Date.now() + 60_000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`server exited with ${child.exitCode}`);
    try {
      const res = await fetch(`${base}/v1/models`);
      const body = await res.json() as { data?: Array<{ id: string }> };
      if (body.data?.some((m) => m.id === MODEL)) return;
    } catch {
      // not up yet
    }
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  throw new Error('server did not become ready');
}

const rows: string[] = [];
const results: Array<{
  case: string;
  runtime: string;
  statuses: string;
  caseMs: number;
  liveMs: { p50: number; p99: number; max: number; probes: number };
}> = [];
// Case names contain commas: `--cases` takes parts of names, separated by `;`.
const wanted = args.cases === 'all' ? undefined : args.cases.split(';').filter(Boolean);
for (const runtime of args.runtimes.split(',')) {
  const command = COMMANDS[runtime];
  if (!command) throw new Error(`unknown runtime ${runtime}`);
  const port = Number(args.port);
  const child = spawn(command[0]!, [
    ...command.slice(1),
    'demo',
    '--speedup-ratio',
    '100',
    '--http-host',
    '127.0.0.1',
    '--http-port',
    String(port),
    '--http-body-timeout-secs',
    '5',
    ...args['frontend-args'].split(/\s+/).filter(Boolean),
  ], { cwd: ROOT, stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr?.on('data', (d) => {
    stderr = (stderr + String(d)).slice(-4000);
  });
  const base = `http://127.0.0.1:${port}`;
  try {
    await waitReady(base, child);
    // Warm up: the first chat loads the tokenizer (and its worker thread); then a few probes.
    await post(base, '/v1/chat/completions', { model: MODEL, messages, max_tokens: 2 });
    await post(base, '/v1/chat/completions', {
      model: MODEL,
      messages: [{ role: 'user', content: 'warm '.repeat(5000) }],
      max_tokens: 2,
    });
    await (await probe(base)).stop();
    for (const c of CASES) {
      if (wanted && !wanted.some((part) => c.name.includes(part))) continue;
      const prober = await probe(base);
      const start = performance.now();
      let statuses: string;
      try {
        const result = await c.run(base, port);
        const counts = new Map<number, number>();
        for (const s of result.statuses) counts.set(s, (counts.get(s) ?? 0) + 1);
        statuses = [...counts].map(([s, n]) => (n > 1 ? `${n}x ${s}` : String(s))).join(', ') ||
          '-';
      } catch (error) {
        statuses = `error: ${(error as Error).message}`;
      }
      const ms = performance.now() - start;
      const lat = (await prober.stop()).sort((a, b) => a - b);
      // A case shorter than the probe interval may have no probe in flight: '-'.
      const f = (n: number | undefined) => n === undefined || Number.isNaN(n) ? '-' : n.toFixed(1);
      const row = `| ${c.name} | ${runtime} | ${statuses} | ${ms.toFixed(0)} | ${
        f(quantile(lat, 0.5))
      } | ${f(quantile(lat, 0.99))} | ${f(lat.at(-1))} | ${lat.length} |`;
      rows.push(row);
      results.push({
        case: c.name,
        runtime,
        statuses,
        caseMs: ms,
        liveMs: {
          p50: quantile(lat, 0.5),
          p99: quantile(lat, 0.99),
          max: lat.at(-1) ?? NaN,
          probes: lat.length,
        },
      });
      console.log(row);
    }
  } catch (error) {
    console.error(`${runtime}: ${(error as Error).message}\n${stderr}`);
  } finally {
    child.kill('SIGKILL');
    await new Promise((resolve) => child.once('exit', resolve));
  }
}

console.log(
  '\n| case | runtime | status | case ms | /live p50 ms | /live p99 ms | /live max ms | probes |',
);
console.log('|---|---|---|---:|---:|---:|---:|---:|');
for (const row of rows) console.log(row);
finishBench('abuse', { frontendArgs: args['frontend-args'], results });
