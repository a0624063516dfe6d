/**
 * Graceful shutdown under load, with real processes on file discovery (no shared service: the
 * mockers publish events on ZMQ, which nobody needs here):
 *
 * - SIGTERM to the frontend: every stream it has admitted finishes with all its tokens and
 *   `[DONE]`, new requests are refused (503 or connection refused), and it exits 0;
 * - SIGTERM to a worker: it leaves discovery, its streams finish on it (migration is off, so a
 *   cut stream would fail), requests that still reach it are refused and retried on the other
 *   worker, and none fails.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  currentRuntime,
  type RunningMockerProcess,
  type RunningServer,
  startFrontend,
  startMocker,
} from '../helpers/process.ts';
import { sseDataOf } from '../helpers/sse.ts';
import { waitFor } from '../helpers/wait.ts';
import { chat, instanceIds, sameIds, SEEN_MS, START_MS, tracker } from '../e2e/_workers.ts';

const FILE = ['--discovery-backend', 'file'];
const MODEL = 'draining';
const STREAMS = 16;
/**
 * With the engine at half speed, long enough that streams are mid-way when the signal goes
 * (checked, not assumed).
 */
const MAX_TOKENS = 150;
/** The drain windows: long, so a slow machine does not cut a stream (the test waits less). */
const GRACE_SECS = '120';

interface StreamResult {
  status: number;
  /** Saw `data: [DONE]`. */
  done: boolean;
  /** Content chunks received. */
  chunks: number;
  /** `usage.completion_tokens` of the final chunk. */
  completionTokens: number;
  error?: string;
}

