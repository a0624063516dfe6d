/** The discovery contract on the file backend, plus its naming, TTL sweep and rescan fallback. */
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readdir, rm, stat, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import {
  createFileStore,
  encodeFileName,
  type FileStoreOptions,
} from '../../src/adapters/discovery/file.ts';
import type { KvWatchEvent } from '../../src/core/discovery/types.ts';
import { follow, waitFor } from '../helpers/wait.ts';
import { discoveryContract, trackHandles } from './discovery.contract.ts';

/** A temporary root, and stores on it that are all closed (and the root removed) at the end. */
async function withRoot(
  body: (
    open: (options?: FileStoreOptions) => ReturnType<typeof createFileStore>,
    root: string,
  ) => Promise<void>,
): Promise<void> {
  const root = await mkdtemp(join(tmpdir(), 'switchboard-file-kv-'));
  const handles = trackHandles();
  try {
    await body(async (options = {}) => {
      const store = await createFileStore({ root, pollMs: 200, ...options });
      handles.add(store);
      return store;
    }, root);
  } finally {
    await handles.closeAll();
    await rm(root, { recursive: true, force: true });
  }
}

discoveryContract('file', async () => {
  const root = await mkdtemp(join(tmpdir(), 'switchboard-file-kv-'));
  const handles = trackHandles();
  return {
    connect: async () => handles.add(await createFileStore({ root, pollMs: 200 })),
    close: async () => {
      await handles.closeAll();
      await rm(root, { recursive: true, force: true });
    },
  };
});

const KEY = 'v1/instances/dynamo/backend/generate/1a2b3c';
const FILE = ['v1', 'instances', 'dynamo%2Fbackend%2Fgenerate%2F1a2b3c'] as const;

describe('file store', () => {
  test('names a key file by percent-encoding it below the bucket', () =>
    withRoot(async (open, root) => {
      assert.equal(
        encodeFileName('dynamo/back-end/gen_1/1a'),
        'dynamo%2Fback%2Dend%2Fgen%5F1%2F1a',
      );
      const store = await open();
      await store.put(KEY, '{"v":1}');
      assert.deepEqual(await readdir(join(root, 'v1', 'instances')), [FILE[2]]);
    }));

  test('ignores temp files and names that do not decode', () =>
    withRoot(async (open, root) => {
      const dir = join(root, 'v1', 'instances');
      await mkdir(dir, { recursive: true });
      await writeFile(join(dir, '.tmp_0123456789abcdef'), '{"half":');
      await writeFile(join(dir, 'bad%ZZname'), '{}');
      const store = await open();
      assert.deepEqual(await store.list('v1'), []);
    }));

  test('exactly one of 16 concurrent creators of a key wins', () =>
    withRoot(async (open) => {
      const stores = await Promise.all(Array.from({ length: 16 }, () => open()));
      const results = await Promise.all(stores.map((s, i) => s.create(KEY, `{"i":${i}}`)));
      assert.equal(results.filter(Boolean).length, 1);
      assert.equal((await stores[0]?.list(KEY))?.length, 1);
    }));

  test('deletes the stale file of a dead process at the next sweep, and watchers see it', () =>
    withRoot(async (open, root) => {
      const dir = join(root, ...FILE.slice(0, 2));
      await mkdir(dir, { recursive: true });
      const path = join(dir, FILE[2]);
      await writeFile(path, '{"dead":true}');
      const longAgo = new Date(Date.now() - 60_000);
      await utimes(path, longAgo, longAgo);
      const watcher = await open({ heartbeatMs: 60_000 });
      const stop = new AbortController();
      try {
        const watched = follow(watcher.watch('v1/instances', stop.signal));
        await watched.until((e) => e[0]?.kind === 'snapshot' && e[0].entries.length === 1);
        await watcher.heartbeat();
        assert.deepEqual(await readdir(dir), []);
        await watched.until((e) => e.some((x) => x.kind === 'delete' && x.key === KEY));
      } finally {
        stop.abort();
      }
    }));

  test('a live process touches its files on a timer', () =>
    withRoot(async (open, root) => {
      const worker = await open({ heartbeatMs: 20 });
      await worker.put(KEY, '{"v":1}');
      const path = join(root, ...FILE);
      const longAgo = new Date(Date.now() - 60_000);
      await utimes(path, longAgo, longAgo);
      await waitFor(async () => (await stat(path)).mtimeMs > longAgo.getTime() + 30_000, {
        what: 'the heartbeat to touch the file',
      });
    }));

  test('a live process re-writes an own file another process swept', () =>
    withRoot(async (open) => {
      const worker = await open({ heartbeatMs: 60_000 });
      await worker.put(KEY, '{"v":1}');
      // A process whose clock runs a minute ahead sees every other file as expired.
      const skewed = await open({ heartbeatMs: 60_000, now: () => Date.now() + 60_000 });
      await skewed.heartbeat();
      assert.deepEqual(await skewed.list(KEY), []);
      await worker.heartbeat();
      assert.deepEqual(await skewed.list(KEY), [{ key: KEY, value: '{"v":1}' }]);
      // Freshly touched, the file survives a sweeper with a correct clock.
      const sweeper = await open({ heartbeatMs: 60_000 });
      await sweeper.heartbeat();
      assert.deepEqual(await sweeper.list(KEY), [{ key: KEY, value: '{"v":1}' }]);
    }));

  test('without fs.watch, rescans still report external writes and deletes', () =>
    withRoot(async (open, root) => {
      const store = await open({ fsWatch: false, pollMs: 20 });
      const stop = new AbortController();
      try {
        const watched = follow<KvWatchEvent>(store.watch('v1/instances', stop.signal));
        await watched.until((e) => e.length > 0);
        const path = join(root, ...FILE);
        await writeFile(path, '{"external":1}');
        await watched.until((e) =>
          e.some((x) => x.kind === 'put' && x.key === KEY && x.value === '{"external":1}')
        );
        await rm(path);
        await watched.until((e) => e.some((x) => x.kind === 'delete' && x.key === KEY));
      } finally {
        stop.abort();
      }
    }));

  test('with fs.watch, an external write is seen without waiting for a rescan', () =>
    withRoot(async (open, root) => {
      const store = await open({ pollMs: 60_000 });
      const stop = new AbortController();
      try {
        const watched = follow<KvWatchEvent>(store.watch('v1/instances', stop.signal));
        await watched.until((e) => e.length > 0);
        await writeFile(join(root, ...FILE), '{"external":2}');
        await watched.until((e) => e.some((x) => x.kind === 'put' && x.key === KEY));
      } finally {
        stop.abort();
      }
    }));
});
