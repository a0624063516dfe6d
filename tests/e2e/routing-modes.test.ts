/**
 * The routing modes Dynamo added after the seed, end to end with two simulated workers:
 * `least-loaded` and `power-of-two-choices` keep away from a worker busy with a long stream;
 * session affinity (`x-dynamo-session-id`, `nvext.session_control`) keeps a session on its worker
 * in round-robin and in kv mode (over the KV router's own preference), and moves it when its
 * worker is gone.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { currentRuntime } from '../helpers/process.ts';
import { MODEL, type Stack, startStack } from '../helpers/stack.ts';
import { sessionKey } from '../../src/core/router/sessions.ts';
import { waitFor } from '../helpers/wait.ts';

const CHAT = '/v1/chat/completions';
const COMPLETIONS = '/v1/completions';
const messages = [{ role: 'user', content: 'route me' }];

async function withStack(
  args: string[],
  run: (stack: Stack) => Promise<void>,
  mocker: { speedup?: number; args?: string[] } = {},
) {
  const stack = await startStack({ frontendArgs: args, mockers: [{ workers: 2, ...mocker }] });
  try {
    await run(stack);
  } finally {
    await stack.close();
  }
}

const served = (stack: Stack) => stack.workers.map((w) => w.servedRequests());

async function chat(stack: Stack, extra: Record<string, unknown> = {}, headers = {}) {
  const res = await stack.post(CHAT, { model: MODEL, messages, max_tokens: 2, ...extra }, headers);
  const text = await res.text();
  assert.equal(res.status, 200, text);
}

describe(`load-aware routing modes on ${currentRuntime()}`, () => {
  for (const mode of ['least-loaded', 'power-of-two']) {
    test(`${mode}: requests avoid the worker busy with a long stream`, async () => {
      // Real-time decoding (speedup 1): the long stream runs for seconds.
      await withStack(['--router-mode', mode], async (stack) => {
        const controller = new AbortController();
        const long = await fetch(`${stack.url}${CHAT}`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({
            model: MODEL,
            messages,
            max_tokens: 5000,
            ignore_eos: true,
            stream: true,
          }),
          signal: controller.signal,
        });
        assert.equal(long.status, 200);
        const reader = long.body!.getReader();
        await reader.read(); // the stream is under way
        const busy = served(stack).indexOf(1);
        assert.ok(busy >= 0, `one worker has the long stream: ${served(stack)}`);
        for (let i = 0; i < 4; i++) await chat(stack);
        const after = served(stack);
        assert.equal(after[busy], 1, `nothing more on the busy worker: ${after}`);
        assert.equal(after[1 - busy], 4, `all on the free worker: ${after}`);
        controller.abort();
        await reader.cancel().catch(() => {});
        // A cancelled stream no longer counts as load.
        await waitFor(
          () => stack.frontend.core.load.of(stack.workers[busy]!.runtime.instanceId).requests === 0,
          {
            timeoutMs: 10_000,
            what: 'the cancelled stream to be released',
          },
        );
      }, { speedup: 1 });
    });
  }
});

describe(`session affinity on ${currentRuntime()}`, () => {
  test('round-robin: each session stays on one worker; it moves when that worker is gone', async () => {
    await withStack(['--router-mode', 'round-robin'], async (stack) => {
      for (let i = 0; i < 5; i++) await chat(stack, {}, { 'x-dynamo-session-id': 'one' });
      const one = served(stack).indexOf(5);
      assert.ok(one >= 0, `session "one" on a single worker: ${served(stack)}`);
      for (let i = 0; i < 3; i++) {
        await chat(stack, { nvext: { session_control: { session_id: 'two', action: 'open' } } });
      }
      // Round-robin placed the second session on the other worker, and it stayed there.
      assert.equal(served(stack)[1 - one], 3, `${served(stack)}`);

      // Session "one"'s worker leaves: its next request goes to the other worker.
      const gone = stack.workers[one]!;
      await gone.runtime.close();
      await waitFor(() => stack.frontend.core.models.instances(MODEL).length === 1, {
        timeoutMs: 10_000,
        what: 'the closed worker to leave discovery',
      });
      await chat(stack, {}, { 'x-dynamo-session-id': 'one' });
      assert.equal(served(stack)[1 - one], 4);
      assert.equal(
        stack.frontend.core.sessions.lookup(sessionKey(MODEL, 'decode', 'one')),
        stack.workers[1 - one]!.runtime.instanceId,
      );
    });
  });

  test('bad session_control is a 400 naming the field', async () => {
    await withStack([], async (stack) => {
      const res = await stack.post(CHAT, {
        model: MODEL,
        messages,
        nvext: { session_control: { session_id: '' } },
      });
      assert.equal(res.status, 400);
      const body = await res.json() as { error: { param: string; message: string } };
      assert.match(body.error.param, /^nvext/);
      assert.match(body.error.message, /session_id|must not be empty/);
    });
  });

  test('kv: a session stays on its worker even where the KV router would go elsewhere', async () => {
    await withStack(['--router-mode', 'kv'], async (stack) => {
      const ids = stack.workers.map((w) => w.runtime.instanceId);
      const complete = async (prompt: number[], extra: Record<string, unknown> = {}) => {
        const res = await stack.post(COMPLETIONS, {
          model: MODEL,
          prompt,
          max_tokens: 1,
          ...extra,
        });
        assert.equal(res.status, 200, await res.text());
      };
      const tokens = (from: number) => Array.from({ length: 160 }, (_, i) => from + i);
      const session = { nvext: { session_control: { session_id: 'kv-session' } } };
      // The session starts on some worker X.
      await complete(tokens(1000), session);
      const x = served(stack).indexOf(1);
      assert.ok(x >= 0, `${served(stack)}`);
      // The other worker Y caches prompt P (pinned there), and the KV router learns it.
      const p = tokens(5000);
      await complete(p, { nvext: { backend_instance_id: `0x${ids[1 - x]}` } });
      const tree = (i: number) =>
        stack.frontend.core.kv?.indexerOf(MODEL)?.treeSize(BigInt(`0x${ids[i]}`), 0) ?? 0;
      await waitFor(() => tree(1 - x) >= 10, { timeoutMs: 10_000, what: 'P in the KV index' });
      // Without a session, P goes to Y (where it is cached)...
      await complete(p);
      assert.equal(served(stack)[1 - x], 2, `${served(stack)}`);
      // ...with the session, P stays on X.
      await complete(p, session);
      assert.deepEqual(served(stack)[x], 2, `${served(stack)}`);
      assert.deepEqual(served(stack)[1 - x], 2, `${served(stack)}`);
    }, { args: ['--block-size', '16'] });
  });
});
