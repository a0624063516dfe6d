/**
 * Infrastructure faults under load, with real processes on the current runtime: a frontend and
 * mocker workers on a private etcd (or the shared one) and a private nats-server, which the tests
 * freeze, kill and restart while a steady loop of streaming requests runs.
 *
 * - etcd frozen, then killed and restarted: the frontend keeps serving the workers it knows
 *   (0 failed requests) and resyncs when etcd returns (a worker started afterwards is served).
 * - nats-server killed and restarted (request plane and event plane on NATS, KV routing): no
 *   request hangs; each one in flight at the kill completes, migrates, or fails with a clear
 *   OpenAI-shaped error (503, or one SSE error event); new requests succeed again; KV events
 *   flow again and a repeated prompt hits the worker holding its blocks.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { createNatsEventPlane } from '../../src/adapters/events/nats.ts';
import { createNatsPlaneClient, createNatsPlaneServer } from '../../src/adapters/plane/nats.ts';
import { PlaneError } from '../../src/core/plane/errors.ts';
import type { EventEnvelope } from '../../src/core/events/types.ts';
import { currentRuntime, startFrontend, startMocker } from '../helpers/process.ts';
import { startPrivateEtcd } from '../helpers/etcd.ts';
import { startPrivateNats } from '../helpers/nats.ts';
import { metricValue } from '../helpers/stack.ts';
import { waitFor } from '../helpers/wait.ts';
import {
  instanceIds,
  randomNamespace,
  sameIds,
  SEEN_MS,
  START_MS,
  tracker,
} from '../e2e/_workers.ts';

const ETCD = ['--discovery-backend', 'etcd'];
const MODEL = 'chaos-model';
/** Streams the load loop keeps open at once (2 shared cores: keep it modest). */
const CONCURRENCY = 8;
const MAX_TOKENS = 24;
/** A request still open after this long counts as hung. */
const HANG_MS = 20_000;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** How many JSON log lines with this `msg` a process has written to stderr so far. */
function logCount(stderr: string, msg: string): number {
  return stderr.split('\n').filter((line) => {
    try {
      return line.startsWith('{') && (JSON.parse(line) as { msg?: unknown }).msg === msg;
    } catch {
      return false;
    }
  }).length;
}

type Kind = 'ok' | 'clear_error' | 'unclear' | 'hung';

interface Outcome {
  kind: Kind;
  status: number;
  /** What went wrong, for the assertion messages. */
  detail: string;
  startedAt: number;
  endedAt: number;
}

/** Whether `value` is OpenAI's error shape `{"error":{"message","type",...}}`. */
function isOpenAIError(value: unknown): boolean {
  const error = (value as { error?: { message?: unknown; type?: unknown } } | null)?.error;
  return typeof error?.message === 'string' && error.message !== '' &&
    typeof error.type === 'string';
}

