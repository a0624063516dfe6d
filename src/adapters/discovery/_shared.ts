/** Helpers shared by the discovery backends: a push-to-pull queue, base64, backoff. */

/** An unbounded (lossless) queue: producers push, one consumer iterates until `end()`. */
export interface Channel<T> extends AsyncIterable<T> {
  push(value: T): void;
  /** Ends iteration after the queued values. */
  end(): void;
  /** Makes iteration throw `error` after the queued values. */
  fail(error: unknown): void;
}

export function createChannel<T>(): Channel<T> {
  const queue: T[] = [];
  let done = false;
  let failure: { error: unknown } | undefined;
  let wake: (() => void) | undefined;
  const notify = () => {
    const w = wake;
    wake = undefined;
    w?.();
  };
  return {
    push(value) {
      if (done) return;
      queue.push(value);
      notify();
    },
    end() {
      done = true;
      notify();
    },
    fail(error) {
      if (done) return;
      failure = { error };
      done = true;
      notify();
    },
    async *[Symbol.asyncIterator]() {
      for (;;) {
        while (queue.length > 0) yield queue.shift() as T;
        if (done) {
          if (failure) throw failure.error;
          return;
        }
        await new Promise<void>((resolve) => (wake = resolve));
      }
    },
  };
}

/**
 * Runs `produce` in the background and yields what it pushes, until `signal` aborts (or the
 * consumer stops iterating, which aborts the producer's signal too).
 */
export async function* streamFrom<T>(
  signal: AbortSignal,
  produce: (channel: Channel<T>, signal: AbortSignal) => Promise<void>,
): AsyncGenerator<T> {
  const stop = new AbortController();
  const both = AbortSignal.any([signal, stop.signal]);
  const channel = createChannel<T>();
  if (both.aborted) return;
  const onAbort = () => channel.end();
  both.addEventListener('abort', onAbort, { once: true });
  produce(channel, both).then(() => channel.end(), (error) => {
    if (both.aborted) channel.end();
    else channel.fail(error);
  });
  try {
    yield* channel;
  } finally {
    both.removeEventListener('abort', onAbort);
    stop.abort();
  }
}

/** Resolves after `ms`, or at once (without throwing) when `signal` aborts. */
export function delay(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const done = () => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal?.addEventListener('abort', done, { once: true });
  });
}

/** Exponential backoff with jitter: `next()` gives the wait, `reset()` after a success. */
export function createBackoff(minMs: number, maxMs: number): { next(): number; reset(): void } {
  let current = minMs;
  return {
    next() {
      const wait = Math.min(current, maxMs);
      current = Math.min(current * 2, maxMs);
      return wait / 2 + Math.random() * wait / 2;
    },
    reset() {
      current = minMs;
    },
  };
}

export function encodeBase64(data: string | Uint8Array): string {
  const bytes = typeof data === 'string' ? new TextEncoder().encode(data) : data;
  let binary = '';
  for (let i = 0; i < bytes.length; i += 0x8000) {
    binary += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  }
  return btoa(binary);
}

export function decodeBase64(base64: string): string {
  const binary = atob(base64);
  const bytes = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
  return new TextDecoder().decode(bytes);
}

/** A random u64 as lower-case hex, never zero. */
export function randomInstanceId(): string {
  const [n] = crypto.getRandomValues(new BigUint64Array(1));
  return (n === undefined || n === 0n) ? randomInstanceId() : n.toString(16);
}

/**
 * Reads a newline-delimited JSON stream (etcd and Kubernetes watches), calling `onLine` with
 * each non-empty line. Resolves when the stream ends; rejects when reading fails.
 */
export async function readLines(
  body: ReadableStream<Uint8Array>,
  onLine: (line: string) => void | 'stop',
): Promise<void> {
  const reader = body.getReader();
  const decoder = new TextDecoder();
  let buffered = '';
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffered += decoder.decode(value, { stream: true });
      let nl: number;
      while ((nl = buffered.indexOf('\n')) >= 0) {
        const line = buffered.slice(0, nl).trim();
        buffered = buffered.slice(nl + 1);
        if (line !== '' && onLine(line) === 'stop') return;
      }
    }
    if (buffered.trim() !== '') onLine(buffered.trim());
  } finally {
    reader.cancel().catch(() => {});
  }
}
