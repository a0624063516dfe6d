/**
 * Load shedding end to end: with a busy threshold in force, a worker whose published load (or
 * the KV router's own accounting) exceeds it is skipped; when every worker is busy the request
 * is refused with the overload status, OpenAI's error shape and `Retry-After`, and counted;
 * `POST /busy_threshold` changes it at run time.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { currentRuntime } from '../helpers/process.ts';
import { metricValue, MODEL, type Stack, startStack } from '../helpers/stack.ts';
import { waitFor } from '../helpers/wait.ts';

const COMPLETIONS = '/v1/completions';

/** A slow worker (prefill and decode 20x slower than real time) holds its blocks a while. */
const SLOW = { workers: 1, speedup: 0.05, args: ['--block-size', '16'] };

/**
 * Starts a long streaming request on the first (slow) worker and waits until its first token
 * arrived.
 */
async function occupy(stack: Stack) {
  const res = await stack.post(COMPLETIONS, {
    model: MODEL,
    prompt: Array.from({ length: 100 }, (_, i) => `busy${i}`).join(' '),
    max_tokens: 20,
    ignore_eos: true,
    stream: true,
    nvext: { backend_instance_id: `0x${stack.workers[0]!.runtime.instanceId}` },
  });
  assert.equal(res.status, 200);
  const reader = res.body!.getReader();
  await reader.read();
  return {
    async finish() {
      while (!(await reader.read()).done) { /* drain */ }
    },
  };
}

const ask = (stack: Stack) =>
  stack.post(COMPLETIONS, { model: MODEL, prompt: 'hello', max_tokens: 1 });

describe(`load shedding on ${currentRuntime()}`, () => {
  for (const mode of ['round-robin', 'kv']) {
    test(`${mode}: every worker over the decode-blocks threshold -> overload status, Retry-After`, async () => {
      const stack = await startStack({
        frontendArgs: ['--router-mode', mode, '--active-decode-blocks-threshold', '0'],
        env: { DYN_HTTP_OVERLOAD_STATUS_CODE: '529' },
        mockers: [SLOW],
      });
      try {
        const long = await occupy(stack);
        // The worker reports its blocks in use (and in kv mode the router counts them).
        const refused = await waitFor(async () => {
          const res = await ask(stack);
          if (res.status === 200) {
            await res.text();
            return undefined;
          }
          return res;
        }, { timeoutMs: 10_000, intervalMs: 50, what: 'a refusal' });
        assert.equal(refused.status, 529);
        assert.equal(refused.headers.get('retry-after'), '1');
        const body = await refused.json() as { error: { type: string; code: string } };
        assert.equal(body.error.code, 'overloaded');
        assert.ok(metricValue(await stack.metrics(), 'dynamo_frontend_model_rejection_total') >= 1);
        assert.ok(
          !stack.logs.some((l) => l.level === 'error'),
          'a refusal is load shedding working, not an error to log',
        );

        // Raised at run time, the threshold lets requests through again.
        const post = await stack.post('/busy_threshold', {
          model: MODEL,
          active_decode_blocks_threshold: 1,
        });
        assert.equal(post.status, 200);
        const res = await ask(stack);
        assert.equal(res.status, 200, await res.text());
        await long.finish();
      } finally {
        await stack.close();
      }
    });
  }

  test('a busy worker is skipped while another is free', async () => {
    const stack = await startStack({
      frontendArgs: ['--router-mode', 'round-robin'],
      mockers: [SLOW, { workers: 1, args: ['--block-size', '16'] }],
    });
    try {
      const long = await occupy(stack);
      const busyIndex = 0;
      // Thresholds set at run time start the load feed.
      const post = await stack.post('/busy_threshold', {
        model: MODEL,
        active_decode_blocks_threshold: 0,
      });
      assert.equal(post.status, 200);
      await waitFor(
        () =>
          stack.frontend.core.busy.isBusy(
            stack.frontend.core.models.get(MODEL)!,
            stack.frontend.core.models.instances(MODEL).find((i) =>
              i.instanceId === stack.workers[busyIndex]!.runtime.instanceId
            )!,
          ),
        { timeoutMs: 10_000, what: 'the slow worker to report itself busy' },
      );
      const before = stack.workers.map((w) => w.servedRequests());
      for (let i = 0; i < 4; i++) {
        const res = await ask(stack);
        assert.equal(res.status, 200, await res.text());
      }
      const after = stack.workers.map((w) => w.servedRequests());
      assert.equal(after[busyIndex], before[busyIndex], 'the busy worker got nothing');
      assert.equal(after[1 - busyIndex]! - before[1 - busyIndex]!, 4);
      await long.finish();
    } finally {
      await stack.close();
    }
  });
});
