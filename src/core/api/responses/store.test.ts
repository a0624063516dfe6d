import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { ResponseObject } from '../openai/schemas.ts';
import { parseResponsesRequest } from '../openai/validate.ts';
import { buildResponse } from './_response.ts';
import { createMemResponseStore, type StoredResponse } from './store.ts';

function record(id: string, text = 'x'): StoredResponse {
  const response: ResponseObject = buildResponse(
    parseResponsesRequest({ model: 'm', input: 'x' }),
    {
      id,
      model: 'm',
      status: 'completed',
      createdAt: 1,
      completedAt: 1,
      output: [],
    },
  );
  return {
    response,
    input_items: [{ type: 'message', id: 'msg_1', role: 'user', content: text }],
    context: [],
  };
}

const size = (r: StoredResponse) => new TextEncoder().encode(JSON.stringify(r)).length;

describe('createMemResponseStore()', () => {
  test('get() returns what put() stored, as a copy the caller cannot change', async () => {
    const store = createMemResponseStore({ ttlMs: 1000, maxBytes: 1e6 });
    const original = record('resp_a');
    await store.put(original);
    const got = await store.get('resp_a');
    assert.deepEqual(got, original);
    got!.response.model = 'changed';
    assert.equal((await store.get('resp_a'))?.response.model, 'm');
    assert.equal(await store.get('resp_b'), undefined);
  });

  test('a record expires ttlMs after it was written', async () => {
    let now = 0;
    const store = createMemResponseStore({ ttlMs: 1000, maxBytes: 1e6, now: () => now });
    await store.put(record('resp_a'));
    now = 999;
    assert.ok(await store.get('resp_a'));
    now = 1000;
    assert.equal(await store.get('resp_a'), undefined);
  });

  test('over the byte cap the oldest records are dropped first', async () => {
    const one = size(record('resp_a'));
    const store = createMemResponseStore({ ttlMs: 1000, maxBytes: one * 2 });
    await store.put(record('resp_a'));
    await store.put(record('resp_b'));
    await store.put(record('resp_c'));
    assert.equal(await store.get('resp_a'), undefined);
    assert.ok(await store.get('resp_b'));
    assert.ok(await store.get('resp_c'));
  });

  test('a record bigger than the whole cap is not kept', async () => {
    const store = createMemResponseStore({ ttlMs: 1000, maxBytes: 10 });
    await store.put(record('resp_a'));
    assert.equal(await store.get('resp_a'), undefined);
  });

  test('delete() says whether a record was there', async () => {
    const store = createMemResponseStore({ ttlMs: 1000, maxBytes: 1e6 });
    await store.put(record('resp_a'));
    assert.equal(await store.delete('resp_a'), true);
    assert.equal(await store.delete('resp_a'), false);
    assert.equal(await store.get('resp_a'), undefined);
  });
});
