/**
 * KV indexer bench (issue 5 "Done when"): per runtime, on one thread,
 * - block events applied per second: Stored chains of 16 blocks (continuations with a parent
 *   hash) and their Removed events, both as `RouterEvent` objects with BigInt hashes
 *   (`applyEvent`) and pre-decoded as u32 halves (`applyStoredHalves`, what the event threads
 *   hand the main thread);
 * - hashing a 16k-token prompt (256 blocks of 64): local hashes into a BigUint64Array, and
 *   local + sequence hashes;
 * - `findMatches` p50/p99 for 16k-token prompts against 64 workers holding 1M blocks;
 * - RSS with those 1M blocks indexed.
 * Goals: >= 3M block events/s, <= 20 µs p99, <= 300 MB.
 *
 *   npm run bench:indexer [-- --runtimes node,bun,deno --queries 20000 --json]
 *
 * The tree: 64 workers, each holding 64 conversations of 256 blocks (16,384 blocks each, 1,048,576
 * in all). Conversations start with one of 8 system prompts (32 blocks) and are each held by 4
 * workers, so the tree has 8*32 + 1024*224 = ~230k nodes and each node several workers. A query is
 * a random conversation's 256 local hashes, cut off at a random depth half the time (then a fresh
 * tail), so each query walks up to 256 levels with several workers still active.
 *
 * The driver (this file, run by Node) spawns the same file with `--child` on each runtime in turn;
 * a child prints one JSON line and the driver prints one table.
 */
import { finishBench } from './_provenance.ts';
import { spawn } from 'node:child_process';
import process from 'node:process';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import type { RouterEvent } from '../src/core/router/kv/events.ts';
import { createBlockHasher } from '../src/core/router/kv/hash.ts';
import { createKvIndexer, type KvIndexer } from '../src/core/router/kv/indexer.ts';
import { detectRuntime, type RuntimeName } from '../src/runtime/serve.ts';

type Runtime = RuntimeName;
const ROOT = fileURLToPath(new URL('..', import.meta.url));
const RUNTIMES: readonly Runtime[] = ['node', 'bun', 'deno'];

const WORKERS = 64;
const CONVERSATIONS_PER_WORKER = 64;
const REPLICAS = 4;
const BLOCKS = 256;
const SYSTEM_PROMPTS = 8;
const SYSTEM_BLOCKS = 32;
const CHUNK = 16;

interface ChildResult {
  runtime: Runtime;
  version: string;
  storedPerSec: number;
  removedPerSec: number;
  storedHalvesPerSec: number;
  removedHalvesPerSec: number;
  hashLocalUs: number;
  hashLocalSeqUs: number;
  hashBigintUs: number;
  findP50Us: number;
  findP99Us: number;
  findMeanUs: number;
  blocks: number;
  nodes: number;
  rssMb: number;
  rssBaseMb: number;
}

const { values } = parseArgs({
  options: {
    child: { type: 'boolean', default: false },
    runtimes: { type: 'string', default: RUNTIMES.join(',') },
    queries: { type: 'string', default: '20000' },
    json: { type: 'boolean', default: false },
  },
});

/** xorshift64-ish over two u32 halves: fills `out` with random u64 halves. */
function randomHalves(state: { s: number }, out: Uint32Array) {
  for (let i = 0; i < out.length; i++) {
    let x = state.s;
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    state.s = x >>> 0;
    out[i] = state.s;
  }
}

const rss = () => process.memoryUsage().rss / (1024 * 1024);

function percentile(sorted: Float64Array, p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))]!;
}

