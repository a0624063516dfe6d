/**
 * The contract every `ResponseStore` adapter passes (`mem`, `nats`): what `put()` stored comes
 * back from `get()` whole, from a second handle on the same store too (replicas), `delete()`
 * says whether it removed something, unknown and malformed ids are simply absent, and a store
 * full to its byte cap drops its oldest records instead of refusing new ones.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { ResponseObject } from '../../src/core/api/openai/schemas.ts';
import { parseResponsesRequest } from '../../src/core/api/openai/validate.ts';
import { buildResponse } from '../../src/core/api/responses/_response.ts';
import type { ResponseStore, StoredResponse } from '../../src/core/api/responses/store.ts';

export interface ResponseStoreHarness {
  /** A handle on the store; calls with the same `shared` key reach the same records. */
  open(options: { shared: string; maxBytes: number }): Promise<ResponseStore>;
  close(): Promise<void>;
}

export function storedRecord(id: string, text = 'hello'): StoredResponse {
  const response: ResponseObject = buildResponse(
    parseResponsesRequest({ model: 'm', input: text }),
    { id, model: 'm', status: 'completed', createdAt: 1, completedAt: 2, output: [] },
  );
  return {
    response,
    input_items: [{
      type: 'message',
      id: 'msg_1',
      role: 'user',
      content: [{ type: 'input_text', text }],
    }],
    context: [{ type: 'message', role: 'user', content: text }],
  };
}

export function responseStoreContract(name: string, harness: () => Promise<ResponseStoreHarness>) {
  describe(`ResponseStore contract: ${name}`, () => {
    let h: ResponseStoreHarness;
    const unique = () => `t${crypto.randomUUID().replaceAll('-', '').slice(0, 12)}`;
    before(async () => {
      h = await harness();
    });
    after(async () => {
      await h.close();
    });

    test('get() returns the whole record put() stored; unknown ids are undefined', async () => {
      const store = await h.open({ shared: unique(), maxBytes: 1 << 20 });
      const record = storedRecord('resp_abc', 'Größe ✓');
      await store.put(record);
      assert.deepEqual(await store.get('resp_abc'), record);
      assert.equal(await store.get('resp_other'), undefined);
      assert.equal(await store.get('not a valid key!'), undefined);
    });

    test('a second handle on the same store sees the records (replicas share them)', async () => {
      const shared = unique();
      const one = await h.open({ shared, maxBytes: 1 << 20 });
      const two = await h.open({ shared, maxBytes: 1 << 20 });
      await one.put(storedRecord('resp_1'));
      assert.equal((await two.get('resp_1'))?.response.id, 'resp_1');
      assert.equal(await two.delete('resp_1'), true);
      assert.equal(await one.get('resp_1'), undefined);
    });

    test('delete() is true once, then false; put() again stores anew', async () => {
      const store = await h.open({ shared: unique(), maxBytes: 1 << 20 });
      await store.put(storedRecord('resp_d'));
      assert.equal(await store.delete('resp_d'), true);
      assert.equal(await store.delete('resp_d'), false);
      assert.equal(await store.delete('never_stored'), false);
      await store.put(storedRecord('resp_d', 'again'));
      assert.equal((await store.get('resp_d'))?.context.length, 1);
    });

    test('past the byte cap the oldest records go, and new ones are still stored', async () => {
      const size = new TextEncoder().encode(JSON.stringify(storedRecord('resp_00'))).length;
      const store = await h.open({ shared: unique(), maxBytes: size * 6 });
      for (let i = 0; i < 12; i++) {
        await store.put(storedRecord(`resp_${String(i).padStart(2, '0')}`));
      }
      assert.equal(await store.get('resp_00'), undefined, 'the oldest is gone');
      assert.equal((await store.get('resp_11'))?.response.id, 'resp_11', 'the newest is there');
    });
  });
}
