/** Small promise helpers the request-plane transports share. */

export interface Deferred<T> {
  promise: Promise<T>;
  resolve(value: T): void;
  reject(reason: unknown): void;
}

/** `Promise.withResolvers()`, which Node 20 lacks. */
export function deferred<T>(): Deferred<T> {
  let resolve!: (value: T) => void;
  let reject!: (reason: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

/** Settles like `promise`, or rejects with `signal.reason` as soon as `signal` aborts. */
export function raceAbort<T>(promise: Promise<T>, signal: AbortSignal): Promise<T> {
  return waitFor(promise, { signal });
}

export interface WaitForOptions {
  /** Rejects with its reason when it aborts first. @default none */
  signal?: AbortSignal;
  /** Rejects with `onTimeout()` after this many milliseconds. @default Infinity */
  timeoutMs?: number;
  /** The rejection reason on timeout. @default a `TimeoutError` DOMException */
  onTimeout?: () => unknown;
}

/**
 * Settles like `promise`, unless `signal` aborts or `timeoutMs` passes first. The timer is cleared
 * however it ends, so nothing lingers after an abort.
 */
export function waitFor<T>(promise: Promise<T>, options: WaitForOptions): Promise<T> {
  const { signal, timeoutMs = Infinity } = options;
  if (signal?.aborted) {
    promise.catch(() => {});
    return Promise.reject(signal.reason);
  }
  return new Promise<T>((resolve, reject) => {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const done = () => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
    };
    const onAbort = () => {
      done();
      reject(signal?.reason);
    };
    signal?.addEventListener('abort', onAbort, { once: true });
    if (Number.isFinite(timeoutMs)) {
      timer = setTimeout(() => {
        done();
        reject(
          options.onTimeout?.() ??
            new DOMException(`Timed out after ${timeoutMs} ms`, 'TimeoutError'),
        );
      }, timeoutMs);
    }
    promise.then(
      (value) => {
        done();
        resolve(value);
      },
      (error) => {
        done();
        reject(error);
      },
    );
  });
}

/** The message of an error thrown by a handler, whatever was thrown. */
export function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
