/**
 * Large JSON bodies parsed off the event loop (`--http-body-thread-mb`). Reading a 38 MB body and
 * `JSON.parse` of it cost the event loop hundreds of ms, during which `/live` and every stream
 * waited (docs/security.md). Bodies at or over the threshold go, as transferred bytes, to one
 * thread that decodes, parses and checks them against the request budget: a refused body (a
 * million empty messages, a batch over the budget) never comes back; an accepted one comes back
 * as a structured clone, which for the bodies that are legitimately large (long strings, base64
 * media) is a copy of a few strings.
 *
 * The thread starts on the first large body and is unreferenced while idle, so it never holds the
 * process open. If it fails, that body and later ones are parsed inline: correctness first.
 */
import type { Worker } from 'node:worker_threads';
import { ServiceUnavailableError } from '../../core/errors.ts';
import type { RequestLimits } from '../../core/request-limits.ts';
import {
  type BodyRefusal,
  concatChunks,
  fromBodyRefusal,
  parseJsonBody,
} from '../../http/intake.ts';
import { spawnTsWorker } from '../../runtime/ts-worker.ts';

/**
 * A body for the thread: its chunks as bare ArrayBuffers, transferred. Deno's
 * `node:worker_threads` clones a Uint8Array element by element (13-20 s for 38 MB, measured)
 * even when its buffer is in the transfer list; a transferred ArrayBuffer crosses in a few ms on
 * every runtime. The thread joins them: a 38 MB join on the event loop took tens of ms.
 */
export interface BodyCall {
  id: number;
  buffers: ArrayBuffer[];
  limits: RequestLimits;
}
export type BodyReply =
  | { id: number; ok: true; body: unknown }
  | { id: number; ok: false; refusal: BodyRefusal }
  | { id: number; ok: false; error: string };

export interface BodyPool {
  /**
   * `parseJsonBody` of the joined chunks, in the thread; rejects with the same errors. Chunks
   * that are the whole of their buffer are transferred (gone from the caller), others copied.
   */
  parse(chunks: readonly Uint8Array[], limits: RequestLimits): Promise<unknown>;
  /** Whether the thread is running (it starts on the first call). */
  readonly started: boolean;
  /** Ends the thread; later calls parse inline. */
  close(): Promise<void>;
}

const ENTRY = new URL('./body-worker.ts', import.meta.url);

interface Pending {
  chunks: readonly Uint8Array[];
  limits: RequestLimits;
  resolve(body: unknown): void;
  reject(error: unknown): void;
}

const threadFailed = () =>
  new ServiceUnavailableError(
    'The request body could not be parsed: the body thread failed; retry the request',
  );

export interface BodyPoolOptions {
  /** The thread's entry module. @default `body-worker.ts`; tests pass a failing one */
  entry?: URL;
}

export function createBodyPool(options: BodyPoolOptions = {}): BodyPool {
  let worker: Worker | undefined;
  let ready: Promise<Worker | undefined> | undefined;
  let broken = false;
  let closed = false;
  let nextId = 0;
  const pending = new Map<number, Pending>();

  const inline = (p: Pending) => {
    try {
      p.resolve(parseJsonBody(concatChunks(p.chunks), p.limits));
    } catch (error) {
      p.reject(error);
    }
  };

  /**
   * The thread failed: everything after is parsed here. What it held was transferred and is gone
   * from this side; those requests get a 503 to retry (the thread most likely died of them).
   */
  const fail = () => {
    broken = true;
    worker = undefined;
    const held = [...pending.values()];
    pending.clear();
    for (const p of held) p.reject(threadFailed());
  };

  const start = (): Promise<Worker | undefined> =>
    ready ??= new Promise((resolve) => {
      const w = spawnTsWorker(options.entry ?? ENTRY);
      const onBoot = (message: { status?: string }) => {
        if (message.status !== 'ready') return;
        w.off('message', onBoot);
        w.on('message', onReply);
        worker = w;
        if (pending.size === 0) w.unref();
        resolve(w);
      };
      w.on('message', onBoot);
      w.once('error', () => {
        fail();
        resolve(undefined);
      });
      w.once('exit', () => {
        if (!closed) fail();
        resolve(undefined);
      });
    });

  function onReply(reply: BodyReply) {
    const p = pending.get(reply.id);
    if (!p) return;
    pending.delete(reply.id);
    if (pending.size === 0) worker?.unref();
    if (reply.ok) p.resolve(reply.body);
    else if ('refusal' in reply) p.reject(fromBodyRefusal(reply.refusal));
    // Not a refusal: the thread failed on this body (its bytes went with it), a 503 to retry.
    else p.reject(threadFailed());
  }

  return {
    get started() {
      return worker !== undefined;
    },
    async parse(chunks, limits) {
      const w = broken || closed ? undefined : await start();
      return await new Promise((resolve, reject) => {
        // The chunks travel, not copies, when they are the whole of their buffers.
        const buffers = chunks.map((c) =>
          (c.byteOffset === 0 && c.byteLength === c.buffer.byteLength ? c : c.slice())
            .buffer as ArrayBuffer
        );
        const p: Pending = {
          chunks: buffers.map((b) => new Uint8Array(b)),
          limits,
          resolve,
          reject,
        };
        if (!w || broken || closed) return inline(p);
        const id = nextId++;
        pending.set(id, p);
        w.ref();
        // `postMessage` throwing means the thread never took the bytes: parse them here.
        try {
          w.postMessage({ id, buffers, limits } satisfies BodyCall, buffers);
        } catch {
          pending.delete(id);
          inline(p);
        }
      });
    },
    async close() {
      closed = true;
      const w = worker ?? await ready;
      worker = undefined;
      await w?.terminate();
    },
  };
}
