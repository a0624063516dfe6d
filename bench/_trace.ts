/**
 * Mooncake-format traces (`../shared/traces/README.md`) for the replay benches: a window of
 * requests, each 512-token hash id turned into a fixed block of token ids, the unbounded-cache
 * ceiling, and where a run's cache hits went.
 */
import { readFileSync } from 'node:fs';
import process from 'node:process';

export const BLOCK_TOKENS = 512;
/** Token ids drawn for the blocks: below the fixture tokenizer's vocabulary, past its specials. */
const TOKEN_BASE = 1000;
const TOKEN_SPAN = 140_000;

export interface TraceRow {
  timestamp: number;
  input_length: number;
  output_length: number;
  hash_ids: number[];
}

export interface TraceWindow {
  trace: string;
  start: number;
  count: number;
  /** Requests longer than this (prompt + 1) are left out, with a note on stderr. */
  contextLength: number;
  /** Caps output_length. */
  maxOutput?: number;
}

/** The window's requests, timestamps from 0; throws with a message on a bad file or window. */
export function readTraceWindow(o: TraceWindow): TraceRow[] {
  let text: string;
  try {
    text = readFileSync(o.trace, 'utf8');
  } catch (error) {
    throw new Error(`cannot read the trace "${o.trace}": ${(error as Error).message}`);
  }
  const rows = text.split('\n').filter((l) => l.trim()).map((l, i) => {
    const row = JSON.parse(l) as TraceRow;
    if (!Array.isArray(row.hash_ids) || !(row.input_length > 0)) {
      throw new Error(`line ${i + 1} of ${o.trace} is not a Mooncake request`);
    }
    return row;
  });
  const all = rows.slice(o.start, o.start + o.count);
  if (all.length === 0) throw new Error(`the window ${o.start}+${o.count} is empty`);
  // The fixture model serves 40,960 tokens; longer requests would only measure a 400.
  const window = all.filter((r) => r.input_length + 1 <= o.contextLength);
  if (window.length < all.length) {
    process.stderr.write(
      `trace: ${all.length - window.length} of ${all.length} requests are longer than ` +
        `the model's ${o.contextLength} tokens and are left out\n`,
    );
  }
  const t0 = window[0]!.timestamp;
  return window.map((r) => ({
    ...r,
    timestamp: r.timestamp - t0,
    output_length: Math.max(
      1,
      o.maxOutput ? Math.min(o.maxOutput, r.output_length) : r.output_length,
    ),
  }));
}

/** A 32-bit mix (splitmix-like): the token ids of block `id` at position `j`. */
function mix(x: number): number {
  x = Math.imul(x ^ (x >>> 16), 0x7feb352d);
  x = Math.imul(x ^ (x >>> 15), 0x846ca68b);
  return (x ^ (x >>> 16)) >>> 0;
}

export function promptOf(row: TraceRow): number[] {
  const tokens: number[] = [];
  for (const id of row.hash_ids) {
    for (let j = 0; j < BLOCK_TOKENS && tokens.length < row.input_length; j++) {
      tokens.push(TOKEN_BASE + mix(id * BLOCK_TOKENS + j + 1) % TOKEN_SPAN);
    }
  }
  // Requests longer than their hash ids (a last partial block) are padded with their own tokens.
  let k = 0;
  while (tokens.length < row.input_length) {
    tokens.push(TOKEN_BASE + mix(0x9e3779b9 + k++) % TOKEN_SPAN);
  }
  return tokens;
}

/** Cached prompt tokens an unbounded cache that saw every earlier request would give. */
export function ceiling(rows: TraceRow[]): number {
  const seen = new Set<number>();
  let hit = 0;
  let total = 0;
  for (const row of rows) {
    let n = 0;
    while (n < row.hash_ids.length && seen.has(row.hash_ids[n]!)) n++;
    hit += Math.min(n * BLOCK_TOKENS, row.input_length);
    total += row.input_length;
    for (const id of row.hash_ids) seen.add(id);
  }
  return hit / total;
}

/**
 * Where the hits the ceiling counts went, as shares of the ceiling's cached tokens:
 * - `routing`: the request went to a worker that had served no earlier request with its
 *   prefix (or a shorter one) while another had: the router's choice;
 * - `worker`: its worker had served that prefix but reported fewer cached tokens: evicted,
 *   still being prefilled, or the partial last block.
 * `hit` is what the workers reported. Requests are taken in the order they were sent.
 */
export function missAttribution(
  rows: TraceRow[],
  outcomes: ReadonlyArray<{ ok: boolean; sentAtMs: number; worker?: string; cachedTokens: number }>,
) {
  const order = outcomes.map((_, i) => i).filter((i) => outcomes[i]!.ok)
    .sort((a, b) => outcomes[a]!.sentAtMs - outcomes[b]!.sentAtMs);
  const seen = new Set<number>();
  const byWorker = new Map<string, Set<number>>();
  const depth = (ids: number[], set: Set<number>) => {
    let n = 0;
    while (n < ids.length && set.has(ids[n]!)) n++;
    return n;
  };
  let ceiling = 0;
  let sameWorker = 0;
  let hit = 0;
  for (const i of order) {
    const row = rows[i]!;
    const x = outcomes[i]!;
    const mine = byWorker.get(x.worker ?? '') ?? new Set<number>();
    byWorker.set(x.worker ?? '', mine);
    const best = Math.min(depth(row.hash_ids, seen) * BLOCK_TOKENS, row.input_length);
    const own = Math.min(depth(row.hash_ids, mine) * BLOCK_TOKENS, row.input_length);
    ceiling += best;
    sameWorker += own;
    hit += Math.min(x.cachedTokens, own);
    for (const id of row.hash_ids) {
      seen.add(id);
      mine.add(id);
    }
  }
  const share = (n: number) => (ceiling > 0 ? n / ceiling : NaN);
  return { hit: share(hit), routing: share(ceiling - sameWorker), worker: share(sameWorker - hit) };
}