async function child(): Promise<void> {
  const runtime = detectRuntime();
  const g = globalThis as { Bun?: { version: string }; Deno?: { version: { deno: string } } };
  const version = runtime === 'bun'
    ? g.Bun?.version ?? '?'
    : runtime === 'deno'
    ? g.Deno?.version.deno ?? '?'
    : process.version.replace(/^v/, '');
  const rssBaseMb = rss();
  const rng = { s: 0x9e3779b9 };

  // Conversations: local and block (seq) hashes as u32 halves, system prompt prefix shared.
  const conversations = (WORKERS * CONVERSATIONS_PER_WORKER) / REPLICAS;
  const system = Array.from({ length: SYSTEM_PROMPTS }, () => {
    const a = new Uint32Array(SYSTEM_BLOCKS * 4);
    randomHalves(rng, a);
    return a;
  });
  /** Per conversation: `[tokLo, tokHi, blkLo, blkHi]` per block. */
  const convs = Array.from({ length: conversations }, (_, c) => {
    const a = new Uint32Array(BLOCKS * 4);
    a.set(system[c % SYSTEM_PROMPTS]!);
    randomHalves(rng, a.subarray(SYSTEM_BLOCKS * 4));
    return a;
  });

  // 1. Build the 1M-block tree from pre-decoded halves (the event threads' output).
  const indexer = createKvIndexer({ initialNodes: 1 << 18 });
  const build = (target: KvIndexer) => {
    let blocks = 0;
    for (let w = 0; w < WORKERS; w++) {
      const worker = BigInt(w + 1);
      for (let k = 0; k < CONVERSATIONS_PER_WORKER; k++) {
        const conv = convs[(w * CONVERSATIONS_PER_WORKER + k) % conversations]!;
        for (let b = 0; b < BLOCKS; b += CHUNK) {
          const parent = b === 0
            ? null
            : { lo: conv[(b - 1) * 4 + 2]!, hi: conv[(b - 1) * 4 + 3]! };
          target.applyStoredHalves(worker, 0, parent, { data: conv, offset: b * 4, count: CHUNK });
          blocks += CHUNK;
        }
      }
    }
    return blocks;
  };
  let started = performance.now();
  const blocks = build(indexer);
  const storedHalvesPerSec = blocks / ((performance.now() - started) / 1000);
  const rssMb = rss();

  // 2. find_matches for 16k-token prompts (256 blocks).
  const queries = Number(values.queries);
  const query = new BigUint64Array(BLOCKS);
  const queryHalves = new Uint32Array(query.buffer);
  const times = new Float64Array(queries);
  const tail = new Uint32Array(BLOCKS * 2);
  for (let i = -2000; i < queries; i++) {
    const conv = convs[(rng.s = (Math.imul(rng.s, 1664525) + 1013904223) >>> 0) % conversations]!;
    for (let b = 0; b < BLOCKS; b++) {
      queryHalves[b * 2] = conv[b * 4]!;
      queryHalves[b * 2 + 1] = conv[b * 4 + 1]!;
    }
    if (rng.s & 1) {
      const cut = (rng.s >>> 1) % BLOCKS;
      randomHalves(rng, tail);
      queryHalves.set(tail.subarray(cut * 2), cut * 2);
    }
    const t0 = performance.now();
    indexer.findMatches(query);
    const t1 = performance.now();
    if (i >= 0) times[i] = (t1 - t0) * 1000;
  }
  const sorted = times.slice().sort();
  const findMeanUs = times.reduce((a, b) => a + b, 0) / queries;

  // 3. Removal from halves: every worker removes its conversations.
  const nodes = indexer.stats().nodes;
  started = performance.now();
  let removed = 0;
  const pairs = new Uint32Array(BLOCKS * 2);
  for (let w = 0; w < WORKERS; w++) {
    const worker = BigInt(w + 1);
    for (let k = 0; k < CONVERSATIONS_PER_WORKER; k++) {
      const conv = convs[(w * CONVERSATIONS_PER_WORKER + k) % conversations]!;
      for (let b = 0; b < BLOCKS; b++) {
        pairs[b * 2] = conv[b * 4 + 2]!;
        pairs[b * 2 + 1] = conv[b * 4 + 3]!;
      }
      for (let b = BLOCKS - CHUNK; b >= 0; b -= CHUNK) {
        indexer.applyRemovedHalves(worker, 0, { data: pairs, offset: b * 2, count: CHUNK });
        removed += CHUNK;
      }
    }
  }
  const removedHalvesPerSec = removed / ((performance.now() - started) / 1000);

  // 4. RouterEvent objects with BigInt hashes (a quarter of the workers: 262k blocks).
  const toBig = (lo: number, hi: number) => (BigInt(hi) << 32n) | BigInt(lo);
  const storedEvents: RouterEvent[] = [];
  const removedEvents: RouterEvent[] = [];
  for (let w = 0; w < WORKERS / 4; w++) {
    for (let k = 0; k < CONVERSATIONS_PER_WORKER; k++) {
      const conv = convs[(w * CONVERSATIONS_PER_WORKER + k) % conversations]!;
      const hashes: bigint[] = [];
      for (let b = 0; b < BLOCKS; b += CHUNK) {
        const chunk = [];
        for (let j = b; j < b + CHUNK; j++) {
          const blockHash = toBig(conv[j * 4 + 2]!, conv[j * 4 + 3]!);
          hashes.push(blockHash);
          chunk.push({ tokens_hash: toBig(conv[j * 4]!, conv[j * 4 + 1]!), block_hash: blockHash });
        }
        storedEvents.push({
          worker_id: BigInt(w + 1),
          event: {
            event_id: storedEvents.length,
            data: { stored: { parent_hash: b === 0 ? null : hashes[b - 1]!, blocks: chunk } },
            dp_rank: 0,
          },
        });
      }
      for (let b = BLOCKS - CHUNK; b >= 0; b -= CHUNK) {
        removedEvents.push({
          worker_id: BigInt(w + 1),
          event: {
            event_id: removedEvents.length,
            data: { removed: { block_hashes: hashes.slice(b, b + CHUNK) } },
            dp_rank: 0,
          },
        });
      }
    }
  }
  const objects = createKvIndexer({ initialNodes: 1 << 16 });
  started = performance.now();
  for (const e of storedEvents) objects.applyEvent(e);
  const storedPerSec = storedEvents.length * CHUNK / ((performance.now() - started) / 1000);
  started = performance.now();
  for (const e of removedEvents) objects.applyEvent(e);
  const removedPerSec = removedEvents.length * CHUNK / ((performance.now() - started) / 1000);

  // 5. Hashing a 16k-token prompt.
  const hasher = await createBlockHasher();
  const tokens = Uint32Array.from({ length: 16384 }, (_, i) => (i * 2654435761) >>> 16);
  const timeIt = (fn: () => void, rounds = 300) => {
    for (let i = 0; i < 30; i++) fn();
    const t0 = performance.now();
    for (let i = 0; i < rounds; i++) fn();
    return ((performance.now() - t0) / rounds) * 1000;
  };
  const hashLocalUs = timeIt(() => hasher.localHashes64(tokens, { blockSize: 64 }));
  const hashLocalSeqUs = timeIt(() =>
    hasher.sequenceHashes64(hasher.localHashes64(tokens, { blockSize: 64 }))
  );
  const hashBigintUs = timeIt(() => hasher.blockHashes(tokens, { blockSize: 64 }));

  const result: ChildResult = {
    runtime,
    version,
    storedPerSec,
    removedPerSec,
    storedHalvesPerSec,
    removedHalvesPerSec,
    hashLocalUs,
    hashLocalSeqUs,
    hashBigintUs,
    findP50Us: percentile(sorted, 0.5),
    findP99Us: percentile(sorted, 0.99),
    findMeanUs,
    blocks,
    nodes,
    rssMb,
    rssBaseMb,
  };
  console.log(JSON.stringify(result));
}

