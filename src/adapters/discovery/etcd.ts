/**
 * Discovery in etcd (Dynamo's default backend) through etcd's v3 JSON gateway, with `fetch` only.
 *
 * - One lease per store (TTL 10 s), kept alive every TTL/3. Every key the store writes is attached
 *   to it, so a crashed process's keys vanish when the lease expires; `close()` revokes it. The
 *   instance id is the lease id in lower-case hex.
 * - If a keepalive finds the lease gone (etcd restarted and lost its data, or the process stalled
 *   past the TTL) the store grants a new lease and re-writes its own keys under the same names, so
 *   a live worker is not forgotten. Its instance id does not change.
 * - Watches list the prefix, emit a snapshot, then stream changes from the next revision. When the
 *   stream breaks (etcd restarted, compaction, a network error) they reconnect with backoff, list
 *   again and emit a fresh snapshot; the discovery layer diffs it, so only real changes surface.
 *
 * The gateway speaks base64 keys and values, and int64s (lease ids, revisions) as JSON strings:
 * they stay strings or bigints here.
 */
import { matchesPrefix } from '../../core/discovery/discovery.ts';
import {
  type KvEntry,
  type KvStore,
  KvStoreError,
  type KvWatchEvent,
} from '../../core/discovery/types.ts';
import type { Logger } from '../../core/logger.ts';
import {
  type Channel,
  createBackoff,
  decodeBase64,
  delay,
  encodeBase64,
  readLines,
  streamFrom,
} from './_shared.ts';

export interface EtcdStoreOptions {
  /** Client URLs, a list or comma-separated; the runtime passes `ETCD_ENDPOINTS`. @default 'http://127.0.0.1:2379' */
  endpoints?: string | readonly string[];
  /** Lease TTL in seconds (`ETCD_LEASE_TTL`). @default 10 */
  leaseTtlSecs?: number;
  /** How often the lease is kept alive. @default leaseTtlSecs * 1000 / 3 */
  keepaliveMs?: number;
  /** Deadline of each unary request. @default 5000 */
  requestTimeoutMs?: number;
  /** Waits between watch reconnects, doubling from `minMs` to `maxMs`. @default { minMs: 100, maxMs: 5000 } */
  backoff?: { minMs: number; maxMs: number };
  /** @default globalThis.fetch */
  fetch?: typeof fetch;
  /** @default none */
  logger?: Logger;
}

/** etcd refused a request, or could not be reached. */
export class EtcdError extends KvStoreError {
  /** gRPC status code from the gateway's error body, when there was one. */
  readonly grpcCode: number | undefined;
  constructor(message: string, options: { cause?: unknown; grpcCode?: number } = {}) {
    super(message, options);
    this.grpcCode = options.grpcCode;
  }
}

interface RawKv {
  key: string;
  value?: string;
}
interface Header {
  revision?: string;
}
interface RangeResponse {
  header?: Header;
  kvs?: RawKv[];
}
interface WatchMessage {
  result?: {
    header?: Header;
    created?: boolean;
    canceled?: boolean;
    cancel_reason?: string;
    compact_revision?: string;
    events?: { type?: 'PUT' | 'DELETE'; kv: RawKv }[];
  };
  error?: { message?: string; grpc_code?: number };
}

/** The smallest key greater than every key starting with `prefix` (`'\0'`: no upper bound). */
function rangeEnd(prefix: string): Uint8Array {
  const bytes = new TextEncoder().encode(prefix);
  for (let i = bytes.length - 1; i >= 0; i--) {
    if ((bytes[i] as number) < 0xff) {
      const end = bytes.slice(0, i + 1);
      end[i] = (bytes[i] as number) + 1;
      return end;
    }
  }
  return new Uint8Array([0]);
}

function rangeOf(prefix: string): { key: string; range_end: string } {
  return {
    key: prefix === '' ? encodeBase64(new Uint8Array([0])) : encodeBase64(prefix),
    range_end: encodeBase64(rangeEnd(prefix)),
  };
}

