/**
 * Starts a worker thread whose entry is a `.ts` file, on every runtime: Bun, Deno and a Node that
 * strips types load it directly; Node 20 boots it through tsx in an eval'd module.
 */
import process from 'node:process';
import { Worker, type WorkerOptions } from 'node:worker_threads';
import { detectRuntime } from './serve.ts';

export function spawnTsWorker(entry: URL, options: WorkerOptions = {}): Worker {
  const features = process.features as { typescript?: string };
  if (detectRuntime() !== 'node' || features.typescript) return new Worker(entry, options);
  const tsx = import.meta.resolve('tsx/esm/api');
  const boot = `import(${JSON.stringify(tsx)}).then(({ register }) => { register(); ` +
    `return import(${JSON.stringify(entry.href)}); });`;
  return new Worker(boot, { ...options, eval: true, execArgv: [] });
}
