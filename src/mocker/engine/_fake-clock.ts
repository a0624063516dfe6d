/**
 * A fake `Clock` for tests: time stands still until every pending timer's owner is waiting, then
 * jumps to the earliest timer and fires it. "Everyone is waiting" is approximated by one real
 * macrotask turn, so simulated time never depends on how fast the machine is.
 */
import type { Clock } from './engine.ts';

export interface FakeClock extends Clock {
  /** Timers not yet fired. */
  pending(): number;
}

interface Timer {
  at: number;
  order: number;
  fire: () => void;
}

export function createFakeClock(start = 0): FakeClock {
  let now = start;
  let order = 0;
  let timers: Timer[] = [];
  let scheduled = false;

  const pump = () => {
    scheduled = false;
    if (timers.length === 0) return;
    timers.sort((a, b) => a.at - b.at || a.order - b.order);
    const next = timers.shift()!;
    now = Math.max(now, next.at);
    next.fire();
    schedule();
  };
  const schedule = () => {
    if (scheduled || timers.length === 0) return;
    scheduled = true;
    setTimeout(pump, 0);
  };

  return {
    now: () => now,
    pending: () => timers.length,
    sleep: (ms, signal) =>
      new Promise<void>((resolve) => {
        if (signal?.aborted) return resolve();
        const timer: Timer = {
          at: now + Math.max(0, ms),
          order: order++,
          fire: () => {
            signal?.removeEventListener('abort', onAbort);
            resolve();
          },
        };
        const onAbort = () => {
          timers = timers.filter((t) => t !== timer);
          resolve();
        };
        signal?.addEventListener('abort', onAbort, { once: true });
        timers.push(timer);
        schedule();
      }),
  };
}
