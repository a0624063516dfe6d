/**
 * Trace replay in simulated time: the router's own policy code (indexer, sequence tracker,
 * selector, scheduler) against the mocker's own engine code (scheduler, KV manager, timing
 * model), driven by a discrete-event clock instead of processes, sockets and wall time.
 *
 * What it isolates: the routing decision. The process replay (`bench/replay.ts`) measures the
 * deployment, but on this 2-core machine its TTFT moves with everything else running (the
 * frontend's CPU, the event plane, other processes). Here a run is deterministic, takes seconds,
 * and shows what each policy does with the same requests, so a cost function can be compared on
 * many windows and traces instead of tuned to one. What it leaves out: the frontend's CPU, the
 * request and event planes (events are applied `--event-lag-ms` after the engine emits them),
 * client and network time. Its TTFT is the engine's: queueing plus prefill.
 *
 *   npm run bench:replay-sim -- [--trace FILE] [--start 0,1000 --count 858] [--speedup 10]
 *     [--workers 8] [--mocker-speedup 1] [--blocks N] [--modes LIST] [--event-lag-ms 0]
 *     [--seed 1,2,3] [--json-out FILE]
 */
import process from 'node:process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { createBlockHasher } from '../src/core/router/kv/hash.ts';
import { createKvIndexer, workerKey } from '../src/core/router/kv/indexer.ts';
import { createKvScheduler } from '../src/core/router/kv/queue.ts';
import { createWorkerSelector } from '../src/core/router/kv/selector.ts';
import { createSequenceTracker } from '../src/core/router/kv/sequences.ts';
import { createKvManager } from '../src/mocker/engine/kv-manager.ts';
import { createScheduler, type StepResult } from '../src/mocker/engine/scheduler.ts';
import type { KvCacheEventData } from '../src/core/router/kv/events.ts';
import { finishBench } from './_provenance.ts';
import { ceiling, missAttribution, promptOf, readTraceWindow, type TraceRow } from './_trace.ts';
import { createRandom } from '../src/mocker/engine/random.ts';

const ROOT = fileURLToPath(new URL('..', import.meta.url));

const HELP = `Usage: npm run bench:replay-sim -- [options]
  --trace FILE        Mooncake-format JSONL (default: ../shared/traces/mooncake-synthetic.jsonl)
  --start LIST        first request of each window, comma-separated (default: 0)
  --count N           requests in the window (default: 858)
  --speedup X         divide the trace's timestamps by X (default: 10)
  --workers N         simulated workers (default: 8)
  --mocker-speedup X  the engine's --speedup-ratio (default: 1)
  --blocks N          KV blocks per worker (default: the mocker's, 16384)
  --block-size N      tokens per KV block (default: the mocker's, 64)
  --event-lag-ms MS   KV events reach the router this long after the engine emits them (default: 0)
  --modes LIST        round-robin, random, kv (the frontend's defaults), kv-no-active (kv with
                      --no-router-active-overlap, as Dynamo routes), kv-wN (kv at overlap
                      weight N), kv-no-active-wN (default: round-robin,kv,kv-w0)
  --context-length N  leave out longer requests (default: 40960)
  --seed LIST         seeds of the router's tie-breaks and random mode, comma-separated
                      (default: 7); a run repeats exactly with the same seed, and other seeds
                      show how much a result moves. Every window runs with every seed, and a
                      summary gives each mode's TTFT mean against round-robin's over all runs
  --json-out FILE     write the results with their provenance as JSON
`;

