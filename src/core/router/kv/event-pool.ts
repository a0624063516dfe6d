/**
 * The wire between the KV event threads and the thread that owns the indexer
 * (`--router-event-threads N > 1`, see src/adapters/threads/kv-event-pool.ts): a thread decodes and
 * validates event payloads and turns every u64 into u32 halves ("interning"), packing a payload's
 * events into one `Uint32Array` that is transferred, not copied. The owner then applies a packed
 * batch with no parsing and no BigInt on the way (`applyPackedEvents`).
 *
 * Packed layout, one record per event, all u32:
 *   [kind, workerIndex, dpRank, eventIdLo, eventIdHi, ...body]
 *   kind STORED:  hasParent, parentLo, parentHi, count, count x [tokensLo, tokensHi, blockLo, blockHi]
 *   kind REMOVED: count, count x [lo, hi]
 *   kind CLEARED: (no body)
 *   kind INVALID: (no body; the event failed validation and is reported as `invalid_block`)
 * `workerIndex` indexes the batch's `workers` (worker ids as bigint, structured-cloned).
 */
import type { KvCacheEventData, RouterEvent } from './events.ts';
import { parseExactJson } from '../../json.ts';
import type { ApplyStatus, KvIndexer } from './indexer.ts';

export const PACKED_STORED = 1;
export const PACKED_REMOVED = 2;
export const PACKED_CLEARED = 3;
export const PACKED_INVALID = 4;

export type PackedEventKind = 'stored' | 'removed' | 'cleared' | 'invalid';

export interface PackedEvents {
  workers: bigint[];
  data: Uint32Array;
  /** Events in `data`. */
  count: number;
}

/** What the owner learns of each applied event (for metrics and event-id gap detection). */
export interface AppliedEvent {
  workerId: bigint;
  dpRank: number;
  eventId: number;
  kind: PackedEventKind;
  status: ApplyStatus;
}

const U32 = 0x1_0000_0000;
const big = new BigUint64Array(1);
const halves = new Uint32Array(big.buffer);
const LE = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;
const LO = LE ? 0 : 1;
const HI = LE ? 1 : 0;

/** Grows as needed; `finish()` returns an exact-size copy. */
class Writer {
  data = new Uint32Array(256);
  length = 0;
  ensure(n: number) {
    if (this.length + n <= this.data.length) return;
    let size = this.data.length * 2;
    while (size < this.length + n) size *= 2;
    const next = new Uint32Array(size);
    next.set(this.data.subarray(0, this.length));
    this.data = next;
  }
  push(v: number) {
    this.data[this.length++] = v;
  }
  /** Writes a u64 (bigint, or a safe integer) as two halves; false when it is not one. */
  u64(value: unknown): boolean {
    if (typeof value === 'number') {
      if (!Number.isSafeInteger(value)) return false;
      if (value >= 0) {
        this.data[this.length++] = value >>> 0;
        this.data[this.length++] = Math.floor(value / U32);
        return true;
      }
      value = BigInt(value);
    }
    if (typeof value !== 'bigint') return false;
    big[0] = value;
    this.data[this.length++] = halves[LO]!;
    this.data[this.length++] = halves[HI]!;
    return true;
  }
}

const isObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

/**
 * Packs RouterEvents (objects as decoded from the wire: hashes as bigint or numbers). Malformed
 * events become INVALID records rather than failing the batch.
 */
export function packEvents(events: readonly unknown[]): PackedEvents {
  const w = new Writer();
  const workers: bigint[] = [];
  const workerIndex = new Map<bigint, number>();
  for (const raw of events) {
    const start = w.length;
    w.ensure(5);
    const event = isObject(raw) ? raw : {};
    const inner = isObject(event.event) ? event.event : {};
    const id = event.worker_id;
    let workerId = 0n;
    if (typeof id === 'bigint' || (typeof id === 'number' && Number.isSafeInteger(id))) {
      workerId = BigInt.asUintN(64, BigInt(id));
    }
    let index = workerIndex.get(workerId);
    if (index === undefined) {
      index = workers.length;
      workers.push(workerId);
      workerIndex.set(workerId, index);
    }
    const dpRank = typeof inner.dp_rank === 'number' ? inner.dp_rank >>> 0 : 0;
    const eventId = typeof inner.event_id === 'number' || typeof inner.event_id === 'bigint'
      ? Number(inner.event_id)
      : 0;
    w.push(PACKED_INVALID);
    w.push(index);
    w.push(dpRank);
    w.push(eventId >>> 0);
    w.push(Math.floor(eventId / U32) >>> 0);
    const data = inner.data as unknown;
    let valid = false;
    if (data === 'cleared') {
      w.data[start] = PACKED_CLEARED;
      valid = true;
    } else if (isObject(data) && isObject(data.stored)) {
      const stored = data.stored;
      const blocks = Array.isArray(stored.blocks) ? stored.blocks : undefined;
      if (blocks) {
        w.ensure(4 + blocks.length * 4);
        const parent = stored.parent_hash;
        if (parent === null || parent === undefined) {
          w.push(0);
          w.push(0);
          w.push(0);
          valid = true;
        } else {
          w.push(1);
          valid = w.u64(parent);
        }
        w.push(blocks.length);
        for (let i = 0; valid && i < blocks.length; i++) {
          const block = blocks[i] as Record<string, unknown> | undefined;
          valid = isObject(block) && w.u64(block.tokens_hash) && w.u64(block.block_hash);
        }
        if (valid) w.data[start] = PACKED_STORED;
      }
    } else if (isObject(data) && isObject(data.removed)) {
      const hashes = data.removed.block_hashes;
      if (Array.isArray(hashes)) {
        w.ensure(1 + hashes.length * 2);
        w.push(hashes.length);
        valid = true;
        for (let i = 0; valid && i < hashes.length; i++) valid = w.u64(hashes[i]);
        if (valid) w.data[start] = PACKED_REMOVED;
      }
    }
    if (!valid) w.length = start + 5; // drop a partial body; the record stays INVALID
  }
  return { workers, data: w.data.slice(0, w.length), count: events.length };
}