const isLeaseNotFound = (error: unknown) =>
  error instanceof EtcdError && /lease not found/i.test(error.message);

export async function createEtcdStore(options: EtcdStoreOptions = {}): Promise<KvStore> {
  const rawEndpoints = options.endpoints ?? 'http://127.0.0.1:2379';
  const urls = (typeof rawEndpoints === 'string' ? rawEndpoints.split(',') : [...rawEndpoints])
    .map((u) => u.trim().replace(/\/+$/, ''))
    .filter((u) => u !== '');
  if (urls.length === 0) throw new EtcdError('No etcd endpoint configured');
  const ttlSecs = Math.max(1, Math.round(options.leaseTtlSecs ?? 10));
  const keepaliveMs = options.keepaliveMs ?? (ttlSecs * 1000) / 3;
  const requestTimeoutMs = options.requestTimeoutMs ?? 5000;
  const { minMs, maxMs } = options.backoff ?? { minMs: 100, maxMs: 5000 };
  const doFetch = options.fetch ?? fetch;
  const logger = options.logger;
  const closed = new AbortController();
  let preferred = 0;

  /** POSTs to each endpoint in turn until one answers; rejects with `EtcdError`. */
  async function post(path: string, body: unknown, signal?: AbortSignal): Promise<Response> {
    let lastError: unknown;
    for (let i = 0; i < urls.length; i++) {
      const index = (preferred + i) % urls.length;
      try {
        const response = await doFetch(`${urls[index]}${path}`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify(body),
          signal,
        });
        preferred = index;
        return response;
      } catch (error) {
        if (signal?.aborted) throw error;
        lastError = error;
      }
    }
    throw new EtcdError(`Cannot reach etcd at "${urls.join(',')}"`, { cause: lastError });
  }

  async function call<T>(path: string, body: unknown): Promise<T> {
    const signal = AbortSignal.timeout(requestTimeoutMs);
    const response = await post(path, body, signal);
    const text = await response.text();
    let json: Record<string, unknown> = {};
    try {
      json = text === '' ? {} : JSON.parse(text);
    } catch (cause) {
      throw new EtcdError(`etcd answered ${path} with malformed JSON`, { cause });
    }
    if (!response.ok) {
      const message = typeof json.message === 'string' ? json.message : `HTTP ${response.status}`;
      const grpcCode = typeof json.code === 'number' ? json.code : undefined;
      throw new EtcdError(`etcd refused ${path}: ${message}`, { grpcCode });
    }
    return json as T;
  }

  async function grant(): Promise<string> {
    const granted = await call<{ ID?: string }>('/v3/lease/grant', { TTL: String(ttlSecs) });
    if (granted.ID === undefined) throw new EtcdError('etcd granted a lease without an ID');
    return granted.ID;
  }

  let leaseId = await grant();
  const instanceId = BigInt(leaseId).toString(16);
  /** This store's keys and values, re-written under a new lease if the old one is lost. */
  const owned = new Map<string, string>();
  /** Aborting one makes that watch reconnect (and list again). */
  const watchAttempts = new Set<AbortController>();
  const resetWatches = () => {
    for (const attempt of watchAttempts) attempt.abort();
  };

  let recovering: Promise<void> | undefined;
  function recoverLease(reason: string): Promise<void> {
    recovering ??= (async () => {
      logger?.warn('etcd lease lost; granting a new one and re-writing own keys', {
        reason,
        instanceId,
        keys: owned.size,
      });
      leaseId = await grant();
      for (const [key, value] of owned) {
        await call('/v3/kv/put', {
          key: encodeBase64(key),
          value: encodeBase64(value),
          lease: leaseId,
        });
      }
      // A lost lease usually means etcd lost its data: make this store's watches list again.
      resetWatches();
    })().finally(() => (recovering = undefined));
    return recovering;
  }

  /** Runs a write under the current lease; once more under a new one if etcd lost the lease. */
  async function withLease<T>(write: (lease: string) => Promise<T>): Promise<T> {
    if (closed.signal.aborted) throw new EtcdError('The etcd store is closed');
    await recovering;
    try {
      return await write(leaseId);
    } catch (error) {
      if (!isLeaseNotFound(error)) throw error;
      await recoverLease('a write found no lease');
      return await write(leaseId);
    }
  }

  (async () => {
    while (!closed.signal.aborted) {
      await delay(keepaliveMs, closed.signal);
      if (closed.signal.aborted) break;
      try {
        const reply = await call<{ result?: { TTL?: string } }>('/v3/lease/keepalive', {
          ID: leaseId,
        });
        if (closed.signal.aborted) break;
        if (Number(reply.result?.TTL ?? 0) <= 0) await recoverLease('keepalive reported TTL 0');
      } catch (error) {
        if (closed.signal.aborted) break;
        logger?.warn('etcd keepalive failed', { error });
        // The watch streams may be just as dead without knowing it yet.
        resetWatches();
      }
    }
  })();

  async function range(prefix: string): Promise<{ entries: KvEntry[]; revision: bigint }> {
    const reply = await call<RangeResponse>('/v3/kv/range', rangeOf(prefix));
    const entries = (reply.kvs ?? [])
      .map((kv) => ({ key: decodeBase64(kv.key), value: decodeBase64(kv.value ?? '') }))
      .filter((e) => matchesPrefix(e.key, prefix));
    return { entries, revision: BigInt(reply.header?.revision ?? '0') };
  }

  async function produce(prefix: string, channel: Channel<KvWatchEvent>, stop: AbortSignal) {
    const backoff = createBackoff(minMs, maxMs);
    while (!stop.aborted) {
      const attempt = new AbortController();
      watchAttempts.add(attempt);
      const signal = AbortSignal.any([stop, attempt.signal]);
      try {
        const { entries, revision } = await range(prefix);
        if (signal.aborted) continue;
        channel.push({ kind: 'snapshot', entries });
        const response = await post('/v3/watch', {
          create_request: { ...rangeOf(prefix), start_revision: String(revision + 1n) },
        }, signal);
        if (!response.ok || !response.body) {
          throw new EtcdError(`etcd refused /v3/watch: HTTP ${response.status}`);
        }
        await readLines(response.body, (line) => {
          const message = JSON.parse(line) as WatchMessage;
          if (message.error) {
            throw new EtcdError(`etcd ended a watch: ${message.error.message ?? 'error'}`);
          }
          const result = message.result;
          if (!result) return;
          if (result.created) return backoff.reset();
          if (result.canceled) {
            const why = result.compact_revision
              ? `revision compacted to ${result.compact_revision}`
              : result.cancel_reason ?? 'canceled';
            throw new EtcdError(`etcd cancelled a watch: ${why}`);
          }
          for (const event of result.events ?? []) {
            const key = decodeBase64(event.kv.key);
            if (!matchesPrefix(key, prefix)) continue;
            if (event.type === 'DELETE') channel.push({ kind: 'delete', key });
            else channel.push({ kind: 'put', key, value: decodeBase64(event.kv.value ?? '') });
          }
        });
        if (!stop.aborted) logger?.info('etcd watch stream ended; reconnecting', { prefix });
      } catch (error) {
        if (stop.aborted) break;
        if (!attempt.signal.aborted) {
          logger?.warn('etcd watch failed; reconnecting', { prefix, error });
        }
      } finally {
        watchAttempts.delete(attempt);
      }
      await delay(backoff.next(), stop);
    }
  }

  return {
    instanceId,

    create(key, value) {
      return withLease(async (lease) => {
        const reply = await call<{ succeeded?: boolean }>('/v3/kv/txn', {
          compare: [{ key: encodeBase64(key), target: 'VERSION', result: 'EQUAL', version: '0' }],
          success: [{ request_put: { key: encodeBase64(key), value: encodeBase64(value), lease } }],
        });
        if (reply.succeeded === true) owned.set(key, value);
        return reply.succeeded === true;
      });
    },

    put(key, value) {
      return withLease(async (lease) => {
        await call('/v3/kv/put', { key: encodeBase64(key), value: encodeBase64(value), lease });
        owned.set(key, value);
      });
    },

    async delete(key) {
      if (closed.signal.aborted) throw new EtcdError('The etcd store is closed');
      owned.delete(key);
      await call('/v3/kv/deleterange', { key: encodeBase64(key) });
    },

    async list(prefix) {
      return (await range(prefix)).entries;
    },

    watch(prefix, signal) {
      return streamFrom<KvWatchEvent>(
        AbortSignal.any([signal, closed.signal]),
        (channel, stop) => produce(prefix, channel, stop),
      );
    },

    async close() {
      if (closed.signal.aborted) return;
      closed.abort();
      await recovering?.catch(() => {});
      try {
        await call('/v3/lease/revoke', { ID: leaseId });
      } catch (error) {
        logger?.warn('Could not revoke the etcd lease; its keys expire with its TTL', { error });
      }
      owned.clear();
    },
  };
}

