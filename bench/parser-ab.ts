/**
 * What the tool-call and reasoning parsers cost per streamed token, in process, as a paired A/B
 * test that machine noise cannot fake (issue 14: "parsing adds no more than 5% CPU per streamed
 * token"). Results go in `docs/benchmarks.md` ("Parser overhead").
 *
 *   npm run bench:parser-ab [-- --runtimes node,bun,deno --rounds 240 --streams 16 --warmup 30
 *     --json-out bench/results/parser-ab.json]
 *   node --cpu-prof --import tsx bench/parser-ab.ts --in-process --arm on   # this process, one arm
 *
 * Each runtime runs in its own process (`--child`), one after the other; `--in-process` runs the
 * bench in the current process and runtime instead (`--arm on|off`: that arm only, for profiles).
 *
 * The path measured is the chat route's own code from `startChat` on, on a `Core` built by
 * `createCore` whose request plane is an in-memory source: the route's handler body
 * (`routes/v1/chat/completions.ts`) minus the HTTP intake (the request is validated once, up
 * front), with a fake Hono context for `answer()` / `sseResponse()`. Per stream:
 *
 * - setup (`startChat`): model lookup, chat template and tokenization, routing and dispatch to
 *   the in-memory "worker", the output parser's creation, metric guard;
 * - forward (`answer()` and reading its SSE body to the end): the worker items unwrapped and
 *   booked (`dispatch.ts`), detokenized with stop strings (`postprocess.ts`), the parsers
 *   (`chat-deltas.ts`, when the card names them), chunk shaping (`chat.ts`), metrics
 *   (`chunk-stream.ts`), SSE framing (`chunk-frame.ts`, `sse.ts`) into bytes.
 *
 * The "worker" answers every request with the same frames, one token per frame (the fixture
 * tokenizer's ids of the answer, `{ data: { token_ids: [id], index: 0 } }`, the last with
 * `finish_reason` and usage, as the mocker sends them), handed out as fast as they are read.
 * Two models on one core serve it: `plain` (no parsers) and `parsed` (`tool_call_parser: hermes`,
 * `reasoning_parser: qwen3` on its card, as `--dyn-tool-call-parser hermes
 * --dyn-reasoning-parser qwen3` put them there). Two answers, as in `bench/parser-overhead.ts`:
 * `agent` (a `<think>` block, a sentence, one `<tool_call>`) and `text` (plain prose that the
 * parsers only scan). Before timing, one stream of each cell is checked: `agent` with parsers on
 * must stream `reasoning_content`, `content` and `tool_calls` deltas and finish with
 * `tool_calls`; with them off, and `text` either way, only `content`.
 *
 * Design: each round runs, per answer, a batch of N concurrent streams with parsers off (A) and
 * the same batch with parsers on (B) in the order ABBA or BAAB (alternating by round), and takes
 * the round's ratio on/off of CPU time (`process.cpuUsage()`, user + system, all threads of the
 * process) per worker token, for the forward part and for setup + forward. Reported per answer:
 * the median of those per-round ratios and a bootstrap 95% confidence interval of that median
 * (resampling rounds), with the median us/token of each arm. Warm-up rounds come first.
 */
import { finishBench } from './_provenance.ts';
import { spawn } from 'node:child_process';
import process from 'node:process';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import type { Context } from 'hono';
import { createPromMetricFactory } from '../src/adapters/prom-metrics.ts';
import { resolveConfig } from '../src/core/config.ts';
import { type Core, createCore } from '../src/core/core.ts';
import { modelCardFor } from '../src/core/discovery/model-dir.ts';
import { silentLogger } from '../src/core/logger.ts';
import type { PlaneRequest, RequestPlaneClient } from '../src/core/plane/types.ts';
import type { LLMEngineOutput } from '../src/core/plane/worker.ts';
import {
  type ChatCompletionRequest,
  ChatCompletionRequestSchema,
} from '../src/core/api/openai/schemas.ts';
import { validateChatCompletionRequest } from '../src/core/api/openai/validate.ts';
import { collectChat, startChat } from '../src/core/generate/chat.ts';
import { answer } from '../src/http/openai-route.ts';
import { createStallWatchdog } from '../src/http/stall.ts';
import type { AppEnv } from '../src/http/types.ts';
import { readModelDir } from '../src/runtime/model-dir.ts';
import { createPreprocessorSource } from '../src/runtime/preprocessors.ts';
import { createRandom } from '../src/mocker/engine/random.ts';
import { ANSWERS, promptOf, WEATHER_TOOL } from './_parser-answers.ts';

