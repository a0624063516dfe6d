/**
 * `--router-mode kv` end to end with simulated workers: prompts go where their prefix is cached
 * (learned from the workers' KV events, or from the router's own decisions with
 * `--no-router-kv-events`), a late frontend loads the workers' blocks from their dumps, router
 * metrics count decisions and applied events, and the reference's decision scenario holds.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { currentRuntime } from '../helpers/process.ts';
import { metricValue, MODEL, type Stack, startStack } from '../helpers/stack.ts';
import { waitFor } from '../helpers/wait.ts';

const CHAT = '/v1/chat/completions';
const COMPLETIONS = '/v1/completions';
/** Mocker KV blocks of 16 tokens, so short prompts span several blocks. */
const MOCKER_ARGS = ['--block-size', '16'];

async function withKvStack(
  frontendArgs: string[],
  run: (stack: Stack) => Promise<void>,
  workers = 2,
) {
  const stack = await startStack({
    frontendArgs: ['--router-mode', 'kv', ...frontendArgs],
    mockers: [{ workers, args: MOCKER_ARGS }],
  });
  try {
    await run(stack);
  } finally {
    await stack.close();
  }
}

/** A prompt of `n` distinct words from a seed: tokenizes to roughly `n` tokens. */
const prompt = (seed: string, n: number) =>
  Array.from({ length: n }, (_, i) => `${seed}${i}`).join(' ');

const served = (stack: Stack) => stack.workers.map((w) => w.servedRequests());
const indexer = (stack: Stack) => stack.frontend.core.kv?.indexerOf(MODEL);

async function complete(stack: Stack, text: string, extra: Record<string, unknown> = {}) {
  const res = await stack.post(COMPLETIONS, {
    model: MODEL,
    prompt: text,
    max_tokens: 2,
    ...extra,
  });
  const body = await res.text();
  assert.equal(res.status, 200, body);
}

/** Waits until the index holds `blocks` blocks over all workers. */
const indexed = (stack: Stack, blocks: number) =>
  waitFor(() => (indexer(stack)?.currentSize() ?? 0) >= blocks, {
    timeoutMs: 10_000,
    what: `${blocks} blocks in the KV index`,
  });

