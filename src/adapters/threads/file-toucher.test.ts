import assert from 'node:assert/strict';
import { mkdtemp, readdir, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { createFileStore } from '../discovery/file.ts';
import { waitFor } from '../../../tests/helpers/wait.ts';
import { createSharedFileToucher } from './file-toucher.ts';

async function onlyFile(dir: string): Promise<string> {
  for (const entry of await readdir(dir, { withFileTypes: true, recursive: true })) {
    if (entry.isFile()) return join(entry.parentPath, entry.name);
  }
  throw new Error(`no file under ${dir}`);
}

test("the file toucher keeps a store's files fresh while the event loop is blocked", async () => {
  const root = await mkdtemp(join(tmpdir(), 'switchboard-toucher-'));
  const shared = createSharedFileToucher(100);
  // The store's own heartbeat is parked: only the thread can touch the file.
  const store = await createFileStore({
    root,
    ttlMs: 1000,
    heartbeatMs: 600_000,
    toucher: shared.forStore(),
  });
  try {
    await store.put('v1/instances/ns/backend/generate/1', '{}');
    const path = await onlyFile(root);
    const written = (await stat(path)).mtimeMs;
    // Wait until the thread has the path (its first touch moves the mtime).
    await waitFor(async () => (await stat(path)).mtimeMs > written, { what: 'a first touch' });
    // Block this thread for longer than the TTL: a heartbeat on the event loop could not run.
    const blockedAt = Date.now();
    while (Date.now() - blockedAt < 1500) { /* busy */ }
    const touched = (await stat(path)).mtimeMs;
    assert.ok(
      touched > blockedAt + 500,
      `touched ${
        touched - blockedAt
      } ms into a 1500 ms block; a sweeper with a 1000 ms TTL would keep it`,
    );
  } finally {
    await store.close();
    await rm(root, { recursive: true, force: true });
  }
});

test('a store without a toucher leaves its file untouched while its heartbeat is parked', async () => {
  const root = await mkdtemp(join(tmpdir(), 'switchboard-toucher-'));
  const store = await createFileStore({ root, ttlMs: 1000, heartbeatMs: 600_000 });
  try {
    await store.put('v1/instances/ns/backend/generate/1', '{}');
    const path = await onlyFile(root);
    const written = (await stat(path)).mtimeMs;
    const blockedAt = Date.now();
    while (Date.now() - blockedAt < 300) { /* busy */ }
    assert.equal((await stat(path)).mtimeMs, written);
  } finally {
    await store.close();
    await rm(root, { recursive: true, force: true });
  }
});