type Runtime = 'node' | 'bun' | 'deno';
type Kind = 'agent' | 'text';
type Arm = 'off' | 'on';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const MODEL_DIR = `${ROOT}tests/fixtures/model`;
const MODELS: Record<Arm, string> = { off: 'plain', on: 'parsed' };
const RESULT_MARK = '@@parser-ab ';

const { values: args } = parseArgs({
  options: {
    runtimes: { type: 'string', default: 'node,bun,deno' },
    'in-process': { type: 'boolean', default: false },
    rounds: { type: 'string', default: '240' },
    streams: { type: 'string', default: '16' },
    warmup: { type: 'string', default: '30' },
    resamples: { type: 'string', default: '4000' },
    arm: { type: 'string', default: 'ab' },
    child: { type: 'boolean', default: false },
  },
});
const rounds = Number(args.rounds);
const streamsPerBatch = Number(args.streams);
const warmupRounds = Number(args.warmup);
const resamples = Number(args.resamples);

const KINDS: readonly Kind[] = ['agent', 'text'];
/** The request as the route sees it after intake (validated once here, not timed). */
const requestOf = (arm: Arm, kind: Kind): ChatCompletionRequest =>
  validateChatCompletionRequest(ChatCompletionRequestSchema.parse({
    model: MODELS[arm],
    messages: [{ role: 'user', content: promptOf(kind) }],
    tools: [WEATHER_TOOL],
    stream: true,
    max_tokens: 400,
  }));

const runtimeName = (): Runtime =>
  'Bun' in globalThis ? 'bun' : 'Deno' in globalThis ? 'deno' : 'node';

// ---------------------------------------------------------------------------------------------
// Statistics
// ---------------------------------------------------------------------------------------------

const median = (xs: readonly number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};

/** Percentile bootstrap 95% interval of the median of `xs`. */
function bootstrapMedianCi(xs: readonly number[], n: number): [number, number] {
  const random = createRandom(14);
  const meds: number[] = [];
  const sample = new Array<number>(xs.length);
  for (let b = 0; b < n; b++) {
    for (let i = 0; i < xs.length; i++) sample[i] = xs[Math.floor(random() * xs.length)]!;
    meds.push(median(sample));
  }
  meds.sort((a, b) => a - b);
  return [meds[Math.floor(0.025 * (n - 1))]!, meds[Math.ceil(0.975 * (n - 1))]!];
}

// ---------------------------------------------------------------------------------------------
// The in-process frontend
// ---------------------------------------------------------------------------------------------