function childCommand(runtime: Runtime): string[] {
  const entry = 'bench/indexer.ts';
  switch (runtime) {
    case 'node':
      return ['node', '--import', 'tsx', entry, '--child'];
    case 'bun':
      return ['node_modules/.bin/bun', entry, '--child'];
    case 'deno':
      return ['node_modules/.bin/deno', 'run', '-A', entry, '--child'];
  }
}

function runChild(runtime: Runtime): Promise<ChildResult> {
  const argv = [...childCommand(runtime), '--queries', String(values.queries)];
  return new Promise((resolve, reject) => {
    const proc = spawn(argv[0]!, argv.slice(1), {
      cwd: ROOT,
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let stdout = '';
    proc.stdout.setEncoding('utf8').on('data', (chunk: string) => stdout += chunk);
    proc.once('error', reject);
    proc.once('close', (code, signal) => {
      const last = stdout.trim().split('\n').pop() ?? '';
      try {
        if (code !== 0) throw new Error(signal ? `signal ${signal}` : `exit code ${code}`);
        resolve(JSON.parse(last) as ChildResult);
      } catch (error) {
        reject(
          new Error(
            `${runtime} child failed (${(error as Error).message}); run it by hand:\n  ${
              argv.join(' ')
            }\n${stdout}`,
          ),
        );
      }
    });
  });
}

const m = (n: number) => `${(n / 1e6).toFixed(2)}M`;
const us = (n: number) => `${n < 10 ? n.toFixed(1) : Math.round(n)} µs`;

async function driver(): Promise<void> {
  const runtimes = values.runtimes!.split(',').map((r) => r.trim()) as Runtime[];
  const results: ChildResult[] = [];
  for (const runtime of runtimes) results.push(await runChild(runtime));
  if (values.json) {
    console.log(JSON.stringify(results, null, 2));
    finishBench('indexer', results, { stdoutIsJson: true });
    return;
  }
  const first = results[0];
  console.log(
    `${first?.blocks.toLocaleString('en-US')} blocks, ${
      first?.nodes.toLocaleString('en-US')
    } nodes, ${WORKERS} workers; goals: >= 3M block events/s, <= 20 µs p99, <= 300 MB\n`,
  );
  console.log(
    '| Runtime | Stored blocks/s (objects / halves) | Removed blocks/s (objects / halves) | ' +
      'Hash 16k tokens: local / local+seq / BigInt API | find_matches p50 / p99 (mean) | ' +
      'RSS with 1M blocks (at start) |',
  );
  console.log('|---|---:|---:|---:|---:|---:|');
  for (const r of results) {
    console.log(
      `| ${r.runtime} ${r.version} | ${m(r.storedPerSec)} / ${m(r.storedHalvesPerSec)} | ${
        m(r.removedPerSec)
      } / ${m(r.removedHalvesPerSec)} | ${us(r.hashLocalUs)} / ${us(r.hashLocalSeqUs)} / ${
        us(r.hashBigintUs)
      } | ${us(r.findP50Us)} / ${us(r.findP99Us)} (${us(r.findMeanUs)}) | ${
        Math.round(r.rssMb)
      } MB (${Math.round(r.rssBaseMb)} MB) |`,
    );
  }
  finishBench('indexer', results);
}

if (values.child) await child();
else await driver();
