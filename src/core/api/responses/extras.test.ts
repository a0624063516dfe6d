import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { ValidationError } from '../../errors.ts';
import { decodeCompaction, encodeCompaction } from './compaction.ts';
import { pageInputItems } from './extras.ts';
import { contextOf, inputItemsOf } from './run.ts';
import type { StoredInputItem, StoredResponse } from './store.ts';
import { responsesToChat } from './to-chat.ts';

function counter(): () => string {
  let n = 0;
  return () => `id-${++n}`;
}

const items = (n: number): StoredInputItem[] =>
  Array.from({ length: n }, (_, i) => ({
    type: 'message',
    id: `msg_${i}`,
    role: 'user' as const,
    content: `m${i}`,
  }));

describe('inputItemsOf()', () => {
  test('a string input is one user message with an id and input_text content', () => {
    assert.deepEqual(inputItemsOf('Hi', counter()), [{
      type: 'message',
      id: 'msg_id1',
      role: 'user',
      status: 'completed',
      content: [{ type: 'input_text', text: 'Hi' }],
    }]);
  });

  test('given ids are kept; assistant text becomes output_text; other items get item ids', () => {
    const got = inputItemsOf([
      { type: 'message', id: 'msg_mine', role: 'assistant', content: 'Yo' },
      { type: 'function_call_output', call_id: 'c1', output: '42' },
    ], counter());
    assert.deepEqual(got[0]?.content, [{ type: 'output_text', text: 'Yo' }]);
    assert.equal(got[0]?.id, 'msg_mine');
    assert.equal(got[1]?.id, 'item_id1');
    assert.equal(got[1]?.type, 'function_call_output');
  });
});

describe('contextOf()', () => {
  test('the previous context and output come before the new input', () => {
    const previous = {
      context: items(1),
      response: {
        output: [{
          type: 'message',
          id: 'msg_out',
          role: 'assistant',
          status: 'completed',
          content: [{ type: 'output_text', text: 'papaya', annotations: [], logprobs: [] }],
        }],
      },
    } as unknown as StoredResponse;
    const next = inputItemsOf('What word?', counter());
    const context = contextOf(previous, next);
    assert.deepEqual(context.map((i) => i.id), ['msg_0', 'msg_out', 'msg_id1']);
    const chat = responsesToChat({ model: 'm', input: context });
    assert.deepEqual(chat.messages.map((m) => [m.role, m.content]), [
      ['user', 'm0'],
      ['assistant', 'papaya'],
      ['user', 'What word?'],
    ]);
  });
});

describe('pageInputItems()', () => {
  test('newest first by default, 20 per page, with first_id/last_id/has_more', () => {
    const page = pageInputItems(items(25), {});
    assert.equal(page.object, 'list');
    assert.equal(page.data.length, 20);
    assert.equal(page.first_id, 'msg_24');
    assert.equal(page.last_id, 'msg_5');
    assert.equal(page.has_more, true);
  });

  test('order asc with limit and after pages through every item once', () => {
    const all = items(5);
    const first = pageInputItems(all, { order: 'asc', limit: 2 });
    const second = pageInputItems(all, { order: 'asc', limit: 2, after: first.last_id! });
    const third = pageInputItems(all, { order: 'asc', limit: 2, after: second.last_id! });
    assert.deepEqual(
      [...first.data, ...second.data, ...third.data].map((i) => i.id),
      ['msg_0', 'msg_1', 'msg_2', 'msg_3', 'msg_4'],
    );
    assert.equal(third.has_more, false);
  });

  test('an unknown after id is a 400 naming the parameter', () => {
    assert.throws(() => pageInputItems(items(2), { after: 'nope' }), (e: unknown) => {
      assert.ok(e instanceof ValidationError);
      assert.equal(e.param, 'after');
      return true;
    });
  });
});

describe('compaction items', () => {
  test('a compaction item round-trips its summary, including non-ASCII text', () => {
    assert.equal(decodeCompaction(encodeCompaction('Größe: 5 ✓')), 'Größe: 5 ✓');
    assert.equal(decodeCompaction('not base64 json'), undefined);
    assert.equal(decodeCompaction(42), undefined);
  });

  test('as input, a compaction item becomes the summary; a foreign one is a 400', () => {
    const chat = responsesToChat({
      model: 'm',
      input: [
        { type: 'compaction', encrypted_content: encodeCompaction('They like papaya.') },
        { type: 'message', role: 'user', content: 'Which fruit?' },
      ],
    });
    assert.deepEqual(chat.messages[0], {
      role: 'assistant',
      content: 'Summary of the conversation so far:\nThey like papaya.',
    });
    assert.throws(
      () =>
        responsesToChat({
          model: 'm',
          input: [{ type: 'compaction', encrypted_content: 'opaque-from-openai' }, {
            type: 'message',
            role: 'user',
            content: 'x',
          }],
        }),
      (e: unknown) => e instanceof ValidationError && e.param === 'input[0].encrypted_content',
    );
  });
});
