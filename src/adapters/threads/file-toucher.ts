/**
 * A thread that keeps this process's file-discovery files fresh (`FileStoreOptions.toucher`),
 * off the event loop: under load the main thread's heartbeat can run late by more than the TTL,
 * and other processes would then sweep a live worker's registration. One thread serves every
 * store of the process (a mocker runs one store per simulated worker); it starts with the first
 * store and ends with the last.
 */
import type { Worker } from 'node:worker_threads';
import type { FileToucher } from '../discovery/file.ts';
import { spawnTsWorker } from '../../runtime/ts-worker.ts';

const ENTRY = new URL('./file-toucher-worker.ts', import.meta.url);

export interface SharedFileToucher {
  /** A handle for one store; its `close()` drops that store's files. */
  forStore(): FileToucher;
}

export function createSharedFileToucher(intervalMs: number): SharedFileToucher {
  let worker: Worker | undefined;
  const handles = new Map<object, string[]>();
  const send = () => worker?.postMessage({ paths: [...handles.values()].flat() });
  return {
    forStore() {
      const key = {};
      handles.set(key, []);
      if (!worker) {
        worker = spawnTsWorker(ENTRY);
        // Never what keeps the process alive.
        worker.unref();
        worker.on('error', () => {});
        worker.postMessage({ intervalMs });
      }
      return {
        set(paths) {
          handles.set(key, paths);
          send();
        },
        async close() {
          if (!handles.delete(key)) return;
          if (handles.size > 0) return send();
          const w = worker;
          worker = undefined;
          await w?.terminate();
        },
      };
    },
  };
}