/** One streaming chat completion, classified. */
async function streamOnce(url: string, prompt: string): Promise<Outcome> {
  const startedAt = Date.now();
  const done = (kind: Kind, status: number, detail: string): Outcome => ({
    kind,
    status,
    detail,
    startedAt,
    endedAt: Date.now(),
  });
  const signal = AbortSignal.timeout(HANG_MS);
  let status = 0;
  try {
    const response = await fetch(`${url}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        model: MODEL,
        messages: [{ role: 'user', content: prompt }],
        max_tokens: MAX_TOKENS,
        stream: true,
        stream_options: { include_usage: true },
      }),
      signal,
    });
    status = response.status;
    const text = await response.text();
    if (status !== 200) {
      let body: unknown;
      try {
        body = JSON.parse(text);
      } catch {
        body = undefined;
      }
      const clear = status === 503 && isOpenAIError(body);
      return done(clear ? 'clear_error' : 'unclear', status, text.slice(0, 300));
    }
    const data = text.split('\n').filter((l) => l.startsWith('data: ')).map((l) => l.slice(6));
    const last = data[data.length - 1];
    if (last === '[DONE]') {
      const chunks = data.slice(0, -1).map((d) =>
        JSON.parse(d) as {
          choices?: { delta?: { content?: string } }[];
          usage?: { completion_tokens?: number } | null;
        }
      );
      // The mocker sends one token per chunk: a lost frame shows as a missing chunk.
      const tokens = chunks.filter((c) => c.choices?.[0]?.delta?.content !== undefined).length;
      const usage = chunks.find((c) => c.usage)?.usage?.completion_tokens;
      return tokens === MAX_TOKENS && usage === MAX_TOKENS
        ? done('ok', status, '')
        : done('unclear', status, `${tokens} tokens streamed, usage says ${usage}`);
    }
    // Failed after the first byte: exactly one error event ends the stream.
    let lastJson: unknown;
    try {
      lastJson = last === undefined ? undefined : JSON.parse(last);
    } catch {
      lastJson = undefined;
    }
    return isOpenAIError(lastJson)
      ? done('clear_error', status, last ?? '')
      : done('unclear', status, `stream ended without [DONE] or an error: ${text.slice(-300)}`);
  } catch (error) {
    if (signal.aborted) return done('hung', status, `no end within ${HANG_MS} ms`);
    return done('unclear', status, `fetch failed: ${(error as Error).message}`);
  }
}

/** `CONCURRENCY` loops of streaming requests until `stop()`; every outcome is recorded. */
function startLoad(url: string) {
  const outcomes: Outcome[] = [];
  let stopped = false;
  let n = 0;
  const loops = Array.from({ length: CONCURRENCY }, async (_, loop) => {
    while (!stopped) {
      // Distinct prompts, so KV events keep flowing; a shared head, so some blocks repeat.
      const prompt = `load loop ${loop}: ${
        Array.from({ length: 40 }, (_, i) => `w${(n + i) % 97}`).join(' ')
      } #${n++}`;
      const outcome = await streamOnce(url, prompt);
      outcomes.push(outcome);
      // A loop that keeps failing at once must not spin.
      if (outcome.kind !== 'ok') await sleep(100);
    }
  });
  return {
    outcomes,
    /** Stops starting requests and waits for the open ones. */
    async stop(): Promise<Outcome[]> {
      stopped = true;
      await Promise.all(loops);
      return outcomes;
    },
  };
}

const summary = (outcomes: readonly Outcome[]) => {
  const counts: Record<Kind, number> = { ok: 0, clear_error: 0, unclear: 0, hung: 0 };
  for (const o of outcomes) counts[o.kind]++;
  return counts;
};

/** A metric of the frontend at `url`, summed over the series matching `labels`; 0 if none. */
async function metric(url: string, name: string, labels: Record<string, string> = {}) {
  const value = metricValue(await (await fetch(`${url}/metrics`)).text(), name, labels);
  return Number.isNaN(value) ? 0 : value;
}

