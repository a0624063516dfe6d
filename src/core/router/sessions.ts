/**
 * Session affinity (router reference §4.10), in every router mode: a request that carries a
 * session id (`nvext.session_control.session_id`, or the `x-dynamo-session-id` header) goes to
 * the worker its session was last served by, as long as the session has not been idle for
 * longer than its TTL (`--router-session-affinity-ttl-secs`, or `session_control.timeout`) and
 * that worker is still a candidate: still in discovery, not busy, not inhibited after a failure.
 * Otherwise the router mode picks as usual and the session moves to the worker it picked.
 * `action: "close"` serves the request where the session is, then forgets the session.
 */

/**
 * The table key of a session: sessions are bound per model and per pool, so a disaggregated
 * request keeps both its prefill and its decode worker, and one id used with two models does not
 * flip between them.
 */
export function sessionKey(model: string, pool: 'decode' | 'prefill', sessionId: string): string {
  return `${model}\u0000${pool}\u0000${sessionId}`;
}

export interface SessionRequest {
  /** The table key (`sessionKey`). */
  sessionId: string;
  /** `session_control.action`; `close` forgets the session once the request is sent. */
  action?: 'bind' | 'open' | 'close' | null;
  /** Idle TTL of this session in seconds (`session_control.timeout`). @default the table's */
  ttlSecs?: number | null;
}

export interface SessionTable {
  /** The worker `sessionId` is bound to, if its binding is still fresh. */
  lookup(sessionId: string): string | undefined;
  /** Binds (or re-binds) the session to `instanceId` and restarts its idle clock. */
  bind(session: SessionRequest, instanceId: string): void;
  /** Forgets the session. */
  close(sessionId: string): void;
  /** Sessions bound right now (expired ones are dropped first). */
  size(): number;
}

export interface SessionTableOptions {
  /** Monotonic milliseconds. */
  now: () => number;
  /** Idle TTL in seconds; 0 turns affinity off (nothing is ever bound). */
  ttlSecs: number;
  /** Bindings kept at most; the least recently used goes first. @default 1_000_000 */
  maxSessions?: number;
}

interface Binding {
  instanceId: string;
  expiresAt: number;
}

export function createSessionTable(options: SessionTableOptions): SessionTable {
  const { now } = options;
  const max = options.maxSessions ?? 1_000_000;
  // A Map keeps insertion order: re-inserting on use keeps the least recently used first.
  const bindings = new Map<string, Binding>();
  const sweep = () => {
    const t = now();
    for (const [id, b] of bindings) {
      if (b.expiresAt <= t) bindings.delete(id);
    }
  };
  return {
    lookup(sessionId) {
      const binding = bindings.get(sessionId);
      if (!binding) return undefined;
      if (binding.expiresAt <= now()) {
        bindings.delete(sessionId);
        return undefined;
      }
      return binding.instanceId;
    },
    bind(session, instanceId) {
      const ttl = session.ttlSecs ?? options.ttlSecs;
      if (options.ttlSecs <= 0 || ttl <= 0) return;
      bindings.delete(session.sessionId);
      bindings.set(session.sessionId, { instanceId, expiresAt: now() + ttl * 1000 });
      if (bindings.size > max) sweep();
      while (bindings.size > max) {
        const oldest = bindings.keys().next().value as string;
        bindings.delete(oldest);
      }
    },
    close(sessionId) {
      bindings.delete(sessionId);
    },
    size() {
      sweep();
      return bindings.size;
    },
  };
}