function options() {
  const { values } = parseArgs({
    options: {
      trace: { type: 'string', default: join(ROOT, '../shared/traces/mooncake-synthetic.jsonl') },
      start: { type: 'string', default: '0' },
      count: { type: 'string', default: '858' },
      speedup: { type: 'string', default: '10' },
      workers: { type: 'string', default: '8' },
      'mocker-speedup': { type: 'string', default: '1' },
      blocks: { type: 'string', default: '16384' },
      'block-size': { type: 'string', default: '64' },
      'event-lag-ms': { type: 'string', default: '0' },
      modes: { type: 'string', default: 'round-robin,kv,kv-w0' },
      'context-length': { type: 'string', default: '40960' },
      seed: { type: 'string', default: '7' },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (values.help) {
    process.stdout.write(HELP);
    process.exit(0);
  }
  const num = (name: string, text: string, min: number) => {
    const n = Number(text);
    if (!(n >= min)) fail(`--${name} must be a number >= ${min}, got "${text}"`);
    return n;
  };
  const modes = values.modes.split(',').map((s) => s.trim()).filter(Boolean);
  for (const m of modes) if (!policyOf(m)) fail(`unknown mode "${m}"`);
  return {
    trace: values.trace,
    starts: values.start.split(',').map((t) => num('start', t.trim(), 0)),
    count: num('count', values.count, 1),
    speedup: num('speedup', values.speedup, 0.001),
    workers: num('workers', values.workers, 1),
    mockerSpeedup: num('mocker-speedup', values['mocker-speedup'], 0.001),
    blocks: num('blocks', values.blocks, 1),
    blockSize: num('block-size', values['block-size'], 1),
    eventLagMs: num('event-lag-ms', values['event-lag-ms'], 0),
    modes,
    contextLength: num('context-length', values['context-length'], 1),
    seeds: values.seed.split(',').map((t) => num('seed', t.trim(), 0)),
  };
}
type Options = ReturnType<typeof options>;

function fail(message: string): never {
  process.stderr.write(`bench:replay-sim: ${message}\n`);
  process.exit(1);
}

interface Policy {
  kind: 'round-robin' | 'random' | 'kv';
  weight: number;
  activeOverlap: boolean;
}

function policyOf(mode: string): Policy | undefined {
  if (mode === 'round-robin' || mode === 'random') {
    return { kind: mode, weight: 0, activeOverlap: false };
  }
  const m = /^kv(-no-active)?(?:-w(\d+(?:\.\d+)?))?$/.exec(mode);
  if (!m) return undefined;
  return { kind: 'kv', weight: m[2] === undefined ? 1 : Number(m[2]), activeOverlap: !m[1] };
}

/** A binary min-heap of timed events; ties keep insertion order. */
class Agenda<T> {
  private items: { at: number; seq: number; value: T }[] = [];
  private seq = 0;
  get size() {
    return this.items.length;
  }
  push(at: number, value: T) {
    const items = this.items;
    items.push({ at, seq: this.seq++, value });
    let i = items.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!this.less(i, parent)) break;
      [items[i], items[parent]] = [items[parent]!, items[i]!];
      i = parent;
    }
  }
  pop(): { at: number; value: T } {
    const items = this.items;
    const top = items[0]!;
    const last = items.pop()!;
    if (items.length > 0) {
      items[0] = last;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < items.length && this.less(l, m)) m = l;
        if (r < items.length && this.less(r, m)) m = r;
        if (m === i) break;
        [items[i], items[m]] = [items[m]!, items[i]!];
        i = m;
      }
    }
    return top;
  }
  private less(a: number, b: number) {
    const x = this.items[a]!;
    const y = this.items[b]!;
    return x.at < y.at || (x.at === y.at && x.seq < y.seq);
  }
}

type Happening =
  | { type: 'arrive'; index: number }
  | { type: 'stepDone'; worker: number; result: StepResult }
  | { type: 'kvEvent'; worker: number; eventId: number; data: KvCacheEventData };

