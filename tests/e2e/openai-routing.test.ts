/**
 * Routing modes end to end with two simulated workers: round-robin spreads requests, direct
 * needs a worker id (body or header) and honours it, random serves.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { parseExactJson } from '../../src/core/json.ts';
import { currentRuntime } from '../helpers/process.ts';
import { errorBody, MODEL, type Stack, startStack } from '../helpers/stack.ts';

const CHAT = '/v1/chat/completions';
const messages = [{ role: 'user', content: 'route me' }];

async function withStack(mode: string, run: (stack: Stack) => Promise<void>) {
  const stack = await startStack({
    frontendArgs: ['--router-mode', mode],
    mockers: [{ workers: 2 }],
  });
  try {
    await run(stack);
  } finally {
    await stack.close();
  }
}

async function chat(stack: Stack, extra: Record<string, unknown> = {}, headers = {}) {
  const res = await stack.post(CHAT, { model: MODEL, messages, max_tokens: 2, ...extra }, headers);
  const text = await res.text();
  return { status: res.status, text };
}

const served = (stack: Stack) => stack.workers.map((w) => w.servedRequests());

describe(`routing modes on ${currentRuntime()}`, () => {
  test('round-robin spreads 10 requests over both workers', async () => {
    await withStack('round-robin', async (stack) => {
      assert.deepEqual(served(stack), [0, 0]);
      for (let i = 0; i < 10; i++) assert.equal((await chat(stack)).status, 200);
      assert.deepEqual(served(stack), [5, 5]);
    });
  });

  test('direct needs nvext.backend_instance_id, refuses unknown ids, honours valid ones', async () => {
    await withStack('direct', async (stack) => {
      const missing = await stack.post(CHAT, { model: MODEL, messages });
      assert.equal(missing.status, 400);
      const error = (await errorBody(missing)).error;
      assert.equal(error.param, 'nvext.backend_instance_id');
      assert.match(error.message, /backend_instance_id/);

      const unknown = await stack.post(CHAT, {
        model: MODEL,
        messages,
        nvext: { backend_instance_id: '0x1234' },
      });
      assert.equal(unknown.status, 404);
      assert.equal((await errorBody(unknown)).error.param, 'nvext.backend_instance_id');

      const health = await (await fetch(`${stack.url}/health`)).json() as {
        instances: Array<{ instance_id_hex: string; endpoint: string }>;
      };
      const ids = health.instances.filter((i) => i.endpoint === 'generate').map((i) =>
        i.instance_id_hex
      );
      assert.equal(ids.length, 2);
      const [first, second] = stack.workers;
      assert.ok(first && second);
      const firstId = first.runtime.instanceId;
      assert.ok(ids.includes(firstId), `/health lists ${firstId}`);
      for (let i = 0; i < 3; i++) {
        const r = await chat(stack, { nvext: { backend_instance_id: `0x${firstId}` } });
        assert.equal(r.status, 200, r.text);
      }
      assert.deepEqual(served(stack), [3, 0]);

      // The header, as hex or decimal, wins like Dynamo's.
      const secondId = second.runtime.instanceId;
      const viaHeader = await chat(stack, {}, { 'x-dynamo-worker-instance-id': `0x${secondId}` });
      assert.equal(viaHeader.status, 200, viaHeader.text);
      const decimal = BigInt(`0x${secondId}`).toString();
      const viaDecimal = await chat(stack, {}, { 'x-dynamo-worker-instance-id': decimal });
      assert.equal(viaDecimal.status, 200, viaDecimal.text);
      assert.deepEqual(served(stack), [3, 2]);

      const badHeader = await stack.post(CHAT, { model: MODEL, messages }, {
        'x-dynamo-worker-instance-id': 'not-a-number',
      });
      assert.equal(badHeader.status, 400);
      assert.equal((await errorBody(badHeader)).error.param, 'x-dynamo-worker-instance-id');
    });
  });

  test('random serves every request', async () => {
    await withStack('random', async (stack) => {
      for (let i = 0; i < 8; i++) assert.equal((await chat(stack)).status, 200);
      assert.equal(served(stack).reduce((a, b) => a + b, 0), 8);
    });
  });

  test('nvext.extra_fields ["worker_id"] names the worker that served, exactly, streamed and not', async () => {
    await withStack('round-robin', async (stack) => {
      // u64 ids: compared as exact integers (a double rounds most of them).
      const ids = stack.workers.map((w) => BigInt(`0x${w.runtime.instanceId}`));
      const idOf = (body: unknown) =>
        (body as { nvext?: { worker_id?: { decode_worker_id?: unknown } } }).nvext?.worker_id
          ?.decode_worker_id;
      const ask = { nvext: { extra_fields: ['worker_id'] } };
      const seen = new Set<bigint>();
      for (let i = 0; i < 2; i++) {
        const res = await stack.post(CHAT, { model: MODEL, messages, max_tokens: 2, ...ask });
        assert.equal(res.status, 200);
        const id = idOf(parseExactJson(await res.text()));
        const exact = typeof id === 'bigint' ? id : BigInt(id as number);
        assert.ok(ids.includes(exact), `worker_id ${id} is one of ${ids}`);
        seen.add(exact);
      }
      // Round-robin: the two requests went to both workers, and the field says so.
      assert.equal(seen.size, 2);

      const streamed = await stack.post('/v1/completions', {
        model: MODEL,
        prompt: 'route me',
        max_tokens: 2,
        stream: true,
        ...ask,
      });
      const text = await streamed.text();
      const finals = text.split('\n').filter((l) => l.startsWith('data: {'))
        .map((l) => parseExactJson(l.slice(6))).filter((c) => idOf(c) !== undefined);
      assert.equal(finals.length, 1, 'the finishing chunk carries nvext');
      const streamedId = idOf(finals[0]);
      assert.ok(
        ids.includes(typeof streamedId === 'bigint' ? streamedId : BigInt(streamedId as number)),
        `streamed worker_id ${streamedId}`,
      );

      // Not asked for: no nvext in the answer.
      const plain = await stack.post(CHAT, { model: MODEL, messages, max_tokens: 2 });
      assert.equal((await plain.json() as { nvext?: unknown }).nvext, undefined);
    });
  });
});