describe(`kv routing on ${currentRuntime()}`, () => {
  test('a repeated prompt follows its cached prefix; a new one goes to the emptier worker', async () => {
    await withKvStack([], async (stack) => {
      const a = prompt('alpha', 200);
      await complete(stack, a);
      const first = served(stack);
      const owner = first.indexOf(1);
      assert.ok(owner >= 0, `one worker served it: ${first}`);
      await indexed(stack, 10);
      for (let i = 0; i < 4; i++) await complete(stack, a);
      assert.equal(served(stack)[owner], 5, `all repeats on worker ${owner}: ${served(stack)}`);
      // Equal load, no overlap: the tie goes to the worker with the smaller tree.
      await complete(stack, prompt('beta', 200));
      assert.equal(served(stack)[1 - owner], 1, `the new prompt went elsewhere: ${served(stack)}`);

      const metrics = await stack.metrics();
      assert.equal(metricValue(metrics, 'dynamo_component_router_requests_total'), 6);
      assert.ok(
        metricValue(metrics, 'dynamo_component_kv_cache_events_applied', {
          event_type: 'stored',
          status: 'ok',
        }) >= 2,
      );
      assert.ok(metrics.includes('dynamo_router_overhead_total_ms_bucket'));
      assert.ok(
        stack.logs.some((l) => l.msg === 'kv routing decision' && typeof l.scores === 'object'),
        'a debug line per decision with the scores',
      );
    });
  });

  test("the reference's decision scenario: forced prefixes, then routed by overlap and tree size", async () => {
    await withKvStack([], async (stack) => {
      // Seven blocks A..G of 16 distinct token ids each.
      const block = (i: number) => Array.from({ length: 16 }, (_, j) => 1000 + i * 16 + j);
      const [A, B, C, D, E, F, G] = Array.from({ length: 7 }, (_, i) => block(i));
      const [a, b] = stack.workers.map((w) => w.runtime.instanceId) as [string, string];
      const tree = (id: string) => indexer(stack)?.treeSize(BigInt(`0x${id}`), 0) ?? 0;
      const send = async (blocks: number[][], pin?: string) => {
        const res = await stack.post(COMPLETIONS, {
          model: MODEL,
          prompt: blocks.flat(),
          max_tokens: 1,
          ...(pin ? { nvext: { backend_instance_id: `0x${pin}` } } : {}),
        });
        assert.equal(res.status, 200, await res.text());
      };
      const until = (id: string, size: number) =>
        waitFor(() => tree(id) === size, { timeoutMs: 10_000, what: `${id} to hold ${size}` });
      await send([A!, B!], a);
      await until(a, 2);
      await send([A!, C!, D!], a);
      await until(a, 4);
      await send([A!, C!, E!], b);
      await until(b, 3);
      const before = served(stack);
      await send([A!, C!, D!, F!]); // prefix 3 on a against 2 on b
      assert.deepEqual(served(stack), [before[0]! + 1, before[1]!]);
      await until(a, 5);
      await send([A!, C!, G!]); // 2 against 2: b's tree (3) is smaller than a's (5)
      assert.deepEqual(served(stack), [before[0]! + 1, before[1]! + 1]);
      await until(b, 4);
      const dump = indexer(stack)!.dump();
      const count = (id: string) => dump.filter((e) => e.worker_id.toString(16) === id).length;
      assert.deepEqual([count(a), count(b)], [5, 4]);
    });
  });

  test('chat prompts sharing a long system prompt stay on one worker', async () => {
    await withKvStack([], async (stack) => {
      const system = prompt('system', 300);
      const ask = async (question: string) => {
        const res = await stack.post(CHAT, {
          model: MODEL,
          max_tokens: 2,
          messages: [{ role: 'system', content: system }, { role: 'user', content: question }],
        });
        assert.equal(res.status, 200, await res.text());
      };
      await ask('first question');
      await indexed(stack, 10);
      for (const q of ['second', 'third', 'fourth']) await ask(q);
      assert.deepEqual([...served(stack)].sort(), [0, 4]);
    });
  });

  test('--router-event-threads 2: events decoded off the main thread, dumps for late joins', async () => {
    await withKvStack(['--router-event-threads', '2'], async (stack) => {
      const a = prompt('threads', 200);
      await complete(stack, a);
      const owner = served(stack).indexOf(1);
      await indexed(stack, 10);
      for (let i = 0; i < 3; i++) await complete(stack, a);
      assert.equal(served(stack)[owner], 4, `all repeats on worker ${owner}: ${served(stack)}`);
      // A worker that joins later is loaded from its dump through the threads too.
      await stack.addMocker({ workers: 1, args: MOCKER_ARGS });
      assert.ok(
        metricValue(await stack.metrics(), 'dynamo_component_kv_cache_events_applied') > 0,
      );
    });
  });

  test('--no-router-kv-events learns from its own decisions', async () => {
    await withKvStack(['--no-router-kv-events'], async (stack) => {
      const a = prompt('gamma', 150);
      await complete(stack, a);
      assert.ok((indexer(stack)?.currentSize() ?? 0) > 0, 'the decision was recorded at once');
      for (let i = 0; i < 3; i++) await complete(stack, a);
      assert.deepEqual([...served(stack)].sort(), [0, 4]);
    });
  });

  test('a frontend that starts after the workers loads their blocks from dumps', async () => {
    await withKvStack([], async (stack) => {
      const a = prompt('delta', 200);
      await complete(stack, a);
      await indexed(stack, 10);
      const owner = served(stack).indexOf(1);
      const size = indexer(stack)!.currentSize();
      // A second frontend on the same bus, started now: it never saw the events.
      const { startFrontend } = await import('../../src/commands/frontend.ts');
      const { resolveConfig } = await import('../../src/core/config.ts');
      const resolved = resolveConfig({
        argv: ['--router-mode', 'kv', '--discovery-backend', 'mem', '--http-host', '127.0.0.1'],
        env: {},
      });
      assert.ok(resolved.ok);
      const late = await startFrontend({ ...resolved.config, httpPort: 0 }, {
        logger: stack.logger,
        local: stack.bus,
      });
      try {
        await waitFor(
          async () => {
            await late.core.models.instances(MODEL);
            const known = late.core.kv?.indexerOf(MODEL)?.currentSize() ?? 0;
            if (known === 0) {
              // The pool exists once the model is routed; routing creates it and its dumps.
              await fetch(`http://127.0.0.1:${late.server.port}${COMPLETIONS}`, {
                method: 'POST',
                headers: { 'content-type': 'application/json' },
                body: JSON.stringify({ model: MODEL, prompt: 'warm up', max_tokens: 1 }),
              });
            }
            return (late.core.kv?.indexerOf(MODEL)?.currentSize() ?? 0) >= size;
          },
          { timeoutMs: 10_000, what: 'the late frontend to load the dumps' },
        );
        const before = served(stack)[owner]!;
        const res = await fetch(`http://127.0.0.1:${late.server.port}${COMPLETIONS}`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ model: MODEL, prompt: a, max_tokens: 1 }),
        });
        assert.equal(res.status, 200, await res.text());
        assert.equal(served(stack)[owner], before + 1, 'routed to the worker holding the prefix');
      } finally {
        await late.shutdown('test over');
      }
    });
  });
});

