/**
 * KV events off the main thread (`--router-event-threads N`, N > 1): N `node:worker_threads`
 * threads decode, validate and pack event payloads (JSON RouterEvents, u64s as u32 halves; see
 * src/core/router/kv/event-pool.ts); the thread that owns the indexer applies the packed batches.
 *
 * Consistency: every submission (a payload, or a worker removal) takes the next sequence number.
 * Payloads go round-robin to the threads; replies can come back in any order, and the owner
 * applies them strictly in sequence order (a reorder buffer), so the index always reflects a
 * prefix of the submitted stream: per-worker (indeed global) event order is preserved, a removal
 * orders after every event submitted before it, and `findMatches` on the owner (synchronous, no
 * locks) always sees a consistent tree. The tree itself stays single-writer: in JavaScript the
 * costly part of an event is decoding and BigInt handling, which is what moves to the threads;
 * applying a packed event is a few typed-array probes.
 *
 * With `threads <= 1` the same interface decodes and applies inline on submit.
 * Threads start like src/adapters/threads/preprocess-pool.ts (tsx eval boot on Node without type stripping).
 */
import type { Worker } from 'node:worker_threads';
import { spawnTsWorker } from '../../runtime/ts-worker.ts';
import {
  type AppliedEvent,
  applyPackedEvents,
  type PackedEvents,
  packJsonPayload,
} from '../../core/router/kv/event-pool.ts';
import type { KvIndexer } from '../../core/router/kv/indexer.ts';

export interface KvEventPoolOptions {
  /** Decoding threads; 0 or 1 decodes inline on the calling thread. */
  threads: number;
  /** The indexer the owner thread applies events to. */
  indexer: KvIndexer;
  /** Called for each event as it is applied (metrics, event-id gap detection). */
  onApplied?: (event: AppliedEvent) => void;
  /** Called for a payload that could not be decoded at all. @default ignored */
  onDecodeError?: (error: string) => void;
}

export interface KvEventPool {
  /** Live decoding threads (0 when inline or closed). */
  readonly threads: number;
  /** Submissions not yet applied. */
  readonly pending: number;
  /** Queues a payload: UTF-8 JSON of one RouterEvent or an array of them. */
  submit(payload: Uint8Array | string): void;
  /** Removes a worker after everything submitted before. */
  removeWorker(workerId: bigint): void;
  removeWorkerDpRank(workerId: bigint, dpRank: number): void;
  /** Resolves once everything submitted so far has been applied. */
  flush(): Promise<void>;
  /** Ends the threads (pending payloads are dropped); idempotent. */
  close(): Promise<void>;
}

/** A call after `close()`. */
export class KvEventPoolClosedError extends Error {
  constructor() {
    super('The KV event pool is closed');
    this.name = 'KvEventPoolClosedError';
  }
}

// Messages between the pool and `kv-event-worker.ts`.
/**
 * Bytes travel as a bare ArrayBuffer (transferred): Deno's `node:worker_threads` deserializes a
 * Uint8Array element by element, ~10x the cost of the same bytes as an ArrayBuffer (measured).
 */
export interface KvEventCall {
  seq: number;
  payload: ArrayBuffer | string;
}
export type KvEventReply =
  | { seq: number; ok: true; batch: PackedEvents }
  | { seq: number; ok: false; error: string };

const ENTRY = new URL('./kv-event-worker.ts', import.meta.url);

const spawn = (): Worker => spawnTsWorker(ENTRY);

type Slot =
  | { type: 'batch'; thread: number; batch?: PackedEvents; error?: string; done: boolean }
  | { type: 'remove'; workerId: bigint; dpRank?: number; done: true };

function inlinePool(options: KvEventPoolOptions): KvEventPool {
  let closed = false;
  const check = () => {
    if (closed) throw new KvEventPoolClosedError();
  };
  return {
    threads: 0,
    pending: 0,
    submit(payload) {
      check();
      let batch: PackedEvents;
      try {
        batch = packJsonPayload(payload);
      } catch (error) {
        options.onDecodeError?.(String(error));
        return;
      }
      applyPackedEvents(options.indexer, batch, options.onApplied);
    },
    removeWorker(workerId) {
      check();
      options.indexer.removeWorker(workerId);
    },
    removeWorkerDpRank(workerId, dpRank) {
      check();
      options.indexer.removeWorkerDpRank(workerId, dpRank);
    },
    flush: () => Promise.resolve(),
    close() {
      closed = true;
      return Promise.resolve();
    },
  };
}

