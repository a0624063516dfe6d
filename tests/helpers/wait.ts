/** Waiting on conditions and events in tests, always bounded by a timeout. */

export interface WaitOptions {
  /** @default 5000 */
  timeoutMs?: number;
  /** How often `waitFor` re-checks. @default 10 */
  intervalMs?: number;
  /** Said when the wait times out. @default 'condition' */
  what?: string;
}

/** Resolves with the first truthy result of `check`; rejects after `timeoutMs`. */
export async function waitFor<T>(
  check: () => T | Promise<T>,
  options: WaitOptions = {},
): Promise<NonNullable<T>> {
  const deadline = Date.now() + (options.timeoutMs ?? 5000);
  for (;;) {
    const result = await check();
    if (result) return result as NonNullable<T>;
    if (Date.now() > deadline) {
      throw new Error(`Timed out waiting for ${options.what ?? 'condition'}`);
    }
    await new Promise((resolve) => setTimeout(resolve, options.intervalMs ?? 10));
  }
}

/** Everything an async iterable produced so far, and a way to wait for what comes next. */
export interface Followed<T> {
  readonly items: T[];
  /** Resolves once `predicate(items)` holds (checked on every new item). */
  until(predicate: (items: T[]) => boolean, options?: WaitOptions): Promise<T[]>;
  /** Resolves when iteration ends; rejects if it threw. */
  readonly done: Promise<void>;
}

/** Consumes `iterable` in the background, recording every item. */
export function follow<T>(iterable: AsyncIterable<T>): Followed<T> {
  const items: T[] = [];
  const waiters = new Set<() => void>();
  let ended = false;
  const wake = () => {
    for (const w of [...waiters]) w();
  };
  const done = (async () => {
    try {
      for await (const item of iterable) {
        items.push(item);
        wake();
      }
    } finally {
      ended = true;
      wake();
    }
  })();
  done.catch(() => {});
  return {
    items,
    done,
    until(predicate, options = {}) {
      return new Promise((resolve, reject) => {
        const check = () => {
          if (predicate(items)) finish(() => resolve(items));
          else if (ended) {
            finish(() => reject(new Error(`Ended before ${options.what ?? 'condition'}`)));
          }
        };
        const timer = setTimeout(() => {
          const seen = JSON.stringify(items, (_k, v) => typeof v === 'bigint' ? `${v}n` : v);
          finish(() =>
            reject(new Error(`Timed out waiting for ${options.what ?? 'condition'}; saw ${seen}`))
          );
        }, options.timeoutMs ?? 5000);
        const finish = (then: () => void) => {
          clearTimeout(timer);
          waiters.delete(check);
          then();
        };
        waiters.add(check);
        check();
      });
    },
  };
}
