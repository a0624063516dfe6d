/**
 * Chat rendering and tokenization off the event loop: N `node:worker_threads` workers, each with
 * its own copy of the model's preprocessor (`preprocess-worker.ts`). Tokenizing a 100k-token
 * prompt takes 100-250 ms of CPU; in a worker it no longer stalls every other stream. With
 * `workers: 0` the same interface runs in-process.
 *
 * Starting a TypeScript worker differs per runtime (measured on Node 20, Bun 1.4, Deno 2.9):
 * Bun and Deno run a `.ts` entry as is. Node 20 does not apply the `--import tsx` hooks to a
 * worker's entry module (ERR_UNKNOWN_FILE_EXTENSION, even with `execArgv`), so there the worker
 * starts from a one-line eval script that registers tsx's ESM hooks and then imports the entry.
 * A Node that strips types natively (`process.features.typescript`) needs neither.
 */
import type { Worker } from 'node:worker_threads';
import { spawnTsWorker } from '../../runtime/ts-worker.ts';
import type { ModelDirFiles } from '../../core/discovery/model-dir.ts';
import {
  type ChatPromptRequest,
  loadModelPreprocessor,
  type ModelPreprocessor,
  PromptTooLargeError,
  PromptTooLongError,
  type RenderedPrompt,
} from '../../core/preprocess/preprocessor.ts';
import { ChatTemplateError } from '../../core/preprocess/template.ts';
import type { Tokenizer } from '../../core/preprocess/tokenizer.ts';

export interface PreprocessPoolOptions {
  /** Worker threads; 0 runs everything inline on the calling thread. */
  workers: number;
  /** The model directory's files (`readModelDir()`). */
  files: ModelDirFiles;
  /**
   * The in-process preprocessor (inline work, detokenization, metadata), if already loaded.
   * @default loaded from `files`
   */
  preprocessor?: ModelPreprocessor;
  /**
   * Requests with fewer characters of text than this run inline even with workers: a thread
   * hop costs more than templating a short chat, and only long prompts stall the event loop.
   * @default 0 (everything goes to the workers)
   */
  inlineBelowChars?: number;
}

/** Characters of text in a chat request, counted until `limit` is reached. */
export function chatTextSize(request: ChatPromptRequest, limit: number): number {
  let size = 0;
  const stack: unknown[] = [request.messages, request.tools];
  while (stack.length > 0 && size < limit) {
    const value = stack.pop();
    if (typeof value === 'string') size += value.length;
    else if (Array.isArray(value)) stack.push(...value);
    else if (value !== null && typeof value === 'object') stack.push(...Object.values(value));
  }
  return size;
}

/**
 * The same operations as `ModelPreprocessor`, async; `tokenizer`, `eosTokenIds` and
 * `contextLength` come from the in-process copy (the postprocessor detokenizes on this thread).
 */
export interface PreprocessPool {
  /** Live worker threads (0 when inline or closed). */
  readonly workers: number;
  readonly preprocessor: ModelPreprocessor;
  readonly tokenizer: Tokenizer;
  readonly eosTokenIds: readonly number[];
  readonly contextLength?: number;
  renderChat(request: ChatPromptRequest): Promise<RenderedPrompt>;
  tokenizePrompt(text: string): Promise<number[]>;
  /** Ends every thread; resolves once all have exited. Later calls reject. */
  close(): Promise<void>;
}

/** A call after `close()`. */
export class PreprocessPoolClosedError extends Error {
  constructor() {
    super('The preprocessing pool is closed');
    this.name = 'PreprocessPoolClosedError';
  }
}

/** A worker thread failed to start or died with calls in flight. */
export class PreprocessWorkerError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'PreprocessWorkerError';
  }
}

// The messages between the pool and `preprocess-worker.ts`.
export type PoolCall =
  | { id: number; op: 'renderChat'; request: ChatPromptRequest }
  | { id: number; op: 'tokenizePrompt'; text: string };
export interface SerializedError {
  name: string;
  message: string;
  contextLength?: number;
  promptLength?: number;
}
export type PoolReply =
  | {
    id: number;
    ok: true;
    prompt?: string;
    tokenIds: Uint32Array;
    timings?: RenderedPrompt['timings'];
  }
  | { id: number; ok: false; error: SerializedError };
export type WorkerStatus = { status: 'ready' } | { status: 'failed'; error: SerializedError };

/** Rebuilds the errors callers map to HTTP statuses; anything else stays a plain Error. */
function deserializeError(error: SerializedError): Error {
  if (
    error.name === 'PromptTooLongError' && error.contextLength !== undefined &&
    error.promptLength !== undefined
  ) {
    return new PromptTooLongError(error.contextLength, error.promptLength);
  }
  if (
    error.name === 'PromptTooLargeError' && error.contextLength !== undefined &&
    error.promptLength !== undefined
  ) {
    return new PromptTooLargeError(error.contextLength, error.promptLength);
  }
  if (error.name === 'ChatTemplateError') return new ChatTemplateError(error.message);
  const out = new Error(error.message);
  out.name = error.name;
  return out;
}

const ENTRY = new URL('./preprocess-worker.ts', import.meta.url);

/** How this runtime starts a worker whose entry is a `.ts` file. */
const spawn = (files: ModelDirFiles): Worker => spawnTsWorker(ENTRY, { workerData: { files } });

interface Pending {
  resolve(reply: PoolReply & { ok: true }): void;
  reject(error: Error): void;
}

interface Thread {
  worker: Worker;
  pending: Map<number, Pending>;
  /** It loaded the model; only such a thread is replaced when it dies. */
  started: boolean;
  exited: Promise<void>;
}