/** Starts the pool; resolves once every thread is ready. */
export async function createKvEventPool(options: KvEventPoolOptions): Promise<KvEventPool> {
  if (options.threads <= 1) return inlinePool(options);
  const workers: Worker[] = [];
  const exited: Promise<void>[] = [];
  /** Submissions by sequence number, from `applied` on. */
  const window = new Map<number, Slot>();
  let nextSeq = 0;
  let applied = 0;
  let turn = 0;
  let closed = false;
  const dead = new Set<number>();
  /** Threads are unref'd while idle so an idle pool never holds the process open. */
  let referenced = true;
  const setReferenced = (on: boolean) => {
    if (on === referenced) return;
    referenced = on;
    for (const worker of workers) on ? worker.ref() : worker.unref();
  };
  let waiters: Array<{ upTo: number; resolve: () => void }> = [];

  const drain = () => {
    for (;;) {
      const slot = window.get(applied);
      if (slot === undefined || !slot.done) break;
      window.delete(applied);
      applied++;
      if (slot.type === 'remove') {
        if (slot.dpRank === undefined) options.indexer.removeWorker(slot.workerId);
        else options.indexer.removeWorkerDpRank(slot.workerId, slot.dpRank);
      } else if (slot.batch) {
        applyPackedEvents(options.indexer, slot.batch, options.onApplied);
      } else if (slot.error !== undefined) {
        options.onDecodeError?.(slot.error);
      }
    }
    if (applied === nextSeq) setReferenced(false);
    if (waiters.length > 0) {
      const ready = waiters.filter((w) => w.upTo <= applied);
      waiters = waiters.filter((w) => w.upTo > applied);
      for (const w of ready) w.resolve();
    }
  };

  const onReply = (reply: KvEventReply) => {
    const slot = window.get(reply.seq);
    if (slot === undefined || slot.type !== 'batch') return;
    if (reply.ok) slot.batch = reply.batch;
    else slot.error = reply.error;
    slot.done = true;
    drain();
  };

  const ready: Promise<void>[] = [];
  for (let i = 0; i < options.threads; i++) {
    const worker = spawn();
    workers.push(worker);
    exited.push(new Promise((resolve) => worker.once('exit', () => resolve())));
    ready.push(
      new Promise((resolve, reject) => {
        const onStatus = (message: { status?: string }) => {
          if (message.status !== 'ready') return;
          worker.off('message', onStatus);
          resolve();
        };
        worker.on('message', onStatus);
        worker.once('error', reject);
        worker.once(
          'exit',
          (code) => reject(new Error(`KV event thread exited with code ${code}`)),
        );
      }),
    );
    worker.on('message', (message: KvEventReply | { status: string }) => {
      if ('seq' in message) onReply(message);
    });
    const fail = (error: unknown) => {
      // A dead thread fails its in-flight payloads as decode errors, so the order never stalls;
      // later payloads go to the remaining threads (inline when none is left).
      if (dead.has(i)) return;
      dead.add(i);
      for (const slot of window.values()) {
        if (slot.type === 'batch' && !slot.done && slot.thread === i) {
          slot.error = `KV event thread failed: ${String(error)}`;
          slot.done = true;
        }
      }
      drain();
    };
    worker.on('error', fail);
    worker.on('exit', (code) => {
      if (!closed) fail(`exited with code ${code}`);
    });
  }
  try {
    await Promise.all(ready);
  } catch (error) {
    closed = true;
    await Promise.all(workers.map((w) => w.terminate()));
    throw error;
  }
  setReferenced(false);

  const check = () => {
    if (closed) throw new KvEventPoolClosedError();
  };
  const removal = (workerId: bigint, dpRank?: number) => {
    check();
    const seq = nextSeq++;
    window.set(seq, { type: 'remove', workerId, dpRank, done: true });
    drain();
  };

  return {
    get threads() {
      return closed ? 0 : workers.length;
    },
    get pending() {
      return nextSeq - applied;
    },
    submit(payload) {
      check();
      const seq = nextSeq++;
      if (dead.size === workers.length) {
        let batch: PackedEvents | undefined;
        let error: string | undefined;
        try {
          batch = packJsonPayload(payload);
        } catch (e) {
          error = String(e);
        }
        window.set(seq, { type: 'batch', thread: -1, batch, error, done: true });
        drain();
        return;
      }
      do turn = (turn + 1) % workers.length; while (dead.has(turn));
      window.set(seq, { type: 'batch', thread: turn, done: false });
      setReferenced(true);
      if (typeof payload === 'string') {
        workers[turn]!.postMessage({ seq, payload } satisfies KvEventCall);
      } else {
        // A copy of its own (the payload may be a view into a connection's buffer) to transfer.
        const buffer = payload.slice().buffer as ArrayBuffer;
        workers[turn]!.postMessage({ seq, payload: buffer } satisfies KvEventCall, [buffer]);
      }
    },
    removeWorker: (workerId) => removal(workerId),
    removeWorkerDpRank: (workerId, dpRank) => removal(workerId, dpRank),
    flush() {
      if (applied >= nextSeq) return Promise.resolve();
      const upTo = nextSeq;
      return new Promise((resolve) => waiters.push({ upTo, resolve }));
    },
    async close() {
      if (closed) return;
      closed = true;
      window.clear();
      for (const w of waiters) w.resolve();
      waiters = [];
      await Promise.all(workers.map((w) => w.terminate()));
      await Promise.all(exited);
    },
  };
}

/**
 * The pool behind a synchronous facade (what the KV router's `eventPool` port wants): calls made
 * while the threads start are queued and replayed in order once they are up.
 */
export function createKvEventSink(options: KvEventPoolOptions): {
  submit(message: Uint8Array | string): void;
  removeWorker(workerId: bigint): void;
  removeWorkerDpRank(workerId: bigint, dpRank: number): void;
  close(): Promise<void>;
} {
  let pool: KvEventPool | undefined;
  let closed = false;
  const queued: Array<(p: KvEventPool) => void> = [];
  const starting = createKvEventPool(options).then((p) => {
    pool = p;
    for (const call of queued.splice(0)) call(p);
    return p;
  });
  const run = (call: (p: KvEventPool) => void) => {
    if (closed) return;
    if (pool) call(pool);
    else queued.push(call);
  };
  return {
    submit: (message) => run((p) => p.submit(message)),
    removeWorker: (workerId) => run((p) => p.removeWorker(workerId)),
    removeWorkerDpRank: (workerId, dpRank) => run((p) => p.removeWorkerDpRank(workerId, dpRank)),
    async close() {
      closed = true;
      await (await starting.catch(() => undefined))?.close();
    },
  };
}