describe(`kv routing features on ${currentRuntime()}`, () => {
  test('disaggregated serving: prefill on a prefill worker, decode on a decode worker', async () => {
    for (const mode of ['kv', 'round-robin']) {
      const stack = await startStack({
        frontendArgs: ['--router-mode', mode],
        mockers: [
          { workers: 1, args: [...MOCKER_ARGS, '--disaggregation-mode', 'prefill'] },
          { workers: 1, args: [...MOCKER_ARGS, '--disaggregation-mode', 'decode'] },
        ],
      });
      try {
        const [prefillWorker, decodeWorker] = stack.workers;
        const res = await stack.post(COMPLETIONS, {
          model: MODEL,
          prompt: prompt('disagg', 100),
          max_tokens: 5,
        });
        const body = await res.json() as { usage: { completion_tokens: number } };
        assert.equal(res.status, 200, JSON.stringify(body));
        assert.equal(body.usage.completion_tokens, 5, 'all tokens come from the decode worker');
        assert.equal(prefillWorker!.servedRequests(), 1, `${mode}: one prefill`);
        assert.equal(decodeWorker!.servedRequests(), 1, `${mode}: one decode`);
        const models = await (await fetch(`${stack.url}/v1/models`)).json() as {
          data: unknown[];
        };
        assert.equal(models.data.length, 1, 'the prefill pool is not a model of its own');

        // The prefill pool goes away: without --decode-fallback the model answers 503.
        await stack.mockers[0]!.close();
        await waitFor(() => stack.frontend.core.models.prefillInstances(MODEL).length === 0, {
          timeoutMs: 10_000,
          what: 'the prefill worker to leave',
        });
        const refused = await stack.post(COMPLETIONS, { model: MODEL, prompt: 'x', max_tokens: 1 });
        assert.equal(refused.status, 503);
        assert.match((await refused.json()).error.message, /--decode-fallback/);
      } finally {
        await stack.close();
      }
    }
  });

  test('--decode-fallback serves on the decode workers when no prefill worker is left', async () => {
    const stack = await startStack({
      frontendArgs: ['--router-mode', 'kv', '--decode-fallback'],
      mockers: [
        { workers: 1, args: [...MOCKER_ARGS, '--disaggregation-mode', 'prefill'] },
        { workers: 1, args: [...MOCKER_ARGS, '--disaggregation-mode', 'decode'] },
      ],
    });
    try {
      await complete(stack, prompt('fallback', 50));
      await stack.mockers[0]!.close();
      await waitFor(() => stack.frontend.core.models.prefillInstances(MODEL).length === 0, {
        timeoutMs: 10_000,
        what: 'the prefill worker to leave',
      });
      await complete(stack, prompt('fallback', 50));
      assert.equal(stack.workers[1]!.servedRequests(), 2);
    } finally {
      await stack.close();
    }
  });

  test('--enable-cache-control pins the prefix on the worker that served it', async () => {
    await withKvStack(['--enable-cache-control'], async (stack) => {
      await complete(stack, prompt('pin', 100), {
        nvext: { cache_control: { type: 'ephemeral', ttl: '1h' } },
      });
      const pinned = await waitFor(
        () => stack.logs.find((l) => l.msg === 'prefix pinned'),
        { timeoutMs: 5000, what: 'the pin answer' },
      );
      const answer = pinned.answer as { data: { pinned_blocks: number } };
      assert.ok(answer.data.pinned_blocks > 0, JSON.stringify(answer));
    });
  });

  test("--router-replica-sync: a second frontend sees the first one's load", async () => {
    const stack = await startStack({
      frontendArgs: ['--router-mode', 'kv', '--router-replica-sync'],
      mockers: [{ workers: 1, speedup: 1, args: MOCKER_ARGS }],
    });
    const { startFrontend } = await import('../../src/commands/frontend.ts');
    const { resolveConfig } = await import('../../src/core/config.ts');
    const resolved = resolveConfig({
      argv: ['--router-mode', 'kv', '--router-replica-sync', '--discovery-backend', 'mem'],
      env: {},
    });
    assert.ok(resolved.ok);
    const peer = await startFrontend({ ...resolved.config, httpHost: '127.0.0.1', httpPort: 0 }, {
      logger: stack.logger,
      local: stack.bus,
    });
    const peerMetrics = async () =>
      await (await fetch(`http://127.0.0.1:${peer.server.port}/metrics`)).text();
    const decodeBlocks = async () =>
      metricValue(await peerMetrics(), 'dynamo_frontend_worker_active_decode_blocks');
    try {
      // The peer routes once, so it has a pool for the model.
      const warm = await fetch(`http://127.0.0.1:${peer.server.port}${COMPLETIONS}`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ model: MODEL, prompt: 'warm', max_tokens: 1 }),
      });
      assert.equal(warm.status, 200);
      assert.equal(await decodeBlocks(), 0);
      // A long stream on the first frontend...
      const long = await stack.post(COMPLETIONS, {
        model: MODEL,
        prompt: prompt('sync', 100),
        max_tokens: 150,
        stream: true,
      });
      const reader = long.body!.getReader();
      await reader.read();
      // ...shows as load on the peer, and leaves it when done.
      await waitFor(async () => (await decodeBlocks()) > 0, {
        timeoutMs: 10_000,
        what: "the peer to count the first frontend's blocks",
      });
      while (!(await reader.read()).done) { /* drain */ }
      await waitFor(async () => (await decodeBlocks()) === 0, {
        timeoutMs: 10_000,
        what: 'the peer to see the request freed',
      });
    } finally {
      await peer.shutdown('test over');
      await stack.close();
    }
  });

  test('--router-queue-threshold 0 holds requests while every worker is prefilling, then serves all', async () => {
    await withKvStack(['--router-queue-threshold', '0'], async (stack) => {
      const answers = await Promise.all(
        Array.from(
          { length: 8 },
          (_, i) =>
            stack.post(COMPLETIONS, { model: MODEL, prompt: prompt(`q${i}`, 60), max_tokens: 3 }),
        ),
      );
      assert.deepEqual(answers.map((a) => a.status), Array(8).fill(200));
      await Promise.all(answers.map((a) => a.text()));
      assert.equal(served(stack).reduce((a, b) => a + b, 0), 8);
      const pending = metricValue(
        await stack.metrics(),
        'dynamo_frontend_router_queue_pending_requests',
      );
      assert.equal(pending, 0, 'the queue drained');
    });
  });
});
