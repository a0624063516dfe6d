/**
 * Entry of the file-discovery keep-alive thread (see `file-toucher.ts`): sets the mtime of the
 * files it is given every interval, so a process whose event loop is busy (engines stepping,
 * events publishing) keeps its discovery files fresh, as Dynamo's dedicated heartbeat thread does.
 * It never creates a file: a vanished one is re-written by the store's own heartbeat.
 */
import { utimesSync } from 'node:fs';
import { parentPort } from 'node:worker_threads';

const port = parentPort;
if (!port) throw new Error('file-toucher-worker.ts must run in a worker thread');

let paths: string[] = [];
let timer: ReturnType<typeof setInterval> | undefined;

const touch = () => {
  const now = new Date();
  for (const path of paths) {
    try {
      utimesSync(path, now, now);
    } catch {
      // Gone (deleted by its owner, or swept): the store's heartbeat re-writes its own files.
    }
  }
};

port.on('message', (message: { paths?: string[]; intervalMs?: number }) => {
  if (message.paths) paths = message.paths;
  if (message.intervalMs !== undefined) {
    clearInterval(timer);
    timer = setInterval(touch, message.intervalMs);
  }
});
