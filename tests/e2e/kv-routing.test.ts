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
      const { startFrontend } = await import('../../src/runtime/frontend.ts');
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