export interface EtcdReaderOptions {
  /** Client URLs, a list or comma-separated. @default 'http://127.0.0.1:2379' */
  endpoints?: string | readonly string[];
  /** Deadline of each range request. @default 5000 */
  requestTimeoutMs?: number;
  /** @default globalThis.fetch */
  fetch?: typeof fetch;
}

/**
 * A read-only view of etcd for hosts with no long-lived process (the edge profile): `list()` is
 * one range request per call; no lease, no keepalive, no timers, no watch. Writes and `watch()`
 * throw `EtcdError`; `close()` does nothing. Its `instanceId` is `0` (it owns no keys).
 */
export function createEtcdReader(options: EtcdReaderOptions = {}): KvStore {
  const rawEndpoints = options.endpoints ?? 'http://127.0.0.1:2379';
  const urls = (typeof rawEndpoints === 'string' ? rawEndpoints.split(',') : [...rawEndpoints])
    .map((u) => u.trim().replace(/\/+$/, ''))
    .filter((u) => u !== '');
  if (urls.length === 0) throw new EtcdError('No etcd endpoint configured');
  const requestTimeoutMs = options.requestTimeoutMs ?? 5000;
  const doFetch = options.fetch ?? ((input, init) => fetch(input, init));
  let preferred = 0;
  const readOnly = () =>
    Promise.reject(new EtcdError('This etcd handle is read-only (edge profile)'));

  async function range(prefix: string): Promise<RangeResponse> {
    let lastError: unknown;
    for (let i = 0; i < urls.length; i++) {
      const index = (preferred + i) % urls.length;
      let response: Response;
      try {
        response = await doFetch(`${urls[index]}/v3/kv/range`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify(rangeOf(prefix)),
          signal: AbortSignal.timeout(requestTimeoutMs),
        });
      } catch (error) {
        lastError = error;
        continue;
      }
      preferred = index;
      const text = await response.text();
      if (!response.ok) {
        throw new EtcdError(`etcd refused /v3/kv/range: HTTP ${response.status} ${text}`);
      }
      try {
        return JSON.parse(text) as RangeResponse;
      } catch (cause) {
        throw new EtcdError('etcd answered /v3/kv/range with malformed JSON', { cause });
      }
    }
    throw new EtcdError(`Cannot reach etcd at "${urls.join(',')}"`, { cause: lastError });
  }

  return {
    instanceId: '0',
    create: readOnly,
    put: readOnly,
    delete: readOnly,
    async list(prefix) {
      const reply = await range(prefix);
      return (reply.kvs ?? [])
        .map((kv) => ({ key: decodeBase64(kv.key), value: decodeBase64(kv.value ?? '') }))
        .filter((e) => matchesPrefix(e.key, prefix));
    },
    watch() {
      throw new EtcdError('This etcd handle cannot watch (edge profile): poll list() instead');
    },
    close: () => Promise.resolve(),
  };
}