describe(`infrastructure faults under load on ${currentRuntime()}`, () => {
  test('NATS adapters across a nats-server restart: an open stream fails at once as "disconnected"; a request and an event sent while it is down arrive after it is back', async () => {
    const nats = await startPrivateNats();
    const servers = nats.wsUrl;
    const client = createNatsPlaneClient({ servers });
    const server = createNatsPlaneServer({ servers });
    const events = createNatsEventPlane({ servers, onError: () => {} });
    try {
      const contexts: AbortSignal[] = [];
      const address = await server.serve(
        { namespace: 'chaos', component: 'backend', endpoint: 'generate' },
        '1a2b3c',
        async function* (body, context) {
          contexts.push(context.signal);
          yield body;
          // `{"hold":true}` streams until cancelled.
          if ((body as { hold?: boolean }).hold) {
            await new Promise((_, reject) =>
              context.signal.addEventListener('abort', () => reject(context.signal.reason))
            );
          }
        },
      );
      const request = (body: unknown) => ({ id: crypto.randomUUID(), headers: {}, body });
      const seen: EventEnvelope[] = [];
      events.subscribe('chaos.events', (event) => void seen.push(event));
      await events.flush();

      const open = (await client.send(address, request({ hold: true }), {
        signal: new AbortController().signal,
      }))[Symbol.asyncIterator]();
      assert.deepEqual((await open.next()).value, { hold: true });
      const cut = open.next();
      cut.catch(() => {});

      await nats.kill();
      // The open stream fails now, not at the next liveness probe; the worker stops its handler.
      const error = await Promise.race([
        cut.then(() => undefined, (e: unknown) => e),
        new Promise((resolve) => setTimeout(() => resolve('still open after 3 s'), 3000)),
      ]);
      assert.ok(error instanceof PlaneError, String(error));
      assert.equal(error.kind, 'disconnected');
      await waitFor(() => contexts[0]?.aborted, { what: 'the handler to be cancelled' });

      // Sent while NATS is down: held until it is back, not lost.
      const late = client.send(address, request({ n: 7 }), {
        signal: new AbortController().signal,
      });
      late.catch(() => {});
      await events.publish('chaos.events', { n: 8 });
      await sleep(500);
      await nats.start();

      const items: unknown[] = [];
      for await (const item of await late) items.push(item);
      assert.deepEqual(items, [{ n: 7 }]);
      await waitFor(() => seen.some((e) => (e.payload as { n?: number }).n === 8), {
        what: 'the event published while NATS was down',
      });
    } finally {
      await client.close();
      await server.close();
      await events.close();
      await nats.stop();
    }
  });

  test('etcd frozen, then killed and restarted under load: 0 failed requests; a worker started after it returns is served', async () => {
    const t = tracker();
    try {
      const etcd = await startPrivateEtcd();
      t.defer(() => etcd.stop());
      const ns = randomNamespace();
      // A freeze longer than a lease's TTL expires the lease when etcd wakes (its clock moved on):
      // keep the TTL well above the freeze.
      const env = { ETCD_ENDPOINTS: etcd.url, ETCD_LEASE_TTL: '15' };
      const worker = (component: string) =>
        startMocker([
          ...ETCD,
          '--event-plane',
          'zmq',
          '--endpoint',
          `dyn://${ns}.${component}.generate`,
          '--model-name',
          MODEL,
          '--num-workers',
          '2',
          '--speedup-ratio',
          '4',
        ], { env, timeoutMs: START_MS });
      const [frontend, a] = await t.all(
        [
          startFrontend([...ETCD, '--event-plane', 'zmq', '--namespace', ns], {
            env,
            timeoutMs: START_MS,
          }),
          worker('backend'),
        ] as const,
      );
      await waitFor(async () => sameIds(await instanceIds(frontend.url), a.workers), {
        timeoutMs: SEEN_MS,
        intervalMs: 50,
        what: 'both workers in /health',
      });

      const load = startLoad(frontend.url);
      await waitFor(() => load.outcomes.length >= CONCURRENCY, {
        timeoutMs: 30_000,
        intervalMs: 50,
        what: 'the load loop under way',
      });
      // Frozen past the store's 5 s request deadline: frozen until a worker's keepalive has
      // timed out (and its watches were reset with it).
      const keepaliveFailed = 'etcd keepalive failed';
      etcd.pause();
      await waitFor(() => logCount(a.stderr(), keepaliveFailed) > 0, {
        timeoutMs: 30_000,
        intervalMs: 100,
        what: 'a keepalive to time out while etcd is frozen',
      });
      etcd.resume();
      const resumedAt = Date.now();
      await waitFor(
        () => load.outcomes.filter((o) => o.startedAt > resumedAt).length >= CONCURRENCY,
        { timeoutMs: 30_000, intervalMs: 50, what: 'requests after etcd woke' },
      );
      // Gone: connections refused until a keepalive has failed on it, then back on the same data.
      const failedBefore = logCount(a.stderr(), keepaliveFailed);
      await etcd.kill();
      await waitFor(() => logCount(a.stderr(), keepaliveFailed) > failedBefore, {
        timeoutMs: 30_000,
        intervalMs: 100,
        what: 'a keepalive to fail while etcd is down',
      });
      await etcd.restart();
      const restartedAt = Date.now();

      // Resynced: a worker that registers after the restart is seen and served.
      const b = await t.add(worker('late'));
      await waitFor(
        async () => sameIds(await instanceIds(frontend.url), [...a.workers, ...b.workers]),
        { timeoutMs: SEEN_MS, intervalMs: 100, what: 'the old and the new workers in /health' },
      );
      await waitFor(
        () => load.outcomes.filter((o) => o.startedAt > restartedAt).length >= CONCURRENCY * 3,
        { timeoutMs: 30_000, intervalMs: 100, what: 'requests after the restart' },
      );
      const outcomes = await load.stop();
      const counts = summary(outcomes);
      const failed = outcomes.filter((o) => o.kind !== 'ok');
      assert.equal(
        failed.length,
        0,
        `${JSON.stringify(counts)}; first failures: ${JSON.stringify(failed.slice(0, 5))}`,
      );
      assert.ok(counts.ok > CONCURRENCY * 4, JSON.stringify(counts));
    } finally {
      await t.cleanup();
    }
  });

  // With migration the streams cut by the drop continue on a worker (migrations counted); without,
  // none migrates and they fail clearly.
  for (const migrationLimit of [3, 0]) {
    test(`nats-server killed and restarted under load (nats planes, --migration-limit ${migrationLimit}): no hangs, clear errors, new requests succeed, the KV index recovers`, async () => {
      const t = tracker();
      try {
        const nats = await startPrivateNats();
        t.defer(() => nats.stop());
        const ns = randomNamespace();
        // Streams the outage breaks inhibit their worker: keep that short, and wait it out before
        // asserting where a cached prompt is routed (an inhibited worker is rightly skipped).
        const inhibitMs = 1_000;
        const env = { NATS_WS_SERVER: nats.wsUrl };
        const planes = ['--event-plane', 'nats'];
        const [frontend, mocker] = await t.all(
          [
            startFrontend([
              ...ETCD,
              ...planes,
              '--namespace',
              ns,
              '--router-mode',
              'kv',
              '--migration-limit',
              String(migrationLimit),
            ], {
              env: { ...env, DYN_RUNTIME_INHIBITED_DURATION_SECS: String(inhibitMs / 1000) },
              timeoutMs: START_MS,
            }),
            startMocker([
              ...ETCD,
              ...planes,
              '--request-plane',
              'nats',
              '--endpoint',
              `dyn://${ns}.backend.generate`,
              '--model-name',
              MODEL,
              '--num-workers',
              '2',
              '--block-size',
              '16',
              '--speedup-ratio',
              '4',
            ], { env, timeoutMs: START_MS }),
          ] as const,
        );
        await waitFor(async () => sameIds(await instanceIds(frontend.url), mocker.workers), {
          timeoutMs: SEEN_MS,
          intervalMs: 50,
          what: 'both workers in /health',
        });

        const stored = () =>
          metric(frontend.url, 'dynamo_component_kv_cache_events_applied', {
            event_type: 'stored',
            status: 'ok',
          });
        const hits = () => metric(frontend.url, 'dynamo_component_router_kv_hit_rate_sum');
        const complete = async (prompt: string) => {
          const response = await fetch(`${frontend.url}/v1/completions`, {
            method: 'POST',
            headers: { 'content-type': 'application/json' },
            body: JSON.stringify({ model: MODEL, prompt, max_tokens: 2 }),
            signal: AbortSignal.timeout(HANG_MS),
          });
          return { status: response.status, text: await response.text() };
        };
        /** Sends `prompt` once, waits until its blocks are indexed, then measures repeats. */
        const repeatHits = async (prompt: string, what: string) => {
          const before = await stored();
          const first = await complete(prompt);
          assert.equal(first.status, 200, first.text);
          await waitFor(async () => await stored() > before, {
            timeoutMs: 15_000,
            intervalMs: 100,
            what: `stored KV events applied (${what})`,
          });
          const base = await hits();
          for (let i = 0; i < 3; i++) {
            const again = await complete(prompt);
            assert.equal(again.status, 200, again.text);
          }
          return await hits() - base;
        };
        const promptOf = (tag: string) =>
          Array.from({ length: 200 }, (_, i) => `${tag}${i}`).join(' ');

        // The index learns from events before the fault.
        assert.ok(await repeatHits(promptOf('before'), 'before the restart') > 2.5);

        const load = startLoad(frontend.url);
        await waitFor(() => load.outcomes.length >= CONCURRENCY, {
          timeoutMs: 30_000,
          intervalMs: 50,
          what: 'the load loop under way',
        });
        const migrations = () => metric(frontend.url, 'dynamo_frontend_model_migration_total');
        assert.equal(await migrations(), 0, 'no migration before the fault');
        await sleep(500);
        await nats.kill();
        const killedAt = Date.now();
        // Down until the drop has shown: with a limit, a cut stream is migrated (counted before
        // it is sent again, which waits for NATS); without one, a cut stream fails clearly.
        await waitFor(
          async () =>
            migrationLimit > 0
              ? await migrations() > 0
              : load.outcomes.some((o) =>
                o.kind === 'clear_error' && o.startedAt < killedAt && o.endedAt >= killedAt
              ),
          {
            timeoutMs: 30_000,
            intervalMs: 100,
            what: migrationLimit > 0
              ? 'a stream cut by the drop to migrate'
              : 'a stream cut by the drop to fail clearly',
          },
        );
        await nats.start();
        const restartedAt = Date.now();

        // New requests succeed again within a bounded time.
        await waitFor(
          () => load.outcomes.some((o) => o.startedAt > restartedAt && o.kind === 'ok'),
          {
            timeoutMs: 30_000,
            intervalMs: 100,
            what: 'a request started after the restart to succeed',
          },
        );
        const recoveredAt = Date.now();
        await waitFor(
          () => load.outcomes.filter((o) => o.startedAt > recoveredAt).length >= CONCURRENCY * 2,
          { timeoutMs: 30_000, intervalMs: 100, what: 'requests after the recovery' },
        );
        const outcomes = await load.stop();
        const counts = summary(outcomes);
        const bad = outcomes.filter((o) => o.kind === 'hung' || o.kind === 'unclear');
        assert.equal(
          bad.length,
          0,
          `${JSON.stringify(counts)}; hung or unclear: ${JSON.stringify(bad.slice(0, 5))}`,
        );
        // Failures belong to the outage: requests that started once it was over all succeed.
        const late = outcomes.filter((o) => o.startedAt > recoveredAt);
        assert.deepEqual(
          late.filter((o) => o.kind !== 'ok'),
          [],
          `requests after the recovery; ${JSON.stringify(counts)}`,
        );
        const inFlight = outcomes.filter((o) => o.startedAt < killedAt && o.endedAt > killedAt);
        const migrated = await migrations();
        assert.ok(inFlight.length > 0, 'requests were in flight at the kill');
        console.log(
          `nats restart: ${JSON.stringify(counts)}; in flight at the kill: ${
            JSON.stringify(summary(inFlight))
          }; migrations ${migrated}; a request succeeded ${
            recoveredAt - restartedAt
          } ms after the restart`,
        );
        // What the limit changes: migrations counted with one, none at all without.
        if (migrationLimit > 0) {
          assert.ok(migrated > 0, 'streams cut by the drop were migrated');
          assert.ok(migrated <= outcomes.length * migrationLimit, `${migrated} migrations`);
        } else {
          assert.equal(migrated, 0, '--migration-limit 0 migrates nothing');
          assert.ok(
            inFlight.some((o) => o.kind === 'clear_error'),
            `a stream cut by the drop failed clearly: ${JSON.stringify(summary(inFlight))}`,
          );
        }

        const lastFailure = Math.max(
          0,
          ...outcomes.filter((o) => o.kind !== 'ok').map((o) => o.endedAt),
        );
        await sleep(lastFailure + inhibitMs + 250 - Date.now());
        // KV events flow again: a new prompt's blocks are indexed and its repeats hit the cache.
        assert.ok(await repeatHits(promptOf('after'), 'after the restart') > 2.5);
        // ...and the blocks learned before the fault still route to the worker holding them.
        const base = await hits();
        const again = await complete(promptOf('before'));
        assert.equal(again.status, 200, again.text);
        assert.ok(await hits() - base > 0.8, 'the prompt from before the restart hits');
        const warnings = await metric(
          frontend.url,
          'dynamo_component_kv_cache_event_warnings',
          { kind: 'gap_recovered' },
        );
        console.log(`nats restart: gap_recovered ${warnings}`);
      } finally {
        await t.cleanup();
      }
    });
  }
});
