/**
 * In-process discovery (Dynamo's `mem` backend): one `MemKvServer` holds the entries, and every
 * "process" that shares it opens its own store handle with its own random instance id. Closing a
 * handle deletes the keys it wrote, as a revoked lease would. No TTL, no timers.
 */
import { matchesPrefix } from '../../core/discovery/discovery.ts';
import {
  type KvEntry,
  type KvStore,
  KvStoreError,
  type KvWatchEvent,
} from '../../core/discovery/types.ts';
import { randomInstanceId, streamFrom } from './_shared.ts';

type Listener = (event: KvWatchEvent) => void;

/** The shared state behind mem stores; create one per test, or one per process. */
export interface MemKvServer {
  list(prefix: string): KvEntry[];
  /** Writes `key` for `owner` unless it exists. */
  create(owner: string, key: string, value: string): boolean;
  put(owner: string, key: string, value: string): void;
  delete(key: string): void;
  /** Deletes every key `owner` wrote. */
  deleteOwnedBy(owner: string): void;
  /** Calls `listener` with a snapshot of `prefix` now, then with each change; returns unsubscribe. */
  subscribe(prefix: string, listener: Listener): () => void;
  /** A random instance id no other handle of this server has. */
  claimInstanceId(): string;
}

export function createMemKvServer(): MemKvServer {
  const entries = new Map<string, { value: string; owner: string }>();
  const listeners = new Set<{ prefix: string; listener: Listener }>();
  const ids = new Set<string>();

  const emit = (key: string, event: KvWatchEvent) => {
    for (const l of listeners) if (matchesPrefix(key, l.prefix)) l.listener(event);
  };
  const list = (prefix: string) =>
    [...entries].filter(([key]) => matchesPrefix(key, prefix))
      .map(([key, e]) => ({ key, value: e.value }))
      .sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  const put = (owner: string, key: string, value: string) => {
    entries.set(key, { value, owner });
    emit(key, { kind: 'put', key, value });
  };
  const remove = (key: string) => {
    if (entries.delete(key)) emit(key, { kind: 'delete', key });
  };

  return {
    list,
    create(owner, key, value) {
      if (entries.has(key)) return false;
      put(owner, key, value);
      return true;
    },
    put,
    delete: remove,
    deleteOwnedBy(owner) {
      for (const [key, e] of [...entries]) if (e.owner === owner) remove(key);
    },
    subscribe(prefix, listener) {
      const entry = { prefix, listener };
      listener({ kind: 'snapshot', entries: list(prefix) });
      listeners.add(entry);
      return () => void listeners.delete(entry);
    },
    claimInstanceId() {
      let id = randomInstanceId();
      while (ids.has(id)) id = randomInstanceId();
      ids.add(id);
      return id;
    },
  };
}

export interface MemStoreOptions {
  /** The shared state; every handle that should see the others uses the same one. */
  server: MemKvServer;
  /** @default a random u64 */
  instanceId?: string;
}

/** A store handle acting as one process on `server`. */
export function createMemStore(options: MemStoreOptions): KvStore {
  const { server } = options;
  const instanceId = options.instanceId ?? server.claimInstanceId();
  const closed = new AbortController();
  const live = () => {
    if (closed.signal.aborted) throw new KvStoreError('The mem store is closed');
  };
  return {
    instanceId,
    async create(key, value) {
      live();
      return await Promise.resolve(server.create(instanceId, key, value));
    },
    async put(key, value) {
      live();
      await Promise.resolve(server.put(instanceId, key, value));
    },
    async delete(key) {
      live();
      await Promise.resolve(server.delete(key));
    },
    async list(prefix) {
      return await Promise.resolve(server.list(prefix));
    },
    watch(prefix, signal) {
      return streamFrom<KvWatchEvent>(
        AbortSignal.any([signal, closed.signal]),
        (channel, stop) =>
          new Promise<void>((resolve) => {
            const unsubscribe = server.subscribe(prefix, (e) => channel.push(e));
            const done = () => {
              unsubscribe();
              resolve();
            };
            if (stop.aborted) done();
            else stop.addEventListener('abort', done, { once: true });
          }),
      );
    },
    close() {
      if (!closed.signal.aborted) {
        closed.abort();
        server.deleteOwnedBy(instanceId);
      }
      return Promise.resolve();
    },
  };
}
