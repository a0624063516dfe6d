/**
 * The frontend's own count of what it has in flight on each worker, for `least-loaded` and
 * `power-of-two-choices` (router reference §6): a request counts from the moment it is sent to
 * its worker until its stream ends, fails or is cancelled. Its tokens (the prompt, then each
 * output token as it streams) count too when the request carries token ids, so a worker busy
 * with one long prompt is not mistaken for an idle one. Only this frontend's requests are
 * counted: replicas do not see each other's (the KV router's `--router-replica-sync` is the
 * shared view).
 */

export interface WorkerLoad {
  /** Requests in flight. */
  requests: number;
  /** Tokens of the requests in flight whose tokens are known (prompt + output so far). */
  tokens: number;
  /** Requests in flight whose tokens are unknown. */
  untokenized: number;
}

/** One request in flight: report output tokens as they arrive, `release` once at the end. */
export interface LoadLease {
  tokens(count: number): void;
  /** Idempotent. */
  release(): void;
}

export interface LoadTracker {
  /** A request was sent to `instanceId`; `tokens` is its prompt length, when known. */
  start(instanceId: string, tokens?: number): LoadLease;
  /** What is in flight on `instanceId` (zeros when nothing). */
  of(instanceId: string): WorkerLoad;
}

const IDLE: WorkerLoad = Object.freeze({ requests: 0, tokens: 0, untokenized: 0 });

export function createLoadTracker(): LoadTracker {
  const loads = new Map<string, WorkerLoad>();
  return {
    start(instanceId, tokens) {
      let load = loads.get(instanceId);
      if (!load) loads.set(instanceId, load = { requests: 0, tokens: 0, untokenized: 0 });
      const known = tokens !== undefined;
      let held = known ? tokens : 0;
      load.requests++;
      if (known) load.tokens += held;
      else load.untokenized++;
      let released = false;
      const current = load;
      return {
        tokens(count) {
          if (released || !known || count <= 0) return;
          current.tokens += count;
          held += count;
        },
        release() {
          if (released) return;
          released = true;
          current.requests--;
          if (known) current.tokens -= held;
          else current.untokenized--;
          if (current.requests === 0 && loads.get(instanceId) === current) {
            loads.delete(instanceId);
          }
        },
      };
    },
    of: (instanceId) => loads.get(instanceId) ?? IDLE,
  };
}

/**
 * Orders two workers' loads: by tokens when every request in flight on both has known tokens,
 * else by request count. Negative when `a` is less loaded.
 */
export function compareLoad(a: WorkerLoad, b: WorkerLoad): number {
  if (a.untokenized === 0 && b.untokenized === 0 && a.tokens !== b.tokens) {
    return a.tokens - b.tokens;
  }
  return a.requests - b.requests;
}