function startThread(files: ModelDirFiles, onDeath: (thread: Thread, error: Error) => void) {
  const worker = spawn(files);
  let markExited!: () => void;
  const thread: Thread = {
    worker,
    pending: new Map(),
    started: false,
    exited: new Promise((resolve) => (markExited = resolve)),
  };
  const ready = new Promise<Thread>((resolve, reject) => {
    const onStatus = (message: WorkerStatus | PoolReply) => {
      if (!('status' in message)) return;
      worker.off('message', onStatus);
      if (message.status === 'ready') {
        thread.started = true;
        resolve(thread);
      } else {
        const cause = deserializeError(message.error);
        reject(
          new PreprocessWorkerError(`Preprocessing worker failed to start: ${cause.message}`, {
            cause,
          }),
        );
      }
    };
    worker.on('message', onStatus);
    worker.once('error', reject);
    worker.once(
      'exit',
      (code) =>
        reject(new PreprocessWorkerError(`Preprocessing worker exited with code ${code} at start`)),
    );
  });
  worker.on('message', (message: WorkerStatus | PoolReply) => {
    if ('status' in message) return;
    const call = thread.pending.get(message.id);
    if (!call) return;
    thread.pending.delete(message.id);
    if (message.ok) call.resolve(message);
    else call.reject(deserializeError(message.error));
  });
  worker.on(
    'error',
    (error: unknown) => onDeath(thread, error instanceof Error ? error : new Error(String(error))),
  );
  worker.on('exit', (code) => {
    markExited();
    onDeath(thread, new PreprocessWorkerError(`Preprocessing worker exited with code ${code}`));
  });
  return { thread, ready };
}

function inlinePool(preprocessor: ModelPreprocessor): PreprocessPool {
  let closed = false;
  const run = <T>(fn: () => T): Promise<T> => {
    if (closed) return Promise.reject(new PreprocessPoolClosedError());
    try {
      return Promise.resolve(fn());
    } catch (error) {
      return Promise.reject(error);
    }
  };
  return {
    workers: 0,
    preprocessor,
    tokenizer: preprocessor.tokenizer,
    eosTokenIds: preprocessor.eosTokenIds,
    contextLength: preprocessor.contextLength,
    renderChat: (request) => run(() => preprocessor.renderChat(request)),
    tokenizePrompt: (text) => run(() => preprocessor.tokenizePrompt(text)),
    close() {
      closed = true;
      return Promise.resolve();
    },
  };
}

/**
 * Starts the pool; resolves once every worker has loaded the model (rejects, with the threads
 * ended, if one cannot). Calls go to the worker with the fewest in flight; a worker that dies
 * fails its in-flight calls with `PreprocessWorkerError` and is replaced.
 */
export async function createPreprocessPool(
  options: PreprocessPoolOptions,
): Promise<PreprocessPool> {
  const local = options.preprocessor
    ? Promise.resolve(options.preprocessor)
    : loadModelPreprocessor(options.files);
  if (options.workers <= 0) return inlinePool(await local);
  const threads: Thread[] = [];
  let closed = false;
  let nextId = 0;

  const onDeath = (thread: Thread, error: Error) => {
    const index = threads.indexOf(thread);
    if (index < 0) return;
    threads.splice(index, 1);
    for (const call of thread.pending.values()) {
      call.reject(
        new PreprocessWorkerError(`Preprocessing worker died: ${error.message}`, {
          cause: error,
        }),
      );
    }
    thread.pending.clear();
    void thread.worker.terminate();
    if (!closed && thread.started) {
      const { thread: replacement, ready } = startThread(options.files, onDeath);
      threads.push(replacement);
      ready.catch(() => {}); // a replacement that fails to start is simply gone
    }
  };

  const started = Array.from({ length: options.workers }, () => {
    const { thread, ready } = startThread(options.files, onDeath);
    threads.push(thread);
    return ready;
  });
  let preprocessor: ModelPreprocessor;
  try {
    [preprocessor] = await Promise.all([local, ...started]);
  } catch (error) {
    closed = true;
    await Promise.all(threads.map((t) => t.worker.terminate()));
    throw error;
  }

  const inlineBelow = options.inlineBelowChars ?? 0;
  const inline = inlinePool(preprocessor);

  const call = (message: PoolCall): Promise<PoolReply & { ok: true }> => {
    if (closed) return Promise.reject(new PreprocessPoolClosedError());
    const thread = threads.reduce((a, b) => (b.pending.size < a.pending.size ? b : a));
    return new Promise((resolve, reject) => {
      thread.pending.set(message.id, { resolve, reject });
      thread.worker.postMessage(message);
    });
  };

  return {
    get workers() {
      return closed ? 0 : threads.length;
    },
    preprocessor,
    tokenizer: preprocessor.tokenizer,
    eosTokenIds: preprocessor.eosTokenIds,
    contextLength: preprocessor.contextLength,
    async renderChat(request) {
      if (!closed && inlineBelow > 0 && chatTextSize(request, inlineBelow) < inlineBelow) {
        return await inline.renderChat(request);
      }
      const reply = await call({ id: nextId++, op: 'renderChat', request });
      const { timings } = reply;
      return { prompt: reply.prompt ?? '', tokenIds: Array.from(reply.tokenIds), timings };
    },
    async tokenizePrompt(text) {
      if (!closed && text.length < inlineBelow) return await inline.tokenizePrompt(text);
      const reply = await call({ id: nextId++, op: 'tokenizePrompt', text });
      return Array.from(reply.tokenIds);
    },
    async close() {
      if (closed) return;
      closed = true;
      const ending = [...threads];
      for (const thread of ending) {
        for (const pending of thread.pending.values()) {
          pending.reject(new PreprocessPoolClosedError());
        }
        thread.pending.clear();
        void thread.worker.terminate();
      }
      await Promise.all(ending.map((t) => t.exited));
      threads.length = 0;
    },
  };
}
