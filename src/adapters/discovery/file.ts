/**
 * Discovery in a shared directory (Dynamo's `file` backend, `storage/kv/file.rs`).
 *
 * - A bucket (`v1/instances`, `v1/mdc`, ...) is a directory under the root; each key is one file
 *   in it, named by percent-encoding the rest of the key (every byte but `[A-Za-z0-9]`:
 *   `dynamo%2Fbackend%2Fgenerate%2F1a2b3c`). The content is the value.
 * - Writes are atomic: a `.tmp_{16 hex}` file in the bucket, then `rename` (put) or `link`
 *   (create-if-absent: fails when the key exists). Names starting with `.` are never keys.
 * - Liveness: every `max(ttl/3, 1 s)` each process touches (mtime) the files it owns, re-writing
 *   any that vanished, then deletes every file older than the TTL: a dead process's keys go
 *   within TTL + one interval. `close()` deletes the process's files.
 * - Watches: `fs.watch` on the bucket directories re-reads the file named in each event, and a
 *   rescan every `pollMs` catches whatever notifications missed; both update one diff.
 */
import { type FSWatcher, watch as watchDirectory } from 'node:fs';
import {
  link,
  mkdir,
  readdir,
  readFile,
  rename,
  stat,
  unlink,
  utimes,
  writeFile,
} from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Logger } from '../../core/logger.ts';
import { matchesPrefix, normalizeInstanceId } from '../../core/discovery/discovery.ts';
import {
  type KvEntry,
  type KvStore,
  KvStoreError,
  type KvWatchEvent,
} from '../../core/discovery/types.ts';
import { type Channel, randomInstanceId, streamFrom } from './_shared.ts';

export interface FileStoreOptions {
  /** The shared directory; the runtime passes `DYN_FILE_KV`. @default `{os tmpdir}/dynamo_store_kv` */
  root?: string;
  /** Files untouched for longer are deleted by every live process (minimum 1000). @default 10000 */
  ttlMs?: number;
  /** How often own files are touched and stale ones swept. @default max(ttlMs / 3, 1000) */
  heartbeatMs?: number;
  /** How often a watch rescans its buckets, in case `fs.watch` missed something. @default 1000 */
  pollMs?: number;
  /** Use `fs.watch` notifications; without them watches rely on rescans alone. @default true */
  fsWatch?: boolean;
  /** @default a random u64 */
  instanceId?: string;
  /** Wall clock in ms, for mtimes and the TTL. @default Date.now */
  now?: () => number;
  /** @default none */
  logger?: Logger;
  /**
   * Keeps own files fresh off the event loop (a thread; `src/adapters/threads/file-toucher.ts`), given the
   * paths whenever they change; the store's heartbeat still re-writes and sweeps.
   * @default none: the heartbeat alone, on the event loop
   */
  toucher?: FileToucher;
}

/** Sets the mtime of the given files every heartbeat interval, whatever the event loop does. */
export interface FileToucher {
  set(paths: string[]): void;
  close(): Promise<void>;
}

/** A file store; `heartbeat()` runs one touch-and-sweep cycle now (tests use it). */
export interface FileKvStore extends KvStore {
  readonly root: string;
  heartbeat(): Promise<void>;
}

/** Percent-encodes every byte of `text` except ASCII letters and digits. */
export function encodeFileName(text: string): string {
  let out = '';
  for (const byte of new TextEncoder().encode(text)) {
    const c = String.fromCharCode(byte);
    out += /[A-Za-z0-9]/.test(c) ? c : `%${byte.toString(16).toUpperCase().padStart(2, '0')}`;
  }
  return out;
}

function decodeFileName(name: string): string | undefined {
  if (name.startsWith('.')) return undefined;
  try {
    return decodeURIComponent(name);
  } catch {
    return undefined;
  }
}

const errorCode = (error: unknown) => (error as { code?: unknown } | null)?.code;
const isMissing = (error: unknown) => errorCode(error) === 'ENOENT';

function tempName(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(8));
  return `.tmp_${[...bytes].map((b) => b.toString(16).padStart(2, '0')).join('')}`;
}

async function subdirectories(dir: string): Promise<string[]> {
  try {
    const entries = await readdir(dir, { withFileTypes: true });
    return entries.filter((e) => e.isDirectory() && !e.name.startsWith('.')).map((e) => e.name);
  } catch (error) {
    if (isMissing(error)) return [];
    throw error;
  }
}

async function fileNames(dir: string): Promise<string[]> {
  try {
    return await readdir(dir);
  } catch (error) {
    if (isMissing(error)) return [];
    throw error;
  }
}

