/**
 * KV routing bench (issue 5 "Done when"): simulated workers under a shared-prefix multi-turn chat
 * workload, one run per router mode, each on a fresh stack, the same seeded workload for all:
 *
 * - `kv`: `--router-mode kv` (KV events from the workers);
 * - `kv-approximate`: `--router-mode kv --no-router-kv-events` (the router's own decisions, TTL);
 * - `round-robin`, `random`;
 * - `oracle`: `--router-mode direct`, every request pinned (`nvext.backend_instance_id`) to the
 *   worker whose KV cache holds the longest prefix of its prompt, ties to the worker with the
 *   fewest of the bench's requests in flight. The bench knows each worker's cache exactly: it
 *   subscribes to the workers' KV events on the in-process event bus (stored / removed / cleared,
 *   the same events the mocker's cache emits as it changes) and keeps one set of block hashes per
 *   worker; it renders and tokenizes each prompt with the frontend's own preprocessor and hashes
 *   it with `src/core/router/kv/hash.ts`. So the oracle sees evictions too, which tracking what each
 *   worker was sent would not, and it does not share code with the router's indexer.
 *
 * Prints, per mode: TTFT p50/p99 (time to the first SSE chunk with content), end-to-end p50,
 * requests/s and output tokens/s over the run, and the fleet's prefix-cache hit rate (sum of
 * `usage.prompt_tokens_details.cached_tokens` / sum of `prompt_tokens`, as the mocker reports
 * them) and its ratio to the oracle's. Goals: kv TTFT p50 >= 3x better than round-robin, kv hit
 * rate >= 0.9 of the oracle's.
 *
 *   npm run bench:routing [-- --modes kv,kv-approximate,round-robin,random,oracle
 *     --runtime node --workers 8 --speedup 0.1 --blocks 1500 --seed 1 --json ...]
 *
 * `--help` lists the workload flags. The driver (this file, run by Node) spawns the same file with
 * `--child --mode M` once per mode, sequentially, on `--runtime` (node by default; bun and deno
 * work too); a child starts the frontend and the mocker workers in its one process (mem discovery
 * and events, tcp request plane, as `tests/helpers/stack.ts` does), runs the workload, prints one
 * JSON line and exits; the driver prints one table.
 *
 * The workload, in simulated milliseconds (wall time = simulated / `--speedup`): `--sessions`
 * conversations start as a Poisson process (`--session-rate` per simulated second); each uses one
 * of `--system-prompts` long system prompts and runs `--turns` turns; each turn sends the whole
 * conversation so far (system prompt, every earlier question and the answer the worker gave to it)
 * plus a new question, streams the answer (`max_tokens` fixed per turn, `ignore_eos`), then the
 * user thinks (exponential, mean `--think-ms`) before the next turn. Lengths and texts come from
 * one seeded PRNG, so every mode gets the same sessions, questions, lengths and timings; only the
 * answers' words differ (each worker draws its own tokens).
 */
import { finishBench } from './_provenance.ts';
import { spawn } from 'node:child_process';
import process from 'node:process';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { resolveConfig } from '../src/core/config.ts';
import { createBlockHasher } from '../src/core/router/kv/hash.ts';
import { createJsonLogger, type Logger } from '../src/core/logger.ts';
import { mockerEndpoint, resolveMockerConfig } from '../src/mocker/config.ts';
import type { MockWorker, RunningMocker } from '../src/mocker/worker.ts';
import { type RunningFrontend, startFrontend } from '../src/commands/frontend.ts';
import { createLocalBus } from '../src/runtime/infra.ts';
import { startMockerProcess } from '../src/commands/mocker.ts';
import { detectRuntime, type RuntimeName } from '../src/runtime/serve.ts';
import { kvEventsSubject } from '../src/worker/runtime.ts';
import { createRandom } from '../src/mocker/engine/random.ts';

type Runtime = RuntimeName;
type Mode = 'kv' | 'kv-approximate' | 'round-robin' | 'random' | 'oracle';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const RUNTIMES: readonly Runtime[] = ['node', 'bun', 'deno'];
const MODES: readonly Mode[] = ['kv', 'kv-approximate', 'round-robin', 'random', 'oracle'];
const MODE_ARGS: Record<Mode, string[]> = {
  kv: ['--router-mode', 'kv'],
  'kv-approximate': ['--router-mode', 'kv', '--no-router-kv-events'],
  'round-robin': ['--router-mode', 'round-robin'],
  random: ['--router-mode', 'random'],
  oracle: ['--router-mode', 'direct'],
};
const MODEL_PATH = 'tests/fixtures/model';
const MODEL = 'Qwen/Qwen3-0.6B';
/** A child that takes longer than this is killed. */
const CHILD_TIMEOUT_MS = 240_000;