async function runMode(
  o: Options,
  seed: number,
  rows: TraceRow[],
  prompts: number[][],
  mode: string,
) {
  const policy = policyOf(mode)!;
  const hasher = await createBlockHasher();
  const bs = o.blockSize;
  const indexer = createKvIndexer();
  let clock = 0;
  const tracker = createSequenceTracker({ blockSize: bs, now: () => clock, routerId: 1n });
  const router = createKvScheduler({
    tracker,
    selector: createWorkerSelector({
      blockSize: bs,
      overlapScoreWeight: policy.weight,
      random: createRandom(seed),
    }),
    activeOverlap: policy.activeOverlap,
    now: () => clock,
  });
  const random = createRandom(seed + 1);
  const agenda = new Agenda<Happening>();
  const ids = Array.from({ length: o.workers }, (_, w) => BigInt(w + 1));
  const keys = ids.map((id) => workerKey(id, 0));
  const eligible = keys.map((worker) => ({ worker }));
  const engines = ids.map((_, w) => {
    let eventId = 0;
    const kv = createKvManager({
      capacity: o.blocks,
      onEvent: (data) =>
        agenda.push(clock + o.eventLagMs, { type: 'kvEvent', worker: w, eventId: eventId++, data }),
    });
    return {
      scheduler: createScheduler({ blockSize: bs, speedupRatio: o.mockerSpeedup }, { kv, hasher }),
      busy: false,
    };
  });
  const outcomes = rows.map(() => ({
    ok: false,
    sentAtMs: NaN,
    ttftMs: NaN,
    e2eMs: NaN,
    cachedTokens: 0,
    promptTokens: 0,
    worker: undefined as string | undefined,
  }));
  const firstSeen = new Set<number>();
  let next = 0;

  const startStep = (w: number) => {
    const engine = engines[w]!;
    if (engine.busy || engine.scheduler.isIdle()) return;
    engine.busy = true;
    const result = engine.scheduler.step();
    agenda.push(clock + result.durationMs, { type: 'stepDone', worker: w, result });
  };
  const route = async (index: number): Promise<number> => {
    if (policy.kind === 'round-robin') return next++ % o.workers;
    if (policy.kind === 'random') return Math.floor(random() * o.workers);
    const local = hasher.localHashes64(prompts[index]!, { blockSize: bs });
    const overlaps = policy.weight > 0
      ? indexer.findMatches(local)
      : { scores: new Map<string, number>(), treeSizes: new Map<string, number>() };
    for (const [i, id] of ids.entries()) {
      if (!overlaps.treeSizes.has(keys[i]!)) {
        overlaps.treeSizes.set(keys[i]!, indexer.treeSize(id, 0));
      }
    }
    const result = await router.schedule({
      requestId: String(index),
      isl: prompts[index]!.length,
      overlaps,
      tokenSeq: hasher.sequenceHashes64(local),
      workers: eligible,
    });
    return keys.indexOf(result.worker);
  };

  rows.forEach((row, index) => agenda.push(row.timestamp / o.speedup, { type: 'arrive', index }));
  while (agenda.size > 0) {
    const { at, value } = agenda.pop();
    clock = at;
    if (value.type === 'arrive') {
      const i = value.index;
      const w = await route(i);
      outcomes[i]!.sentAtMs = clock;
      outcomes[i]!.worker = keys[w];
      engines[w]!.scheduler.add({
        id: i,
        tokens: prompts[i]!,
        maxTokens: rows[i]!.output_length,
        ignoreEos: true,
        nextToken: () => 1,
      });
      startStep(w);
    } else if (value.type === 'kvEvent') {
      indexer.applyEvent({
        worker_id: ids[value.worker]!,
        event: { event_id: value.eventId, data: value.data, dp_rank: 0 },
      });
    } else {
      const w = value.worker;
      for (const { id } of value.result.rejected) {
        if (policy.kind === 'kv') router.free(String(id));
      }
      for (const output of value.result.outputs) {
        const x = outcomes[output.id]!;
        if (!firstSeen.has(output.id)) {
          firstSeen.add(output.id);
          x.ttftMs = clock - x.sentAtMs;
          if (policy.kind === 'kv') router.markPrefillCompleted(String(output.id));
        }
        if (output.finish !== null) {
          x.ok = true;
          x.e2eMs = clock - x.sentAtMs;
          x.cachedTokens = output.usage?.cachedTokens ?? 0;
          x.promptTokens = output.usage?.promptTokens ?? 0;
          if (policy.kind === 'kv') router.free(String(output.id));
        }
      }
      engines[w]!.busy = false;
      startStep(w);
    }
  }
  const ok = outcomes.filter((x) => x.ok);
  const ttft = ok.map((x) => x.ttftMs).sort((a, b) => a - b);
  const q = (p: number) => ttft[Math.min(ttft.length - 1, Math.floor(p * ttft.length))] ?? NaN;
  const prompt = ok.reduce((a, x) => a + x.promptTokens, 0);
  const perWorker = keys.map((k) => ok.filter((x) => x.worker === k).length);
  return {
    mode,
    requests: rows.length,
    failed: rows.length - ok.length,
    ttftMs: {
      mean: ttft.reduce((a, b) => a + b, 0) / ttft.length,
      p50: q(0.5),
      p90: q(0.9),
      p99: q(0.99),
    },
    e2eP50Ms: ok.map((x) => x.e2eMs).sort((a, b) => a - b)[Math.floor(ok.length / 2)] ?? NaN,
    hitRate: prompt > 0 ? ok.reduce((a, x) => a + x.cachedTokens, 0) / prompt : NaN,
    misses: missAttribution(rows, outcomes),
    perWorker: { min: Math.min(...perWorker), max: Math.max(...perWorker) },
  };
}