export async function createFileStore(options: FileStoreOptions = {}): Promise<FileKvStore> {
  const root = options.root ?? join(tmpdir(), 'dynamo_store_kv');
  const ttlMs = Math.max(options.ttlMs ?? 10_000, 1000);
  const heartbeatMs = options.heartbeatMs ?? Math.max(ttlMs / 3, 1000);
  const pollMs = options.pollMs ?? 1000;
  const useFsWatch = options.fsWatch ?? true;
  const now = options.now ?? Date.now;
  const logger = options.logger;
  const instanceId = normalizeInstanceId(options.instanceId ?? randomInstanceId());

  /** Keys this process wrote (and keeps alive), with their values. */
  const owned = new Map<string, string>();
  const toucher = options.toucher;
  const ownedChanged = () => toucher?.set([...owned.keys()].map((key) => locate(key).path));
  const closed = new AbortController();
  await mkdir(root, { recursive: true });

  function locate(key: string): { bucket: string; dir: string; path: string } {
    const parts = key.split('/');
    if (parts.length < 3 || parts[0] === '' || parts[1] === '') {
      throw new KvStoreError(`Invalid key "${key}": expected "{bucket}/{kind}/{rest}"`);
    }
    const bucket = `${parts[0]}/${parts[1]}`;
    const dir = join(root, parts[0] as string, parts[1] as string);
    return { bucket, dir, path: join(dir, encodeFileName(parts.slice(2).join('/'))) };
  }

  /** Bucket names (`v1/instances`) that can hold keys under `prefix`. */
  async function bucketsFor(prefix: string): Promise<string[]> {
    const parts = prefix === '' ? [] : prefix.replace(/\/+$/, '').split('/');
    if (parts.length >= 2) return [`${parts[0]}/${parts[1]}`];
    const tops = parts.length === 1 ? [parts[0] as string] : await subdirectories(root);
    const out: string[] = [];
    for (const top of tops) {
      for (const sub of await subdirectories(join(root, top))) out.push(`${top}/${sub}`);
    }
    return out;
  }

  async function scanBucket(bucket: string, prefix: string): Promise<KvEntry[]> {
    const dir = join(root, ...bucket.split('/'));
    const reads = (await fileNames(dir)).map(async (name) => {
      const rest = decodeFileName(name);
      if (rest === undefined) return undefined;
      const key = `${bucket}/${rest}`;
      if (!matchesPrefix(key, prefix)) return undefined;
      try {
        return { key, value: await readFile(join(dir, name), 'utf8') };
      } catch (error) {
        if (isMissing(error)) return undefined;
        throw error;
      }
    });
    return (await Promise.all(reads)).filter((e): e is KvEntry => e !== undefined);
  }

  async function scan(prefix: string): Promise<KvEntry[]> {
    const out: KvEntry[] = [];
    for (const bucket of await bucketsFor(prefix)) out.push(...await scanBucket(bucket, prefix));
    return out.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  }

  /** Writes `value` to a temp file, then `commit(temp, final)`; the temp file is always removed. */
  async function writeVia(
    key: string,
    value: string,
    commit: (temp: string, path: string) => Promise<void>,
  ): Promise<void> {
    const { dir, path } = locate(key);
    await mkdir(dir, { recursive: true });
    const temp = join(dir, tempName());
    await writeFile(temp, value);
    try {
      await commit(temp, path);
    } finally {
      await unlink(temp).catch(() => {});
    }
  }

  // Mutations of own keys run one at a time, so a heartbeat never resurrects a deleted key.
  let lock: Promise<unknown> = Promise.resolve();
  function exclusive<T>(fn: () => Promise<T>): Promise<T> {
    const run = lock.then(fn);
    lock = run.catch(() => {});
    return run;
  }
  const live = () => {
    if (closed.signal.aborted) throw new KvStoreError('The file store is closed');
  };

  let beating: Promise<void> | undefined;
  function heartbeat(): Promise<void> {
    beating ??= beat().finally(() => (beating = undefined));
    return beating;
  }
  async function beat(): Promise<void> {
    const time = new Date(now());
    const mine = new Set<string>();
    await exclusive(async () => {
      for (const [key, value] of owned) {
        const { path } = locate(key);
        mine.add(path);
        try {
          await utimes(path, time, time);
        } catch (error) {
          if (!isMissing(error)) throw error;
          logger?.warn('Re-writing an own discovery file that was deleted', { key });
          await writeVia(key, value, (temp, p) => rename(temp, p));
          await utimes(path, time, time);
        }
      }
    });
    for (const bucket of await bucketsFor('')) {
      const dir = join(root, ...bucket.split('/'));
      for (const name of await fileNames(dir)) {
        const path = join(dir, name);
        if (mine.has(path)) continue;
        try {
          if (time.getTime() - (await stat(path)).mtimeMs > ttlMs) {
            await unlink(path);
            logger?.info('Removed an expired discovery file', { bucket, name });
          }
        } catch (error) {
          if (!isMissing(error)) throw error;
        }
      }
    }
  }
  const timer = setInterval(() => {
    heartbeat().catch((error) => logger?.warn('Discovery file heartbeat failed', { error }));
  }, heartbeatMs);

  async function produce(prefix: string, channel: Channel<KvWatchEvent>, stop: AbortSignal) {
    const known = new Map<string, string>();
    const watchers = new Map<string, FSWatcher>();
    let chain: Promise<void> = Promise.resolve();
    const serial = (fn: () => Promise<void>) => {
      chain = chain.then(() => (stop.aborted ? undefined : fn())).catch((error) => {
        logger?.warn('Discovery file watch failed to read', { prefix, error });
      });
    };

    const follow = (bucket: string) => {
      if (!useFsWatch || watchers.has(bucket) || stop.aborted) return;
      try {
        const watcher = watchDirectory(join(root, ...bucket.split('/')), (_type, name) => {
          if (name === null || name === undefined) serial(rescan);
          else serial(() => recheck(bucket, String(name)));
        });
        watcher.on('error', () => {
          watcher.close();
          watchers.delete(bucket);
        });
        watchers.set(bucket, watcher);
      } catch (error) {
        logger?.debug('fs.watch unavailable; relying on rescans', { bucket, error });
      }
    };

    const recheck = async (bucket: string, name: string) => {
      const rest = decodeFileName(name);
      if (rest === undefined) return;
      const key = `${bucket}/${rest}`;
      if (!matchesPrefix(key, prefix)) return;
      try {
        const value = await readFile(join(root, ...bucket.split('/'), name), 'utf8');
        if (known.get(key) === value) return;
        known.set(key, value);
        channel.push({ kind: 'put', key, value });
      } catch (error) {
        if (!isMissing(error)) throw error;
        if (known.delete(key)) channel.push({ kind: 'delete', key });
      }
    };

    const rescan = async () => {
      const buckets = await bucketsFor(prefix);
      buckets.forEach(follow);
      const entries = await scan(prefix);
      const present = new Set<string>();
      for (const { key, value } of entries) {
        present.add(key);
        if (known.get(key) === value) continue;
        known.set(key, value);
        channel.push({ kind: 'put', key, value });
      }
      for (const key of [...known.keys()]) {
        if (present.has(key)) continue;
        known.delete(key);
        channel.push({ kind: 'delete', key });
      }
    };

    const parts = prefix.split('/').filter((p) => p !== '');
    if (parts.length >= 2) {
      await mkdir(join(root, parts[0] as string, parts[1] as string), { recursive: true });
    }
    // Notifications first, then the listing, so nothing written in between is missed.
    (await bucketsFor(prefix)).forEach(follow);
    const initial = await scan(prefix);
    for (const { key, value } of initial) known.set(key, value);
    channel.push({ kind: 'snapshot', entries: initial });

    const poll = setInterval(() => serial(rescan), pollMs);
    await new Promise<void>((resolve) => {
      if (stop.aborted) resolve();
      else stop.addEventListener('abort', () => resolve(), { once: true });
    });
    clearInterval(poll);
    for (const watcher of watchers.values()) watcher.close();
    await chain;
  }

  return {
    instanceId,
    root,
    heartbeat,

    async create(key, value) {
      live();
      return await exclusive(async () => {
        let created = false;
        await writeVia(key, value, async (temp, path) => {
          try {
            await link(temp, path);
            created = true;
          } catch (error) {
            if (errorCode(error) !== 'EEXIST') throw error;
          }
        });
        if (created) {
          owned.set(key, value);
          ownedChanged();
        }
        return created;
      });
    },

    async put(key, value) {
      live();
      return await exclusive(async () => {
        await writeVia(key, value, (temp, path) => rename(temp, path));
        owned.set(key, value);
        ownedChanged();
      });
    },

    async delete(key) {
      live();
      return await exclusive(async () => {
        owned.delete(key);
        ownedChanged();
        await unlink(locate(key).path).catch((error) => {
          if (!isMissing(error)) throw error;
        });
      });
    },

    list: scan,

    watch(prefix, signal) {
      return streamFrom<KvWatchEvent>(
        AbortSignal.any([signal, closed.signal]),
        (channel, stop) => produce(prefix, channel, stop),
      );
    },

    async close() {
      if (closed.signal.aborted) return;
      closed.abort();
      clearInterval(timer);
      await toucher?.close().catch(() => {});
      await beating?.catch(() => {});
      await exclusive(async () => {
        for (const key of owned.keys()) await unlink(locate(key).path).catch(() => {});
        owned.clear();
      });
    },
  };
}
