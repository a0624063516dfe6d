/**
 * What the tool-call and reasoning parsers cost the frontend per streamed token, end to end: the
 * frontend's CPU time per worker token for the same streamed chat completions with the model's
 * parsers on (`--dyn-tool-call-parser hermes --dyn-reasoning-parser qwen3`, Qwen3's formats) and
 * off, on Node, Bun and Deno. Results go in `docs/benchmarks.md` ("Parser overhead").
 *
 *   npm run bench:parsers [-- --runtimes node,bun,deno --reps 3 --concurrency 64 --warmup 1
 *     --duration 2.5 --json-out bench/results/parsers.json]
 *
 * Processes (`taskset`): per runtime, one frontend on CPU 0 (file discovery, tcp request plane,
 * round-robin); on CPU 1 the load generator (`bench/fixtures/load.ts` on Bun) and two simulated
 * workers (`switchboard mocker --speedup-ratio 1000 --script`), one serving `parsed` (the parser
 * flags above) and one `plain` (no parsers), both answering from the same script:
 *
 * - `agent`: a `<think>` block (~70 tokens), a sentence, and one `<tool_call>` (~60 tokens): with
 *   parsers on it streams as `reasoning_content`, `content` and `tool_calls` deltas;
 * - `text`: plain prose of about the same length: with parsers on, the parsers scan it for
 *   markers and pass it through.
 *
 * A cell is N concurrent streams in a closed loop with a warm-up and a measured window (see
 * `load.ts`); its figure is the frontend's CPU time over the window (from /proc) divided by the
 * worker tokens streamed in it (streams ended x the answer's `completion_tokens`). Each rep runs
 * the four cells (text/agent x off/on) in an order that rotates, so that a drift in machine speed
 * does not favour one; the report gives the median over reps and the overhead on/off.
 * `bench/parsers.ts` measures the parser stage alone, in process.
 */
import { finishBench } from './_provenance.ts';
import { type ChildProcess, spawn } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import process from 'node:process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import type { LoadResult } from './fixtures/load.ts';
import { freePort } from '../tests/helpers/process.ts';
import { ANSWERS, promptOf, WEATHER_TOOL } from './_parser-answers.ts';

type Runtime = 'node' | 'bun' | 'deno';
type Kind = 'text' | 'agent';
type Mode = 'off' | 'on';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const HOST = '127.0.0.1';
const { values: args } = parseArgs({
  options: {
    runtimes: { type: 'string', default: 'node,bun,deno' },
    reps: { type: 'string', default: '3' },
    concurrency: { type: 'string', default: '64' },
    warmup: { type: 'string', default: '1' },
    duration: { type: 'string', default: '2.5' },
    'json-out': { type: 'string' },
  },
});
const runtimes = args.runtimes.split(',') as Runtime[];
const reps = Number(args.reps);
const concurrency = Number(args.concurrency);

const AGENT = ANSWERS.agent;
const TEXT = ANSWERS.text;
const MODELS: Record<Mode, string> = { off: 'plain', on: 'parsed' };
const chat = (mode: Mode, kind: Kind) => ({
  model: MODELS[mode],
  messages: [{ role: 'user', content: promptOf(kind) }],
  tools: [WEATHER_TOOL],
  stream: true,
  max_tokens: 400,
});

const children = new Set<ChildProcess>();
process.on('exit', () => {
  for (const child of children) child.kill('SIGKILL');
});
const workDir = mkdtempSync(join(os.tmpdir(), 'switchboard-parsers-'));

interface Proc {
  pid: number;
  child: ChildProcess;
  line(): Promise<string>;
  send(line: string): void;
}

