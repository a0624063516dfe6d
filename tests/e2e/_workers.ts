/**
 * Shared by the workers e2e files: reading a frontend's /health and /v1/models, temp dirs, and a
 * tracker that stops every process a test started, whatever happened.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Spawned } from '../helpers/process.ts';

export const MODEL_PATH = 'tests/fixtures/model';

/**
 * How long a process may take to start: Node (tsx) starting several processes at once on a
 * loaded two-core machine has taken over 10 s.
 */
export const START_MS = 60_000;

/** How long a registered worker may take to show in a frontend's /health (generous too). */
export const SEEN_MS = 30_000;

export interface HealthInstance {
  namespace: string;
  component: string;
  endpoint: string;
  instance_id_hex: string;
  transport: Record<string, unknown>;
}

export interface Health {
  status: string;
  endpoints: string[];
  instances: HealthInstance[];
}

/** GET /health; undefined while the frontend does not answer (so `waitFor` keeps polling). */
export async function health(url: string): Promise<Health | undefined> {
  try {
    return await (await fetch(`${url}/health`)).json() as Health;
  } catch {
    return undefined;
  }
}

/** The ids GET /v1/models lists; undefined while the frontend does not answer. */
export async function modelIds(url: string): Promise<string[] | undefined> {
  try {
    const body = await (await fetch(`${url}/v1/models`)).json() as { data: { id: string }[] };
    return body.data.map((m) => m.id).sort();
  } catch {
    return undefined;
  }
}

/**
 * The `generate` instances /health lists. Workers also serve side endpoints (the KV recovery
 * query, cache control) that /health lists too, as Dynamo's does.
 */
export const generateInstances = (h: Health): HealthInstance[] =>
  h.instances.filter((i) => i.endpoint === 'generate');

/** The `generate` instance ids (hex) /health lists, sorted; undefined while it does not answer. */
export async function instanceIds(url: string): Promise<string[] | undefined> {
  const h = await health(url);
  return h && generateInstances(h).map((i) => i.instance_id_hex).sort();
}

/** Equal as sets. */
export function sameIds(a: readonly string[] | undefined, b: readonly string[]): boolean {
  if (!a || a.length !== b.length) return false;
  const sorted = [...b].sort();
  return [...a].sort().every((id, i) => id === sorted[i]);
}

/** A random namespace, so tests sharing one etcd do not see each other. */
export function randomNamespace(): string {
  return `t${crypto.randomUUID().replaceAll('-', '').slice(0, 12)}`;
}

export function tempDir(prefix: string): Promise<string> {
  return mkdtemp(join(tmpdir(), `switchboard-${prefix}-`));
}

/** Everything a test starts; `cleanup()` (in `finally`) stops what still runs and removes dirs. */
export function tracker() {
  const processes: Spawned[] = [];
  const dirs: string[] = [];
  const cleanups: Array<() => Promise<void>> = [];
  return {
    /** Records a process (or a promise of one) and hands it back. */
    async add<T extends Spawned>(started: T | Promise<T>): Promise<T> {
      const p = await started;
      processes.push(p);
      return p;
    },
    /**
     * Starts several processes at once; records every one that started even when another
     * failed, then rethrows the first failure.
     */
    async all<T extends readonly Spawned[]>(
      starts: { [K in keyof T]: Promise<T[K]> },
    ): Promise<T> {
      const settled = await Promise.allSettled(starts as readonly Promise<Spawned>[]);
      const started: Spawned[] = [];
      for (const s of settled) {
        if (s.status === 'rejected') continue;
        processes.push(s.value);
        started.push(s.value);
      }
      const failed = settled.find((s) => s.status === 'rejected');
      if (failed) throw failed.reason;
      return started as unknown as T;
    },
    async dir(prefix: string): Promise<string> {
      const dir = await tempDir(prefix);
      dirs.push(dir);
      return dir;
    },
    /** Runs `fn` during cleanup, before the temp dirs go. */
    defer(fn: () => Promise<void>) {
      cleanups.push(fn);
    },
    async cleanup(): Promise<void> {
      await Promise.allSettled(processes.map(async (p) => {
        // Graceful first (deregisters from a shared etcd); SIGKILL after 5 s.
        p.kill('SIGTERM');
        const timer = setTimeout(() => p.kill('SIGKILL'), 5_000);
        await p.exited;
        clearTimeout(timer);
      }));
      await Promise.allSettled(cleanups.map((fn) => fn()));
      await Promise.allSettled(dirs.map((d) => rm(d, { recursive: true, force: true })));
    },
  };
}

/** A chat completion through the frontend: the answer's text and token count, or a failure. */
export async function chat(
  url: string,
  model: string,
  maxTokens = 4,
): Promise<{ status: number; text: string; completionTokens: number }> {
  const response = await fetch(`${url}/v1/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({
      model,
      messages: [{ role: 'user', content: 'Hello!' }],
      max_tokens: maxTokens,
    }),
  });
  const body = await response.json() as {
    choices?: { message?: { content?: string } }[];
    usage?: { completion_tokens?: number };
  };
  return {
    status: response.status,
    text: body.choices?.[0]?.message?.content ?? '',
    completionTokens: body.usage?.completion_tokens ?? 0,
  };
}
