/**
 * The process as the rest of the code sees it: argv, env, stderr, files, signals, exit. node:*
 * modules work on Node, Bun and Deno alike, so one implementation serves all three.
 */
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import process from 'node:process';
import { setImmediate } from 'node:timers';
import { detectRuntime } from './serve.ts';

export function argv(): string[] {
  return process.argv.slice(2);
}

export function env(): Record<string, string | undefined> {
  return { ...process.env };
}

let pendingStderr = '';
let flushScheduled = false;

function flushStderr(): void {
  flushScheduled = false;
  if (pendingStderr === '') return;
  const text = pendingStderr;
  pendingStderr = '';
  process.stderr.write(text);
}

// Whatever is still buffered goes out when the process ends, however it ends.
process.on('exit', flushStderr);

/**
 * Writes to stderr, batching the lines of one turn of the event loop into one write: stderr to
 * a file or pipe is a synchronous write per call on Node, which one access-log line per request
 * would otherwise pay every time.
 */
export function writeStderr(text: string): void {
  pendingStderr += text;
  if (pendingStderr.length > 1 << 16) return flushStderr();
  if (!flushScheduled) {
    flushScheduled = true;
    setImmediate(flushStderr);
  }
}

export function writeStdout(text: string): void {
  process.stdout.write(text);
}

export function readTextFile(path: string): Promise<string> {
  return readFile(path, 'utf8');
}

/** Writes a file, creating its parent directories. */
export async function writeTextFile(path: string, text: string): Promise<void> {
  await mkdir(dirname(path), { recursive: true });
  await writeFile(path, text, 'utf8');
}

/** Calls `handler` on the first SIGTERM or SIGINT; a second one exits at once. */
export function onShutdownSignal(handler: (signal: string) => void): void {
  let seen = false;
  for (const signal of ['SIGTERM', 'SIGINT'] as const) {
    process.on(signal, () => {
      if (seen) process.exit(130);
      seen = true;
      handler(signal);
    });
  }
}

export function exit(code: number): never {
  return process.exit(code);
}

export function runtimeInfo(): Record<string, string> {
  const versions = process.versions as Record<string, string | undefined>;
  const name = detectRuntime();
  return {
    runtime: name,
    version: versions[name] ?? process.version,
    platform: process.platform,
    arch: process.arch,
  };
}