const o = options();
const f = (n: number, d = 0) => Number.isFinite(n) ? n.toFixed(d) : '-';
type ModeResult = Awaited<ReturnType<typeof runMode>>;
const runs: {
  start: number;
  seed: number;
  requests: number;
  ceiling: number;
  results: ModeResult[];
}[] = [];
for (const start of o.starts) {
  let rows: TraceRow[];
  try {
    rows = readTraceWindow({ ...o, start });
  } catch (error) {
    fail((error as Error).message);
  }
  const prompts = rows.map(promptOf);
  const top = ceiling(rows);
  for (const seed of o.seeds) {
    const results: ModeResult[] = [];
    for (const mode of o.modes) results.push(await runMode(o, seed, rows, prompts, mode));
    runs.push({ start, seed, requests: rows.length, ceiling: top, results });
    const base = results.find((r) => r.mode === 'round-robin');
    console.log(
      `\nwindow ${start}+${rows.length}, seed ${seed}: ${o.workers} workers, ${o.blocks} blocks ` +
        `of ${o.blockSize}, event lag ${o.eventLagMs} ms; ceiling hit rate ${
          (top * 100).toFixed(1)
        }%`,
    );
    console.log(
      '| mode | TTFT mean | p50 | p90 | p99 | vs round-robin (mean) | E2E p50 | hit rate | of ceiling | lost to routing | lost in worker | req/worker | failed |',
    );
    console.log('|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|');
    for (const r of results) {
      const ratio = base ? base.ttftMs.mean / r.ttftMs.mean : NaN;
      console.log(
        `| ${r.mode} | ${f(r.ttftMs.mean)} | ${f(r.ttftMs.p50)} | ${f(r.ttftMs.p90)} | ` +
          `${f(r.ttftMs.p99)} | ${f(ratio, 2)}x | ${f(r.e2eP50Ms)} | ${f(r.hitRate * 100, 1)}% | ` +
          `${f(r.hitRate / top, 2)} | ${f(r.misses.routing, 2)} | ${f(r.misses.worker, 2)} | ` +
          `${r.perWorker.min}-${r.perWorker.max} | ${r.failed} |`,
      );
    }
  }
}

// Over every window and seed: each mode's TTFT mean as a multiple of round-robin's.
const summary = o.modes.map((mode) => {
  const ratios = runs.flatMap((run) => {
    const base = run.results.find((r) => r.mode === 'round-robin');
    const mine = run.results.find((r) => r.mode === mode);
    return base && mine ? [base.ttftMs.mean / mine.ttftMs.mean] : [];
  });
  const ofCeiling = runs.map((run) =>
    run.results.find((r) => r.mode === mode)!.hitRate / run.ceiling
  );
  const avg = (v: number[]) => v.reduce((a, b) => a + b, 0) / v.length;
  return {
    mode,
    runs: runs.length,
    ttftVsRoundRobin: ratios.length
      ? { mean: avg(ratios), min: Math.min(...ratios), max: Math.max(...ratios) }
      : null,
    hitOfCeiling: {
      mean: avg(ofCeiling),
      min: Math.min(...ofCeiling),
      max: Math.max(...ofCeiling),
    },
    failed: runs.reduce((a, run) => a + run.results.find((r) => r.mode === mode)!.failed, 0),
  };
});
console.log(
  `\nOver ${runs.length} run(s) (${o.starts.length} window(s) x ${o.seeds.length} seed(s)):`,
);
console.log(
  '| mode | TTFT mean vs round-robin: mean | min | max | hit rate of ceiling: mean | min | max | failed |',
);
console.log('|---|---:|---:|---:|---:|---:|---:|---:|');
for (const m of summary) {
  const t = m.ttftVsRoundRobin;
  console.log(
    `| ${m.mode} | ${t ? `${f(t.mean, 2)}x` : '-'} | ${t ? `${f(t.min, 2)}x` : '-'} | ${
      t ? `${f(t.max, 2)}x` : '-'
    } | ${f(m.hitOfCeiling.mean, 2)} | ${f(m.hitOfCeiling.min, 2)} | ${
      f(m.hitOfCeiling.max, 2)
    } | ${m.failed} |`,
  );
}
finishBench('replay-sim', { options: o, summary, runs });