function launch(name: string, argv: string[], cpu: number, env: Record<string, string> = {}) {
  const clean = Object.fromEntries(
    Object.entries(process.env).filter(([key]) => !key.startsWith('DYN_')),
  );
  const err = openSync(join(workDir, `${name}.log`), 'a');
  const child = spawn('taskset', ['-c', String(cpu), ...argv], {
    cwd: ROOT,
    env: { ...clean, ...env },
    stdio: ['pipe', 'pipe', err],
  });
  closeSync(err);
  children.add(child);
  child.once('exit', () => children.delete(child));
  const lines = createInterface({ input: child.stdout! });
  const queue: string[] = [];
  const waiting: Array<(line: string) => void> = [];
  lines.on('line', (line) => {
    const next = waiting.shift();
    if (next) next(line);
    else queue.push(line);
  });
  const proc: Proc = {
    pid: child.pid!,
    child,
    line: () =>
      queue.length > 0 ? Promise.resolve(queue.shift()!) : new Promise((r) => waiting.push(r)),
    send: (line) => void child.stdin!.write(`${line}\n`),
  };
  return proc;
}

function runtimeArgv(runtime: Runtime, entry: string): string[] {
  if (runtime === 'node') return ['node', '--import', 'tsx', '--experimental-websocket', entry];
  if (runtime === 'bun') return ['node_modules/.bin/bun', entry];
  return ['node_modules/.bin/deno', 'run', '-A', entry];
}

async function until(what: string, check: () => Promise<boolean>): Promise<void> {
  const deadline = Date.now() + 90_000;
  for (;;) {
    try {
      if (await check()) return;
    } catch {
      // not up yet
    }
    if (Date.now() > deadline) throw new Error(`${what} not ready after 90 s (logs in ${workDir})`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};

const fileKv = join(workDir, 'kv');
const script = join(workDir, 'script.json');
writeFileSync(
  script,
  JSON.stringify({ rules: [{ match: 'AGENT', output: AGENT }, { match: 'TEXT', output: TEXT }] }),
);
const mockerArgs = (model: string, extra: string[]) => [
  ...runtimeArgv('node', 'main.ts'),
  'mocker',
  '--discovery-backend',
  'file',
  '--request-plane',
  'tcp',
  '--event-plane',
  'nats',
  '--model-path',
  'tests/fixtures/model',
  '--model-name',
  model,
  '--endpoint',
  `dyn://dynamo.${model}.generate`,
  '--speedup-ratio',
  '1000',
  '--max-num-seqs',
  '1024',
  '--script',
  script,
  ...extra,
];
launch('mocker-plain', mockerArgs(MODELS.off, []), 1, { DYN_FILE_KV: fileKv });
launch(
  'mocker-parsed',
  mockerArgs(MODELS.on, ['--dyn-tool-call-parser', 'hermes', '--dyn-reasoning-parser', 'qwen3']),
  1,
  { DYN_FILE_KV: fileKv },
);
const load = launch('load', runtimeArgv('bun', 'bench/fixtures/load.ts'), 1, {
  BUN_CONFIG_MAX_HTTP_REQUESTS: '65536',
});
await load.line();

interface Cell {
  runtime: Runtime;
  kind: Kind;
  mode: Mode;
  rep: number;
  streams: number;
  tokensPerStream: number;
  cpuUsPerToken: number;
  errors: number;
  busy: number[];
}
const cells: Cell[] = [];
const log = (line: string) => console.error(line);

for (const runtime of runtimes) {
  const port = await freePort();
  const frontend = launch(
    `frontend-${runtime}`,
    [
      ...runtimeArgv(runtime, runtime === 'deno' ? 'main.ts' : 'src/main.ts'),
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
    ],
    0,
    { DYN_FILE_KV: fileKv },
  );
  const base = `http://${HOST}:${port}`;
  await until(`${runtime} frontend with both models`, async () => {
    const body = await (await fetch(`${base}/v1/models`)).json() as { data: { id: string }[] };
    return Object.values(MODELS).every((m) => body.data.some((d) => d.id === m));
  });
  // The answer's length in worker tokens, and a check that the parsers do what they should.
  const tokens: Partial<Record<`${Kind}-${Mode}`, number>> = {};
  for (const kind of ['text', 'agent'] as const) {
    for (const mode of ['off', 'on'] as const) {
      const response = await fetch(`${base}/v1/chat/completions`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ ...chat(mode, kind), stream: false }),
      });
      const body = await response.json() as {
        usage: { completion_tokens: number };
        choices: { message: { tool_calls?: unknown[]; reasoning_content?: string } }[];
      };
      const message = body.choices[0]!.message;
      const parsed = (message.tool_calls?.length ?? 0) > 0 && !!message.reasoning_content;
      if (parsed !== (kind === 'agent' && mode === 'on')) {
        throw new Error(
          `${kind}/${mode}: parsers did not act as expected: ${JSON.stringify(body)}`,
        );
      }
      tokens[`${kind}-${mode}`] = body.usage.completion_tokens;
    }
  }
  for (let rep = 0; rep < reps; rep++) {
    const order: Array<[Kind, Mode]> = [['text', 'off'], ['text', 'on'], ['agent', 'off'], [
      'agent',
      'on',
    ]];
    for (const [kind, mode] of order.map((_, i) => order[(i + rep) % order.length]!)) {
      load.send(JSON.stringify({
        target: 'http',
        url: `${base}/v1/chat/completions`,
        body: chat(mode, kind),
        concurrency,
        warmupMs: Number(args.warmup) * 1000,
        durationMs: Number(args.duration) * 1000,
        limitMs: 60_000,
        maxRequests: 1_000_000,
        minTokens: 0,
        cpuPid: frontend.pid,
      }));
      const r = JSON.parse(await load.line()) as LoadResult;
      const streams = r.streamsPerS * r.windowS;
      const perStream = tokens[`${kind}-${mode}`]!;
      const cell: Cell = {
        runtime,
        kind,
        mode,
        rep,
        streams: Math.round(streams),
        tokensPerStream: perStream,
        cpuUsPerToken: (r.cpuS / (streams * perStream)) * 1e6,
        errors: r.errors,
        busy: r.busy,
      };
      cells.push(cell);
      log(
        `[${runtime}] ${kind} parsers ${mode} ${rep + 1}/${reps}: ${cell.streams} streams x ` +
          `${perStream} tokens, ${cell.cpuUsPerToken.toFixed(2)} us CPU/token, ${r.errors} errors` +
          `, CPU0 ${Math.round(r.busy[0]! * 100)}% CPU1 ${Math.round(r.busy[1]! * 100)}%` +
          (r.firstError ? `; first error: ${r.firstError}` : ''),
      );
    }
  }
  frontend.child.kill('SIGTERM');
  await new Promise((r) => frontend.child.once('exit', r));
}