/**
 * Decodes a Dynamo event payload (UTF-8 JSON of one RouterEvent or an array of them, u64s exact)
 * and packs it. An unparsable payload packs to zero events and is reported through the throw.
 */
export function packJsonPayload(payload: Uint8Array | string): PackedEvents {
  const text = typeof payload === 'string' ? payload : new TextDecoder().decode(payload);
  let value = parseExactJson(text);
  // An event-plane envelope ({topic, publisher_id, sequence, published_at, payload}) as it came
  // off the wire: its payload is the RouterEvent.
  const envelope = value as { topic?: unknown; payload?: unknown } | null;
  if (envelope && typeof envelope === 'object' && 'payload' in envelope && 'topic' in envelope) {
    value = envelope.payload;
  }
  return packEvents(Array.isArray(value) ? value : [value]);
}

/** Applies a packed batch in order; `onApplied` sees every event with its status. */
export function applyPackedEvents(
  indexer: KvIndexer,
  batch: PackedEvents,
  onApplied?: (event: AppliedEvent) => void,
): void {
  const { data, workers } = batch;
  let at = 0;
  while (at < data.length) {
    const kind = data[at]!;
    const workerId = workers[data[at + 1]!]!;
    const dpRank = data[at + 2]!;
    const eventId = data[at + 3]! + data[at + 4]! * U32;
    at += 5;
    let status: ApplyStatus = 'ok';
    let name: PackedEventKind;
    if (kind === PACKED_STORED) {
      name = 'stored';
      const hasParent = data[at] === 1;
      const parent = hasParent ? { lo: data[at + 1]!, hi: data[at + 2]! } : null;
      const count = data[at + 3]!;
      status = indexer.applyStoredHalves(workerId, dpRank, parent, {
        data,
        offset: at + 4,
        count,
      });
      at += 4 + count * 4;
    } else if (kind === PACKED_REMOVED) {
      name = 'removed';
      const count = data[at]!;
      status = indexer.applyRemovedHalves(workerId, dpRank, { data, offset: at + 1, count });
      at += 1 + count * 2;
    } else if (kind === PACKED_CLEARED) {
      name = 'cleared';
      indexer.clearWorkerDpRank(workerId, dpRank);
    } else {
      name = 'invalid';
      status = 'invalid_block';
    }
    onApplied?.({ workerId, dpRank, eventId, kind: name, status });
  }
}

/** Unpacks a batch back into RouterEvents (tests and diagnostics). */
export function unpackEvents(batch: PackedEvents): Array<RouterEvent | null> {
  const out: Array<RouterEvent | null> = [];
  const { data, workers } = batch;
  const u64 = (at: number) => {
    halves[LO] = data[at]!;
    halves[HI] = data[at + 1]!;
    return big[0]!;
  };
  let at = 0;
  while (at < data.length) {
    const kind = data[at]!;
    const head = { worker_id: workers[data[at + 1]!]!, dp_rank: data[at + 2]! };
    const eventId = data[at + 3]! + data[at + 4]! * U32;
    at += 5;
    let body: KvCacheEventData | null = null;
    if (kind === PACKED_STORED) {
      const parent = data[at] === 1 ? u64(at + 1) : null;
      const count = data[at + 3]!;
      const blocks = [];
      for (let i = 0, p = at + 4; i < count; i++, p += 4) {
        blocks.push({ tokens_hash: u64(p), block_hash: u64(p + 2) });
      }
      body = { stored: { parent_hash: parent, blocks } };
      at += 4 + count * 4;
    } else if (kind === PACKED_REMOVED) {
      const count = data[at]!;
      const hashes = [];
      for (let i = 0; i < count; i++) hashes.push(u64(at + 1 + i * 2));
      body = { removed: { block_hashes: hashes } };
      at += 1 + count * 2;
    } else if (kind === PACKED_CLEARED) {
      body = 'cleared';
    }
    out.push(
      body === null ? null : {
        worker_id: head.worker_id,
        event: { event_id: eventId, data: body, dp_rank: head.dp_rank },
      },
    );
  }
  return out;
}