/** A streaming chat completion read to its end; `onChunk` sees every content chunk. */
async function stream(url: string, i: number, onChunk: () => void): Promise<StreamResult> {
  const result: StreamResult = { status: 0, done: false, chunks: 0, completionTokens: 0 };
  try {
    const response = await fetch(`${url}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        model: MODEL,
        messages: [{ role: 'user', content: `stream ${i}: tell me a long story` }],
        max_tokens: MAX_TOKENS,
        ignore_eos: true,
        stream: true,
        stream_options: { include_usage: true },
      }),
      signal: AbortSignal.timeout(180_000),
    });
    result.status = response.status;
    if (response.status !== 200 || !response.body) {
      result.error = await response.text();
      return result;
    }
    for await (const data of sseDataOf(response.body)) {
      if (data === '[DONE]') {
        result.done = true;
        continue;
      }
      const chunk = JSON.parse(data) as {
        choices?: unknown[];
        usage?: { completion_tokens: number } | null;
        error?: { message: string };
      };
      if (chunk.error) result.error = chunk.error.message;
      if (chunk.choices?.length) {
        result.chunks++;
        onChunk();
      }
      if (chunk.usage) result.completionTokens = chunk.usage.completion_tokens;
    }
  } catch (error) {
    result.error = `${error instanceof Error ? error.message : error}`;
  }
  return result;
}

/** `STREAMS` concurrent streams, and a way to wait until every one has its first token. */
function load(url: string) {
  const progress = Array.from({ length: STREAMS }, () => 0);
  const results = Promise.all(progress.map((_, i) => stream(url, i, () => progress[i]!++)));
  return {
    progress,
    results,
    /** Resolves once every stream has received a token (each is admitted and mid-way). */
    underWay: () =>
      waitFor(() => progress.every((n) => n > 0), {
        timeoutMs: 60_000,
        intervalMs: 20,
        what: `all ${STREAMS} streams to be under way`,
      }),
  };
}

function assertAllComplete(results: StreamResult[]): void {
  const failed = results.filter((r) =>
    r.status !== 200 || !r.done || r.error !== undefined || r.completionTokens !== MAX_TOKENS
  );
  assert.deepEqual(failed, [], 'every stream completed with all its tokens and [DONE]');
}

/** A frontend and two one-worker mocker processes on one file-discovery directory. */
async function stack(t: ReturnType<typeof tracker>) {
  const root = await t.dir('file-kv');
  const env = {
    DYN_FILE_KV: root,
    DYN_HTTP_GRACEFUL_SHUTDOWN_TIMEOUT_SECS: GRACE_SECS,
    DYN_WORKER_GRACEFUL_SHUTDOWN_TIMEOUT: GRACE_SECS,
  };
  const mocker = () =>
    startMocker(
      [...FILE, '--event-plane', 'zmq', '--model-name', MODEL, '--speedup-ratio', '0.5'],
      {
        env,
        timeoutMs: START_MS,
      },
    );
  const [frontend, a, b] = await t.all(
    [startFrontend(FILE, { env, timeoutMs: START_MS }), mocker(), mocker()] as const,
  );
  const workers: [RunningMockerProcess, RunningMockerProcess] = [a, b];
  await waitFor(
    async () => sameIds(await instanceIds(frontend.url), [...a.workers, ...b.workers]),
    {
      timeoutMs: SEEN_MS,
      intervalMs: 50,
      what: 'both workers in /health',
    },
  );
  return { frontend: frontend as RunningServer, workers };
}

/** True when the frontend refuses `path`: the connection is refused, or it answers 503. */
async function refused(url: string, init?: RequestInit): Promise<boolean> {
  try {
    const response = await fetch(url, init);
    await response.body?.cancel();
    return response.status === 503;
  } catch {
    return true;
  }
}

describe(`graceful shutdown under load on ${currentRuntime()}`, () => {
  test(`SIGTERM to the frontend: all ${STREAMS} in-flight streams complete, new requests are refused, exit 0`, async () => {
    const t = tracker();
    try {
      const { frontend } = await stack(t);
      const running = load(frontend.url);
      await running.underWay();

      frontend.kill('SIGTERM');
      const unfinished = running.progress.filter((n) => n < MAX_TOKENS).length;
      await frontend.waitForLog('shutdown started: draining in-flight requests');
      // Draining: nothing new gets in, whether it is a request or a health probe.
      const request = {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ model: MODEL, messages: [{ role: 'user', content: 'hi' }] }),
      };
      assert.ok(await refused(`${frontend.url}/v1/chat/completions`, request), 'new request');
      assert.ok(await refused(`${frontend.url}/health`), '/health');

      const results = await running.results;
      assert.ok(unfinished > 0, 'some streams were still running when the signal went');
      assertAllComplete(results);
      assert.equal(await frontend.exited, 0);
      assert.doesNotMatch(frontend.stderr(), /drain timeout reached/);
    } finally {
      await t.cleanup();
    }
  });

  test(`SIGTERM to a worker: its streams complete, new requests go to the other, none fails`, async () => {
    const t = tracker();
    try {
      const { frontend, workers: [victim, survivor] } = await stack(t);
      const running = load(frontend.url);
      await running.underWay();

      victim.kill('SIGTERM');
      const unfinished = running.progress.filter((n) => n < MAX_TOKENS).length;
      const started = await victim.waitForLog('shutdown started');
      assert.ok(Number(started.in_flight) > 0, 'the worker had streams in flight');
      await victim.waitForLog('draining in-flight requests');
      // The victim has left discovery; until the frontend notices, what it still sends there is
      // refused and retried on the survivor.
      const wave = await Promise.all(Array.from({ length: 8 }, () => chat(frontend.url, MODEL)));
      assert.deepEqual(
        wave.filter((r) => r.status !== 200 || r.completionTokens !== 4),
        [],
        'requests sent while the worker drains all succeed',
      );

      const results = await running.results;
      assert.ok(unfinished > 0, 'some streams were still running when the signal went');
      assertAllComplete(results);
      assert.equal(await victim.exited, 0);
      assert.match(victim.stderr(), /"msg":"drained"/);
      assert.doesNotMatch(victim.stderr(), /drain timeout reached/);

      // Only the survivor is left, and it serves.
      await waitFor(async () => sameIds(await instanceIds(frontend.url), survivor.workers), {
        timeoutMs: 10_000,
        intervalMs: 50,
        what: 'only the surviving worker in /health',
      });
      const after = await Promise.all(Array.from({ length: 4 }, () => chat(frontend.url, MODEL)));
      assert.deepEqual(after.map((r) => r.status), [200, 200, 200, 200]);
    } finally {
      await t.cleanup();
    }
  });
});