// ------------------------------------------------------------------------------------------
// Options
// ------------------------------------------------------------------------------------------

interface Range {
  min: number;
  max: number;
}

interface Workload {
  seed: number;
  sessions: number;
  /** Sessions started per simulated second (Poisson). */
  sessionRate: number;
  turns: Range;
  systemPrompts: number;
  /** Words (about one token each) per system prompt. */
  systemWords: number;
  questionWords: Range;
  answerTokens: Range;
  /** Mean think time between turns, simulated ms (exponential). */
  thinkMs: number;
}

interface Fleet {
  workers: number;
  /** The frontend's `--dyn-preprocess-workers` (templating and tokenizing off the event loop). */
  preprocessWorkers: number;
  speedup: number;
  /** Mocker `--decode-speedup-ratio`: decode runs this much faster again than prefill. */
  decodeSpeedup: number;
  blockSize: number;
  /** `--num-gpu-blocks-override` per worker. */
  blocks: number;
}

interface Options {
  modes: Mode[];
  runtime: Runtime;
  fleet: Fleet;
  workload: Workload;
  json: boolean;
  child: boolean;
  mode: Mode;
  /** Extra frontend flags for the kv modes (`--router-args="--router-kv-overlap-score-weight 2"`). */
  routerArgs: string[];
}

function fail(message: string): never {
  process.stderr.write(`bench:routing: ${message}\n`);
  process.exit(1);
}

const HELP = [
  'Usage: npm run bench:routing -- [options]',
  '  --modes LIST          subset of kv,kv-approximate,round-robin,random,oracle (default: all)',
  '  --runtime R           node, bun or deno: what runs each mode (default: node)',
  '  --workers N           simulated workers (default: 8)',
  '  --preprocess-workers N  frontend --dyn-preprocess-workers (default: 1)',
  '  --speedup X           mocker --speedup-ratio (default: 0.1)',
  '  --decode-speedup X    mocker --decode-speedup-ratio: decode X times faster again (default: 4)',
  '  --blocks N            KV blocks per worker, --num-gpu-blocks-override (default: 1500)',
  '  --block-size N        tokens per KV block (default: 16)',
  '  --seed N              workload seed (default: 1)',
  '  --sessions N          conversations (default: 32)',
  '  --session-rate X      conversations started per simulated second, Poisson (default: 30)',
  '  --turns A-B           turns per conversation, uniform (default: 6-10)',
  '  --system-prompts N    distinct system prompts / documents, shared when fewer than sessions (default: 32)',
  '  --system-words N      words (~tokens) per system prompt (default: 4000)',
  '  --question-words A-B  words (~tokens) per new question, uniform (default: 20-60)',
  '  --answer-tokens A-B   max_tokens per answer, uniform, ignore_eos (default: 32-64)',
  '  --think-ms X          mean think time between turns, simulated ms (default: 50)',
  '  --router-args=FLAGS   extra frontend flags for kv and kv-approximate, e.g.',
  '                        --router-args="--router-kv-overlap-score-weight 2" (default: none)',
  '  --json                print the results as JSON instead of a table',
  '',
].join('\n');

