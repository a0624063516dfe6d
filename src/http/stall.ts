/**
 * The stalled-writer watchdog: a stream whose client has stopped reading blocks on its next
 * write (every runtime applies backpressure), and would hold its worker for ever. Each stream
 * marks when a write starts and ends; one interval per app, running only while streams are open,
 * calls `onStall` for any write pending longer than the timeout (docs/security.md).
 */

export interface StallWatch {
  /** A write started. */
  begin(): void;
  /** The write finished. */
  end(): void;
  /** The stream is over: stop watching it. */
  release(): void;
}

export interface StallWatchdog {
  watch(onStall: () => void): StallWatch;
}

interface Entry {
  since: number | undefined;
  onStall: () => void;
}

export function createStallWatchdog(
  timeoutMs: number,
  monotonic: () => number,
): StallWatchdog {
  const entries = new Set<Entry>();
  let timer: ReturnType<typeof setInterval> | undefined;
  const check = () => {
    const now = monotonic();
    for (const entry of entries) {
      if (entry.since !== undefined && now - entry.since >= timeoutMs) {
        entries.delete(entry);
        entry.onStall();
      }
    }
    if (entries.size === 0) stop();
  };
  const stop = () => {
    clearInterval(timer);
    timer = undefined;
  };
  return {
    watch(onStall) {
      const entry: Entry = { since: undefined, onStall };
      entries.add(entry);
      timer ??= setInterval(check, Math.max(10, Math.min(1000, timeoutMs / 4)));
      return {
        begin: () => void (entry.since = monotonic()),
        end: () => void (entry.since = undefined),
        release: () => {
          entries.delete(entry);
          if (entries.size === 0) stop();
        },
      };
    },
  };
}