/** A worker stream's items, handed out as fast as they are read (no generator, no queue). */
class Frames implements AsyncIterableIterator<unknown> {
  #at = 0;
  readonly items: readonly unknown[];
  constructor(items: readonly unknown[]) {
    this.items = items;
  }
  [Symbol.asyncIterator]() {
    return this;
  }
  next(): Promise<IteratorResult<unknown>> {
    if (this.#at >= this.items.length) return Promise.resolve({ value: undefined, done: true });
    return Promise.resolve({ value: this.items[this.#at++], done: false });
  }
  return(): Promise<IteratorResult<unknown>> {
    this.#at = this.items.length;
    return Promise.resolve({ value: undefined, done: true });
  }
}

interface Bench {
  core: Core;
  /** Worker items per answer, and the answer's length in tokens. */
  frames: Record<Kind, { items: unknown[]; tokens: number }>;
  /** Which answer the "worker" gives the next requests. */
  answering: { kind: Kind };
}

async function setUp(): Promise<Bench> {
  const answering: { kind: Kind } = { kind: 'agent' };
  const frames = {} as Bench['frames'];
  const plane: RequestPlaneClient = {
    send(_address, _request: PlaneRequest) {
      return Promise.resolve(new Frames(frames[answering.kind].items));
    },
    close: () => Promise.resolve(),
  };
  const resolved = resolveConfig({ argv: ['--router-mode', 'round-robin'], env: {} });
  if (!resolved.ok) throw new Error(resolved.errors.join('\n'));
  const core = createCore({
    logger: silentLogger,
    metrics: createPromMetricFactory(),
    plane,
    preprocessors: createPreprocessorSource({ workers: 0, logger: silentLogger }),
  }, resolved.config);
  const files = await readModelDir(MODEL_DIR);
  const endpoint = { namespace: 'dynamo', component: 'backend', endpoint: 'generate' };
  for (const arm of ['off', 'on'] as const) {
    const card = await modelCardFor(files, {
      name: MODELS[arm],
      kvCacheBlockSize: 16,
      runtimeConfig: arm === 'on' ? { tool_call_parser: 'hermes', reasoning_parser: 'qwen3' } : {},
    });
    const instanceId = arm === 'on' ? '2b' : '1a';
    const added = core.models.addCard({ ...endpoint, instanceId }, card);
    if (!added.ok) throw new Error(added.reason);
    core.models.setInstance({
      instanceId,
      endpoint,
      transport: { tcp: `127.0.0.1:1/${instanceId}/generate` },
    });
  }
  core.lifecycle.markReady();
  const pre = await core.preprocessors.get(core.models.get(MODELS.off)!);
  for (const kind of KINDS) {
    const ids = pre.tokenizer.encode(ANSWERS[kind], { addSpecialTokens: false });
    const items = ids.map((id, i): { data: LLMEngineOutput } => ({
      data: i < ids.length - 1 ? { token_ids: [id], index: 0 } : {
        token_ids: [id],
        index: 0,
        finish_reason: 'stop',
        completion_usage: { prompt_tokens: 10, completion_tokens: ids.length, total_tokens: 0 },
      },
    }));
    frames[kind] = { items, tokens: ids.length };
  }
  return { core, frames, answering };
}

/** The Hono context `answer()` and `sseResponse()` read: the app's variables, no HTTP. */
function contextFor(core: Core, watchdog: ReturnType<typeof createStallWatchdog>) {
  let ids = 0;
  return (): Context<AppEnv> => {
    const vars: Partial<AppEnv['Variables']> = {
      core,
      requestId: `req-${++ids}`,
      surface: 'openai',
      stallWatchdog: watchdog,
    };
    const headers = new Headers();
    const c = {
      env: undefined,
      get: (key: keyof AppEnv['Variables']) => vars[key],
      header: (name: string, value: string) => headers.set(name, value),
      newResponse: (body: ReadableStream<Uint8Array>) => new Response(body, { headers }),
    };
    return c as unknown as Context<AppEnv>;
  };
}

/** Starts one streamed chat request: what the route's handler does up to `answer()`. */
async function start(core: Core, request: ChatCompletionRequest, id: number) {
  const controller = new AbortController();
  const call = {
    requestId: `r-${id}`,
    headers: { 'x-request-id': `r-${id}` },
    signal: controller.signal,
    cancel: () => controller.abort(),
  };
  return { call, started: await startChat(core, request, call) };
}

type StartedCall = Awaited<ReturnType<typeof start>>;

/** `answer()` as the route calls it, and its SSE body read to the end: the bytes. */
async function stream(context: () => Context<AppEnv>, s: StartedCall): Promise<Uint8Array[]> {
  const response = await answer(context(), {
    started: s.started,
    call: s.call,
    stream: true,
    collect: collectChat,
  }) as unknown as Response;
  const reader = response.body!.getReader();
  const out: Uint8Array[] = [];
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return out;
    out.push(value);
  }
}

const cpuNow = (): number => {
  const u = process.cpuUsage();
  return u.user + u.system;
};

interface BatchTime {
  setupUs: number;
  forwardUs: number;
  bytes: number;
}

let nextId = 0;

/** N concurrent streams of one arm and answer: CPU us of setup and of forward. */
async function batch(
  b: Bench,
  context: () => Context<AppEnv>,
  request: ChatCompletionRequest,
  kind: Kind,
): Promise<BatchTime> {
  b.answering.kind = kind;
  const t0 = cpuNow();
  const started = await Promise.all(
    Array.from({ length: streamsPerBatch }, () => start(b.core, request, nextId++)),
  );
  const t1 = cpuNow();
  const bodies = await Promise.all(started.map((s) => stream(context, s)));
  const t2 = cpuNow();
  let bytes = 0;
  for (const body of bodies) for (const piece of body) bytes += piece.byteLength;
  return { setupUs: t1 - t0, forwardUs: t2 - t1, bytes: bytes / streamsPerBatch };
}

/** One stream's SSE text, checked for the deltas the arm and answer must produce. */
async function check(b: Bench, context: () => Context<AppEnv>, arm: Arm, kind: Kind) {
  b.answering.kind = kind;
  const body = await stream(context, await start(b.core, requestOf(arm, kind), nextId++));
  const decoder = new TextDecoder();
  const text = body.map((piece) => decoder.decode(piece, { stream: true })).join('');
  const events = text.split('\n\n').filter((e) => e !== '');
  if (events.at(-1) !== 'data: [DONE]') throw new Error(`${arm}/${kind}: no [DONE]`);
  const seen = new Set<string>();
  let finish: string | undefined;
  let reasoning = '';
  let content = '';
  let callArgs = '';
  for (const event of events.slice(0, -1)) {
    const chunk = JSON.parse(event.slice('data: '.length)) as {
      choices: Array<{
        delta: {
          content?: string;
          reasoning_content?: string;
          tool_calls?: Array<{ function: { name?: string; arguments: string } }>;
        };
        finish_reason: string | null;
      }>;
    };
    for (const choice of chunk.choices) {
      const d = choice.delta;
      if (d.content) (seen.add('content'), content += d.content);
      if (d.reasoning_content) (seen.add('reasoning_content'), reasoning += d.reasoning_content);
      if (d.tool_calls) {
        seen.add('tool_calls');
        for (const call of d.tool_calls) callArgs += call.function.arguments;
      }
      if (choice.finish_reason) finish = choice.finish_reason;
    }
  }
  const fields = [...seen].sort().join(',');
  const expected = arm === 'on' && kind === 'agent'
    ? { fields: 'content,reasoning_content,tool_calls', finish: 'tool_calls' }
    : { fields: 'content', finish: 'stop' };
  if (fields !== expected.fields || finish !== expected.finish) {
    throw new Error(
      `${arm}/${kind}: expected deltas ${expected.fields} finishing ${expected.finish}, got ` +
        `${fields} finishing ${finish}:\n${text.slice(0, 2000)}`,
    );
  }
  if (arm === 'on' && kind === 'agent') {
    const parsed = JSON.parse(callArgs) as { city?: string };
    if (parsed.city !== 'Paris' || !reasoning.includes('weather') || !content.includes('Let me')) {
      throw new Error(
        `on/agent: unexpected parse: ${JSON.stringify({ reasoning, content, callArgs })}`,
      );
    }
  } else if (content !== ANSWERS[kind]) {
    throw new Error(`${arm}/${kind}: content differs from the answer: ${content.slice(0, 300)}`);
  }
  return { fields, finish, events: events.length - 1 };
}

interface Cell {
  kind: Kind;
  tokens: number;
  offUsPerToken: number;
  onUsPerToken: number;
  ratio: number;
  ci: [number, number];
  /** Median of the per-round differences on - off, us per token, and its 95% CI. */
  addedUsPerToken: number;
  addedCi: [number, number];
  setupOffUsPerToken: number;
  setupOnUsPerToken: number;
  totalRatio: number;
  totalCi: [number, number];
  bytesPerStream: Record<Arm, number>;
  rounds: Array<{ off: number; on: number; setupOff: number; setupOn: number }>;
}

interface RunResult {
  runtime: Runtime;
  version: string;
  rounds: number;
  warmupRounds: number;
  streamsPerBatch: number;
  wallS: number;
  checks: Record<string, unknown>;
  cells: Cell[];
}

async function run(): Promise<RunResult> {
  const wallStart = performance.now();
  const b = await setUp();
  const watchdog = createStallWatchdog(
    b.core.config.httpWriteTimeoutSecs * 1000,
    () => b.core.monotonic(),
  );
  const context = contextFor(b.core, watchdog);
  const checks: Record<string, unknown> = {};
  for (const kind of KINDS) {
    for (const arm of ['off', 'on'] as const) {
      checks[`${kind}/${arm}`] = await check(b, context, arm, kind);
    }
  }
  console.error(`[${runtimeName()}] checked: ${JSON.stringify(checks)}`);
  const requests = Object.fromEntries(
    KINDS.map((kind) => [kind, { off: requestOf('off', kind), on: requestOf('on', kind) }]),
  ) as Record<Kind, Record<Arm, ChatCompletionRequest>>;
  const only = args.arm === 'on' || args.arm === 'off' ? args.arm : undefined;
  const samples = Object.fromEntries(KINDS.map((k) => [k, [] as Cell['rounds']])) as Record<
    Kind,
    Cell['rounds']
  >;
  const bytes = Object.fromEntries(KINDS.map((k) => [k, { off: 0, on: 0 }])) as Record<
    Kind,
    Record<Arm, number>
  >;
  const log = (line: string) => console.error(line);
  for (let r = -warmupRounds; r < rounds; r++) {
    const kinds = r % 2 === 0 ? KINDS : [...KINDS].reverse();
    for (const kind of kinds) {
      const order: Arm[] = only
        ? [only, only, only, only]
        : Math.abs(r) % 2 === 0
        ? ['off', 'on', 'on', 'off']
        : ['on', 'off', 'off', 'on'];
      const sum = { off: { setup: 0, forward: 0 }, on: { setup: 0, forward: 0 } };
      for (const arm of order) {
        const t = await batch(b, context, requests[kind][arm], kind);
        sum[arm].setup += t.setupUs;
        sum[arm].forward += t.forwardUs;
        bytes[kind][arm] = t.bytes;
      }
      if (r < 0) continue;
      const perToken = 2 * streamsPerBatch * b.frames[kind].tokens;
      samples[kind].push({
        off: sum.off.forward / perToken,
        on: sum.on.forward / perToken,
        setupOff: sum.off.setup / perToken,
        setupOn: sum.on.setup / perToken,
      });
    }
    if (r >= 0 && (r + 1) % 40 === 0) {
      log(
        `[${runtimeName()}] round ${r + 1}/${rounds}, ${
          ((performance.now() - wallStart) / 1000).toFixed(0)
        } s`,
      );
    }
  }
  const cells = KINDS.map((kind): Cell => {
    const s = samples[kind];
    const ratios = s.map((x) => x.on / x.off);
    const diffs = s.map((x) => x.on - x.off);
    const totalRatios = s.map((x) => (x.on + x.setupOn) / (x.off + x.setupOff));
    return {
      kind,
      tokens: b.frames[kind].tokens,
      offUsPerToken: median(s.map((x) => x.off)),
      onUsPerToken: median(s.map((x) => x.on)),
      ratio: median(ratios),
      ci: bootstrapMedianCi(ratios, resamples),
      addedUsPerToken: median(diffs),
      addedCi: bootstrapMedianCi(diffs, resamples),
      setupOffUsPerToken: median(s.map((x) => x.setupOff)),
      setupOnUsPerToken: median(s.map((x) => x.setupOn)),
      totalRatio: median(totalRatios),
      totalCi: bootstrapMedianCi(totalRatios, resamples),
      bytesPerStream: bytes[kind],
      rounds: s,
    };
  });
  await b.core.preprocessors.close();
  const g = globalThis as { Deno?: { version: { deno: string } }; Bun?: { version: string } };
  return {
    runtime: runtimeName(),
    version: g.Deno?.version.deno ?? g.Bun?.version ?? process.version,
    rounds,
    warmupRounds,
    streamsPerBatch,
    wallS: (performance.now() - wallStart) / 1000,
    checks,
    cells,
  };
}

// ---------------------------------------------------------------------------------------------
// Report, and the driver that runs each runtime in its own process
// ---------------------------------------------------------------------------------------------

const pct = (x: number) => `${x >= 1 ? '+' : ''}${((x - 1) * 100).toFixed(1)}%`;

function report(results: RunResult[]) {
  console.log(
    'CPU per worker token (process.cpuUsage), forward = answer() + SSE body read; total adds ' +
      'startChat. Median of per-round ratios, bootstrap 95% CI.',
  );
  console.log(
    '| runtime | answer | tokens | off us/token | on us/token | on/off (95% CI) | ' +
      'added us/token (95% CI) | setup off/on us/token | total on/off (95% CI) |',
  );
  console.log('|---|---|---:|---:|---:|---|---|---|---|');
  for (const r of results) {
    for (const c of r.cells) {
      console.log(
        `| ${r.runtime} ${r.version} | ${c.kind} | ${c.tokens} | ${c.offUsPerToken.toFixed(2)} | ` +
          `${c.onUsPerToken.toFixed(2)} | ${pct(c.ratio)} (${pct(c.ci[0])} .. ${pct(c.ci[1])}) | ` +
          `${c.addedUsPerToken.toFixed(2)} (${c.addedCi[0].toFixed(2)} .. ${
            c.addedCi[1].toFixed(2)
          }) | ` +
          `${c.setupOffUsPerToken.toFixed(2)} / ${c.setupOnUsPerToken.toFixed(2)} | ` +
          `${pct(c.totalRatio)} (${pct(c.totalCi[0])} .. ${pct(c.totalCi[1])}) |`,
      );
    }
  }
}

function runtimeArgv(runtime: Runtime): string[] {
  const entry = 'bench/parser-ab.ts';
  if (runtime === 'node') return ['node', '--import', 'tsx', entry];
  if (runtime === 'bun') return ['node_modules/.bin/bun', entry];
  return ['node_modules/.bin/deno', 'run', '-A', entry];
}

async function runChild(runtime: Runtime): Promise<RunResult> {
  const [cmd, ...rest] = runtimeArgv(runtime);
  const own = ['--rounds', args.rounds, '--streams', args.streams, '--warmup', args.warmup];
  own.push('--resamples', args.resamples, '--arm', args.arm, '--child');
  const child = spawn(cmd!, [...rest, ...own], { cwd: ROOT, stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  child.stdout!.setEncoding('utf8');
  child.stdout!.on('data', (d: string) => void (out += d));
  const code = await new Promise<number | null>((r) => child.once('exit', r));
  const line = out.split('\n').find((l) => l.startsWith(RESULT_MARK));
  if (code !== 0 || !line) throw new Error(`${runtime} run failed (exit ${code}):\n${out}`);
  return JSON.parse(line.slice(RESULT_MARK.length)) as RunResult;
}

if (args.child) {
  const result = await run();
  console.log(RESULT_MARK + JSON.stringify(result));
  process.exit(0);
} else if (args['in-process']) {
  const result = await run();
  report([result]);
  finishBench('parser-ab', { runs: [result] });
  process.exit(0);
} else {
  const results: RunResult[] = [];
  for (const runtime of args.runtimes.split(',') as Runtime[]) {
    results.push(await runChild(runtime));
  }
  report(results);
  finishBench('parser-ab', { runs: results });
  process.exit(0);
}