const summary = runtimes.flatMap((runtime) =>
  (['text', 'agent'] as const).map((kind) => {
    const of = (mode: Mode) =>
      median(
        cells.filter((c) => c.runtime === runtime && c.kind === kind && c.mode === mode).map((c) =>
          c.cpuUsPerToken
        ),
      );
    const off = of('off');
    const on = of('on');
    return { runtime, kind, offUsPerToken: off, onUsPerToken: on, overhead: on / off - 1 };
  })
);
console.log(
  `Frontend CPU per streamed token, ${concurrency} concurrent streams, median of ${reps} reps`,
);
console.log('| runtime | answer | parsers off (us/token) | parsers on (us/token) | on/off |');
console.log('|---|---|---|---|---|');
for (const s of summary) {
  console.log(
    `| ${s.runtime} | ${s.kind} | ${s.offUsPerToken.toFixed(2)} | ${s.onUsPerToken.toFixed(2)} | ` +
      `${s.overhead >= 0 ? '+' : ''}${(s.overhead * 100).toFixed(1)}% |`,
  );
}
console.log(
  `Load average: ${readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ')}`,
);
finishBench('parser-overhead', { concurrency, reps, summary, cells });
for (const child of children) child.kill('SIGTERM');
rmSync(workDir, { recursive: true, force: true });
process.exit(0);