function parseOptions(argv: string[]): Options {
  const { values } = parseArgs({
    args: argv,
    options: {
      modes: { type: 'string', default: MODES.join(',') },
      mode: { type: 'string', default: 'kv' },
      runtime: { type: 'string', default: 'node' },
      workers: { type: 'string', default: '8' },
      speedup: { type: 'string', default: '0.1' },
      'decode-speedup': { type: 'string', default: '4' },
      'preprocess-workers': { type: 'string', default: '1' },
      blocks: { type: 'string', default: '1500' },
      'block-size': { type: 'string', default: '16' },
      seed: { type: 'string', default: '1' },
      sessions: { type: 'string', default: '32' },
      'session-rate': { type: 'string', default: '30' },
      turns: { type: 'string', default: '6-10' },
      'system-prompts': { type: 'string', default: '32' },
      'system-words': { type: 'string', default: '4000' },
      'question-words': { type: 'string', default: '20-60' },
      'answer-tokens': { type: 'string', default: '32-64' },
      'think-ms': { type: 'string', default: '50' },
      'router-args': { type: 'string', default: '' },
      json: { type: 'boolean', default: false },
      child: { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (values.help) {
    process.stdout.write(HELP);
    process.exit(0);
  }
  const num = (name: string, text: string, integer: boolean, min = Number.MIN_VALUE) => {
    const n = Number(text);
    if (!(n >= min) || (integer && !Number.isInteger(n))) {
      fail(`--${name} must be ${integer ? 'an integer' : 'a number'} >= ${min}, got "${text}"`);
    }
    return n;
  };
  const range = (name: string, text: string): Range => {
    const [a = '', b = a] = text.split('-');
    const r = { min: num(name, a, true, 0), max: num(name, b, true, 0) };
    if (r.max < r.min) fail(`--${name} "${text}": the maximum is below the minimum`);
    return r;
  };
  const modes = values.modes.split(',').map((s) => s.trim()).filter(Boolean);
  for (const m of [...modes, values.mode]) {
    if (!MODES.includes(m as Mode)) fail(`Unknown mode "${m}": use ${MODES.join(', ')}`);
  }
  if (!RUNTIMES.includes(values.runtime as Runtime)) {
    fail(`Unknown runtime "${values.runtime}": use ${RUNTIMES.join(', ')}`);
  }
  return {
    modes: modes as Mode[],
    mode: values.mode as Mode,
    runtime: values.runtime as Runtime,
    json: values.json,
    child: values.child,
    routerArgs: values['router-args'].split(/\s+/).filter(Boolean),
    fleet: {
      workers: num('workers', values.workers, true, 1),
      speedup: num('speedup', values.speedup, false),
      decodeSpeedup: num('decode-speedup', values['decode-speedup'], false),
      preprocessWorkers: num('preprocess-workers', values['preprocess-workers'], true, 0),
      blocks: num('blocks', values.blocks, true, 1),
      blockSize: num('block-size', values['block-size'], true, 1),
    },
    workload: {
      seed: num('seed', values.seed, true, 0),
      sessions: num('sessions', values.sessions, true, 1),
      sessionRate: num('session-rate', values['session-rate'], false),
      turns: range('turns', values.turns),
      systemPrompts: num('system-prompts', values['system-prompts'], true, 1),
      systemWords: num('system-words', values['system-words'], true, 1),
      questionWords: range('question-words', values['question-words']),
      answerTokens: range('answer-tokens', values['answer-tokens']),
      thinkMs: num('think-ms', values['think-ms'], false, 0),
    },
  };
}

/** The flags that pass the fleet and workload to a child unchanged. */
function childArgs(options: Options, mode: Mode): string[] {
  const { fleet: f, workload: w } = options;
  const r = (x: Range) => `${x.min}-${x.max}`;
  return [
    '--child',
    '--mode',
    mode,
    ...['--workers', f.workers, '--speedup', f.speedup, '--blocks', f.blocks],
    ...['--decode-speedup', f.decodeSpeedup],
    ...['--preprocess-workers', f.preprocessWorkers],
    ...['--block-size', f.blockSize, '--seed', w.seed, '--sessions', w.sessions],
    ...['--session-rate', w.sessionRate, '--turns', r(w.turns)],
    ...['--system-prompts', w.systemPrompts, '--system-words', w.systemWords],
    ...['--question-words', r(w.questionWords), '--answer-tokens', r(w.answerTokens)],
    ...['--think-ms', w.thinkMs],
    `--router-args=${options.routerArgs.join(' ')}`,
  ].map(String);
}

// ------------------------------------------------------------------------------------------
// The seeded workload
// ------------------------------------------------------------------------------------------

/** Common English words that Qwen3's tokenizer keeps as one token each (with the leading space). */
const WORDS = (
  'the of and to in is that for it as was with be by on not he this are or his from at which ' +
  'but have an they you were their one all we can her has there been if more when will would ' +
  'who so no she other its may these about into than them only some could time two then first ' +
  'also new very what out like over such our made after between many through years most where ' +
  'any much before those way well should each because people both under world same state while ' +
  'last during long since city even another part three used number system water country house ' +
  'school work life place case point group government company small large order fact high light ' +
  'open power line answer table model question cache block worker router token prompt stream ' +
  'value field event server client request reply memory engine queue price market river music ' +
  'story paper money night party field plant south north east west green black white strong'
).split(/\s+/);

interface Turn {
  question: string;
  maxTokens: number;
  /** Simulated ms the user waits after this turn's answer. */
  thinkMs: number;
}

interface Session {
  id: number;
  system: number;
  /** Simulated ms after the start of the run. */
  startMs: number;
  turns: Turn[];
}

interface GeneratedWorkload {
  systems: string[];
  sessions: Session[];
}

function generateWorkload(w: Workload): GeneratedWorkload {
  const random = createRandom(w.seed);
  const int = (r: Range) => r.min + Math.floor(random() * (r.max - r.min + 1));
  const words = (n: number) => {
    const out: string[] = [];
    for (let i = 0; i < n; i++) out.push(WORDS[Math.floor(random() * WORDS.length)] as string);
    return out.join(' ');
  };
  const exponential = (mean: number) => -Math.log(1 - random()) * mean;
  const systems = Array.from(
    { length: w.systemPrompts },
    (_, i) => `You are assistant number ${i}. ${words(w.systemWords)}`,
  );
  const sessions: Session[] = [];
  let t = 0;
  for (let id = 0; id < w.sessions; id++) {
    t += exponential(1000 / w.sessionRate);
    const system = Math.floor(random() * w.systemPrompts);
    const turns = Array.from({ length: int(w.turns) }, (_, k) => ({
      question: `User ${id}, question ${k}: ${words(int(w.questionWords))}?`,
      maxTokens: int(w.answerTokens),
      thinkMs: exponential(w.thinkMs),
    }));
    sessions.push({ id, system, startMs: t, turns });
  }
  return { systems, sessions };
}

// ------------------------------------------------------------------------------------------
// The child: one mode on a fresh stack
// ------------------------------------------------------------------------------------------

interface Sample {
  session: number;
  turn: number;
  ok: boolean;
  error?: string;
  ttftMs: number;
  e2eMs: number;
  promptTokens: number;
  cachedTokens: number;
  outputTokens: number;
  endMs: number;
  startMs: number;
}

interface ChildResult {
  mode: Mode;
  runtime: Runtime;
  version: string;
  requests: number;
  errors: number;
  firstError?: string;
  durationS: number;
  ttftP50: number;
  ttftP99: number;
  ttftP50Later: number;
  e2eP50: number;
  requestsPerS: number;
  outputTokensPerS: number;
  promptTokens: number;
  cachedTokens: number;
  hitRate: number;
  /** Requests each worker served in the measured run. */
  perWorker: number[];
  lagP99Ms: number;
  lagMaxMs: number;
  cpuS: number;
}

function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[i] as number;
}

const sortedOf = (xs: number[]) => [...xs].sort((a, b) => a - b);

/** Warnings and errors to stderr; the rest is dropped. */
function benchLogger(): Logger {
  return createJsonLogger({ write: (line) => process.stderr.write(line), level: 'warn' });
}

/** A type alias, not an interface, so it fits the template's `Record<string, unknown>` shape. */
type ChatMessage = {
  role: 'system' | 'user' | 'assistant';
  content: string;
};

interface StreamResult {
  ok: boolean;
  error?: string;
  ttftMs: number;
  text: string;
  promptTokens: number;
  cachedTokens: number;
  outputTokens: number;
}

/** POSTs a streaming chat request and reads its SSE stream to the end. */
async function streamChat(url: string, body: unknown): Promise<StreamResult> {
  const start = performance.now();
  const result: StreamResult = {
    ok: false,
    ttftMs: Number.NaN,
    text: '',
    promptTokens: 0,
    cachedTokens: 0,
    outputTokens: 0,
  };
  const res = await fetch(`${url}/v1/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  if (!res.ok || !res.body) {
    result.error = `HTTP ${res.status}: ${(await res.text()).slice(0, 300)}`;
    return result;
  }
  const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = '';
  let done = false;
  const handle = (data: string) => {
    if (data === '[DONE]') {
      done = true;
      return;
    }
    const chunk = JSON.parse(data) as {
      choices?: { delta?: { content?: string | null; reasoning_content?: string | null } }[];
      usage?: {
        prompt_tokens: number;
        completion_tokens: number;
        prompt_tokens_details?: { cached_tokens?: number | null } | null;
      } | null;
      error?: { message?: string };
    };
    if (chunk.error) result.error = chunk.error.message ?? JSON.stringify(chunk.error);
    const delta = chunk.choices?.[0]?.delta;
    const piece = (delta?.content ?? '') + (delta?.reasoning_content ?? '');
    if (piece.length > 0) {
      if (Number.isNaN(result.ttftMs)) result.ttftMs = performance.now() - start;
      result.text += delta?.content ?? '';
    }
    if (chunk.usage) {
      result.promptTokens = chunk.usage.prompt_tokens;
      result.outputTokens = chunk.usage.completion_tokens;
      result.cachedTokens = chunk.usage.prompt_tokens_details?.cached_tokens ?? 0;
    }
  };
  for (;;) {
    const { value, done: end } = await reader.read();
    if (end) break;
    buffer += value;
    let cut: number;
    while ((cut = buffer.indexOf('\n\n')) >= 0) {
      const event = buffer.slice(0, cut);
      buffer = buffer.slice(cut + 2);
      for (const line of event.split('\n')) {
        if (line.startsWith('data:')) handle(line.slice(5).trim());
      }
    }
  }
  result.ok = done && result.error === undefined && !Number.isNaN(result.ttftMs);
  if (!result.ok && result.error === undefined) result.error = 'stream ended without [DONE]';
  return result;
}

/**
 * The oracle's view of every worker's KV cache, from the workers' KV events: one set of sequence
 * hashes per worker, and the pick for a prompt.
 */
async function createOracle(
  frontend: RunningFrontend,
  bus: ReturnType<typeof createLocalBus>,
  mocker: RunningMocker,
  subject: string,
  blockSize: number,
) {
  const caches = new Map<bigint, Set<bigint>>();
  for (const w of mocker.workers) caches.set(w.runtime.workerId, new Set());
  const plane = bus.events.plane();
  const big = (x: unknown) => BigInt(x as number | bigint);
  const stop = plane.subscribe(subject, (envelope) => {
    const { worker_id, event } = envelope.payload as {
      worker_id: unknown;
      event: { data: unknown };
    };
    const cache = caches.get(big(worker_id));
    if (!cache) return;
    const data = event.data as
      | 'cleared'
      | { stored: { blocks: { block_hash: unknown }[] } }
      | { removed: { block_hashes: unknown[] } };
    if (data === 'cleared') cache.clear();
    else if ('stored' in data) { for (const b of data.stored.blocks) cache.add(big(b.block_hash)); }
    else if ('removed' in data) { for (const h of data.removed.block_hashes) cache.delete(big(h)); }
  });
  const hasher = await createBlockHasher();
  const model = frontend.core.models.get(MODEL);
  if (!model) throw new Error(`model "${MODEL}" is not registered`);
  const pre = await frontend.core.preprocessors.get(model);
  return {
    /** The worker holding the longest prefix; ties to the fewest in flight, then the first. */
    async pick(messages: ChatMessage[], inFlight: Map<MockWorker, number>): Promise<MockWorker> {
      const { tokenIds } = await pre.renderChat({ messages });
      const hashes = hasher.blockHashes(tokenIds, { blockSize }).sequence;
      let best: MockWorker | undefined;
      let bestDepth = -1;
      for (const w of mocker.workers) {
        const cache = caches.get(w.runtime.workerId) as Set<bigint>;
        let depth = 0;
        while (depth < hashes.length && cache.has(hashes[depth] as bigint)) depth++;
        if (
          depth > bestDepth ||
          (depth === bestDepth && (inFlight.get(w) ?? 0) < (inFlight.get(best!) ?? 0))
        ) {
          best = w;
          bestDepth = depth;
        }
      }
      return best as MockWorker;
    },
    close: () => {
      stop();
      return plane.close();
    },
  };
}

async function child(options: Options): Promise<void> {
  const { fleet, workload, mode } = options;
  const runtime = detectRuntime();
  const logger = benchLogger();
  const resolved = resolveConfig({
    argv: [
      '--http-host',
      '127.0.0.1',
      '--discovery-backend',
      'mem',
      '--request-plane',
      'tcp',
      '--dyn-preprocess-workers',
      String(fleet.preprocessWorkers),
      ...MODE_ARGS[mode],
      ...(mode === 'kv' || mode === 'kv-approximate' ? options.routerArgs : []),
    ],
    env: {},
  });
  if (!resolved.ok) fail(resolved.errors.join('\n'));
  const mockerConfig = resolveMockerConfig({
    argv: [
      '--model-path',
      MODEL_PATH,
      '--model-name',
      MODEL,
      '--num-workers',
      String(fleet.workers),
      '--speedup-ratio',
      String(fleet.speedup),
      '--decode-speedup-ratio',
      String(fleet.decodeSpeedup),
      '--block-size',
      String(fleet.blockSize),
      '--num-gpu-blocks-override',
      String(fleet.blocks),
      '--discovery-backend',
      'mem',
      '--request-plane',
      'tcp',
    ],
    env: {},
  });
  if (!mockerConfig.ok) fail(mockerConfig.errors.join('\n'));

  const bus = createLocalBus();
  const frontend = await startFrontend({ ...resolved.config, httpPort: 0 }, {
    env: {},
    logger,
    local: bus,
  });
  const url = `http://127.0.0.1:${frontend.server.port}`;
  const mocker = await startMockerProcess(mockerConfig.config, { env: {}, logger, local: bus });
  const waitUntil = async (what: string, ok: () => boolean) => {
    const deadline = Date.now() + 10_000;
    while (!ok()) {
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
      await new Promise((r) => setTimeout(r, 10));
    }
  };
  await waitUntil('the frontend', () => frontend.core.lifecycle.phase === 'ready');
  await waitUntil(
    'the workers in discovery',
    () => frontend.core.models.instances(MODEL).length >= fleet.workers,
  );
  const oracle = mode === 'oracle'
    ? await createOracle(
      frontend,
      bus,
      mocker,
      kvEventsSubject(mockerEndpoint(mockerConfig.config)),
      fleet.blockSize,
    )
    : undefined;

  // Warm-up: short unrelated prompts, two per worker (pinned in turn in the oracle's direct mode).
  for (let i = 0; i < 2 * fleet.workers; i++) {
    const w = mocker.workers[i % fleet.workers] as MockWorker;
    const r = await streamChat(url, {
      model: MODEL,
      messages: [{ role: 'user', content: `warm up ${i} ${WORDS.slice(0, 40).join(' ')}` }],
      max_tokens: 8,
      stream: true,
      stream_options: { include_usage: true },
      ...(oracle ? { nvext: { backend_instance_id: `0x${w.runtime.instanceId}` } } : {}),
    });
    if (!r.ok) throw new Error(`warm-up request failed: ${r.error}`);
  }
  const servedBefore = mocker.workers.map((w) => w.servedRequests());

  // Event-loop lag probe: how late a 20 ms interval fires.
  const lags: number[] = [];
  let expected = performance.now() + 20;
  const probe = setInterval(() => {
    const now = performance.now();
    lags.push(Math.max(0, now - expected));
    expected = now + 20;
  }, 20);

  const { systems, sessions } = generateWorkload(workload);
  const samples: Sample[] = [];
  const inFlight = new Map<MockWorker, number>();
  const wall = (simMs: number) => simMs / fleet.speedup;
  const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
  const cpuStart = process.cpuUsage?.();
  const t0 = performance.now();

  const runSession = async (s: Session) => {
    await sleep(Math.max(0, t0 + wall(s.startMs) - performance.now()));
    const messages: ChatMessage[] = [{ role: 'system', content: systems[s.system] as string }];
    for (let k = 0; k < s.turns.length; k++) {
      const turn = s.turns[k] as Turn;
      messages.push({ role: 'user', content: turn.question });
      let pinned: MockWorker | undefined;
      if (oracle) {
        pinned = await oracle.pick(messages, inFlight);
        inFlight.set(pinned, (inFlight.get(pinned) ?? 0) + 1);
      }
      const startMs = performance.now() - t0;
      const r = await streamChat(url, {
        model: MODEL,
        messages,
        max_tokens: turn.maxTokens,
        ignore_eos: true,
        stream: true,
        stream_options: { include_usage: true },
        ...(pinned ? { nvext: { backend_instance_id: `0x${pinned.runtime.instanceId}` } } : {}),
      }).catch((error: Error): StreamResult => ({
        ok: false,
        error: error.message,
        ttftMs: Number.NaN,
        text: '',
        promptTokens: 0,
        cachedTokens: 0,
        outputTokens: 0,
      }));
      const endMs = performance.now() - t0;
      if (pinned) inFlight.set(pinned, (inFlight.get(pinned) ?? 1) - 1);
      samples.push({
        session: s.id,
        turn: k,
        ok: r.ok,
        error: r.error,
        ttftMs: r.ttftMs,
        e2eMs: endMs - startMs,
        promptTokens: r.promptTokens,
        cachedTokens: r.cachedTokens,
        outputTokens: r.outputTokens,
        startMs,
        endMs,
      });
      if (!r.ok) return; // A failed turn ends the conversation: its answer is unknown.
      messages.push({ role: 'assistant', content: r.text });
      if (k < s.turns.length - 1) await sleep(wall(turn.thinkMs));
    }
  };
  await Promise.all(sessions.map(runSession));
  const elapsedS = (performance.now() - t0) / 1000;
  const cpu = process.cpuUsage?.(cpuStart);
  clearInterval(probe);

  const ok = samples.filter((s) => s.ok);
  const ttft = sortedOf(ok.map((s) => s.ttftMs));
  const later = sortedOf(ok.filter((s) => s.turn > 0).map((s) => s.ttftMs));
  const e2e = sortedOf(ok.map((s) => s.e2eMs));
  const promptTokens = ok.reduce((a, s) => a + s.promptTokens, 0);
  const cachedTokens = ok.reduce((a, s) => a + s.cachedTokens, 0);
  const outputTokens = ok.reduce((a, s) => a + s.outputTokens, 0);
  const firstStart = Math.min(...samples.map((s) => s.startMs));
  const lastEnd = Math.max(...samples.map((s) => s.endMs));
  const windowS = (lastEnd - firstStart) / 1000;
  const lagSorted = sortedOf(lags);
  const result: ChildResult = {
    mode,
    runtime,
    version: runtimeVersion(runtime),
    requests: samples.length,
    errors: samples.length - ok.length,
    firstError: samples.find((s) => !s.ok)?.error,
    durationS: elapsedS,
    ttftP50: percentile(ttft, 50),
    ttftP99: percentile(ttft, 99),
    ttftP50Later: percentile(later, 50),
    e2eP50: percentile(e2e, 50),
    requestsPerS: ok.length / windowS,
    outputTokensPerS: outputTokens / windowS,
    promptTokens,
    cachedTokens,
    hitRate: promptTokens > 0 ? cachedTokens / promptTokens : Number.NaN,
    perWorker: mocker.workers.map((w, i) => w.servedRequests() - (servedBefore[i] as number)),
    lagP99Ms: percentile(lagSorted, 99),
    lagMaxMs: lagSorted[lagSorted.length - 1] ?? 0,
    cpuS: cpu ? (cpu.user + cpu.system) / 1e6 : Number.NaN,
  };

  await oracle?.close();
  await mocker.close();
  await frontend.shutdown('bench over');
  console.log(JSON.stringify(result));
  process.exit(0);
}

function runtimeVersion(runtime: Runtime): string {
  const g = globalThis as { Bun?: { version: string }; Deno?: { version: { deno: string } } };
  if (runtime === 'bun') return g.Bun?.version ?? '?';
  if (runtime === 'deno') return g.Deno?.version.deno ?? '?';
  return process.version;
}

// ------------------------------------------------------------------------------------------
// The driver
// ------------------------------------------------------------------------------------------

function childCommand(runtime: Runtime): string[] {
  const entry = 'bench/routing.ts';
  switch (runtime) {
    case 'node':
      return ['node', '--import', 'tsx', entry];
    case 'bun':
      return ['node_modules/.bin/bun', entry];
    case 'deno':
      return ['node_modules/.bin/deno', 'run', '-A', entry];
  }
}

function runChild(options: Options, mode: Mode): Promise<ChildResult> {
  const argv = [...childCommand(options.runtime), ...childArgs(options, mode)];
  return new Promise((resolve, reject) => {
    const proc = spawn(argv[0]!, argv.slice(1), {
      cwd: ROOT,
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let stdout = '';
    const timer = setTimeout(() => proc.kill('SIGKILL'), CHILD_TIMEOUT_MS);
    proc.stdout.setEncoding('utf8').on('data', (chunk: string) => stdout += chunk);
    proc.once('error', reject);
    proc.once('close', (code, signal) => {
      clearTimeout(timer);
      const last = stdout.trim().split('\n').pop() ?? '';
      try {
        if (code !== 0) throw new Error(signal ? `signal ${signal}` : `exit code ${code}`);
        resolve(JSON.parse(last) as ChildResult);
      } catch (error) {
        reject(
          new Error(
            `${mode} child failed (${(error as Error).message}); run it by hand:\n  ${
              argv.join(' ')
            }\n${stdout}`,
          ),
        );
      }
    });
  });
}

const f1 = (x: number) => Number.isFinite(x) ? x.toFixed(1) : '-';
const f2 = (x: number) => Number.isFinite(x) ? x.toFixed(2) : '-';
const f0 = (x: number) => Number.isFinite(x) ? x.toFixed(0) : '-';

function table(results: ChildResult[]): string {
  const oracle = results.find((r) => r.mode === 'oracle');
  const rows = [
    '| mode | TTFT p50 ms | TTFT p99 ms | E2E p50 ms | req/s | output tok/s | hit rate | ' +
    'vs oracle | requests per worker (min-max) | errors |',
    '|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|',
  ];
  for (const r of results) {
    rows.push(
      `| ${r.mode} | ${f1(r.ttftP50)} | ${f1(r.ttftP99)} | ${f0(r.e2eP50)} | ${
        f2(r.requestsPerS)
      } | ${f0(r.outputTokensPerS)} | ${f2(r.hitRate)} | ${
        oracle ? f2(r.hitRate / oracle.hitRate) : '-'
      } | ${Math.min(...r.perWorker)}-${Math.max(...r.perWorker)} | ${r.errors} |`,
    );
  }
  return rows.join('\n');
}

function goals(results: ChildResult[]): string {
  const by = (m: Mode) => results.find((r) => r.mode === m);
  const kv = by('kv');
  const rr = by('round-robin');
  const oracle = by('oracle');
  const lines: string[] = [];
  if (kv && rr) {
    const ratio = rr.ttftP50 / kv.ttftP50;
    lines.push(
      `kv TTFT p50 vs round-robin: ${f2(ratio)}x better (goal >= 3x): ${
        ratio >= 3 ? 'met' : 'MISSED'
      }`,
    );
  }
  if (kv && oracle) {
    const ratio = kv.hitRate / oracle.hitRate;
    lines.push(
      `kv hit rate vs oracle: ${f2(ratio)} (goal >= 0.9): ${ratio >= 0.9 ? 'met' : 'MISSED'}`,
    );
  }
  return lines.join('\n');
}

async function driver(options: Options): Promise<void> {
  const results: ChildResult[] = [];
  for (const mode of options.modes) {
    process.stderr.write(`bench:routing: ${mode} on ${options.runtime} ...\n`);
    const r = await runChild(options, mode);
    process.stderr.write(
      `bench:routing: ${mode}: ${r.requests} requests in ${f1(r.durationS)} s, ` +
        `TTFT p50 ${f1(r.ttftP50)} ms (later turns ${f1(r.ttftP50Later)} ms), hit rate ` +
        `${f2(r.hitRate)}, prompt ${
          f0(r.promptTokens / (r.requests - r.errors))
        } tok avg, per worker ${r.perWorker.join('/')}, event-loop lag p99 ` +
        `${f1(r.lagP99Ms)} ms (max ${f0(r.lagMaxMs)}), CPU ${f1(r.cpuS)} s\n`,
    );
    results.push(r);
  }
  if (options.json) {
    console.log(JSON.stringify({ fleet: options.fleet, workload: options.workload, results }));
    finishBench('routing', { fleet: options.fleet, workload: options.workload, results }, {
      stdoutIsJson: true,
    });
    return;
  }
  const { fleet: f, workload: w } = options;
  console.log(
    `${results[0]?.runtime} ${
      results[0]?.version
    }; ${f.workers} workers, speedup ${f.speedup} (decode x${f.decodeSpeedup}), ` +
      `${f.blocks} blocks of ${f.blockSize} tokens each; ${w.sessions} sessions at ` +
      `${w.sessionRate}/s (simulated), ${w.turns.min}-${w.turns.max} turns, ` +
      `${w.systemPrompts} system prompts of ${w.systemWords} words, questions ` +
      `${w.questionWords.min}-${w.questionWords.max} words, answers ` +
      `${w.answerTokens.min}-${w.answerTokens.max} tokens, think ${w.thinkMs} ms, seed ${w.seed}` +
      `${options.routerArgs.length ? `; kv modes with ${options.routerArgs.join(' ')}` : ''}\n`,
  );
  console.log(table(results));
  console.log(`\n${goals(results)}`);
  finishBench('routing', {
    fleet: options.fleet,
    workload: options.workload,
    routerArgs: options.routerArgs,
    results,
  });
}

const options = parseOptions(process.argv.slice(2));
if (options.child) await child(options);
else await driver(options);
