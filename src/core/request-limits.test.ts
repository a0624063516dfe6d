import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ApiError } from './errors.ts';
import { checkOutputBudget, checkRequestLimits, type RequestLimits } from './request-limits.ts';

const limits: RequestLimits = { maxChars: 100, maxMessages: 3, maxPrompts: 2, maxDepth: 5 };

const refuses = (fn: () => void, code: string, message?: RegExp) =>
  assert.throws(fn, (error: unknown) => {
    assert.ok(error instanceof ApiError);
    assert.equal(error.status, 400);
    assert.equal(error.code, code);
    if (message) assert.match(error.message, message);
    return true;
  });

test('checkRequestLimits() counts text over all messages, prompts and tools', () => {
  checkRequestLimits(
    { messages: [{ content: 'x'.repeat(50) }, { content: 'y'.repeat(50) }] },
    limits,
  );
  refuses(
    () =>
      checkRequestLimits(
        { messages: [{ content: 'x'.repeat(60) }, { content: 'y'.repeat(60) }] },
        limits,
      ),
    'request_too_large',
    /--http-max-request-chars/,
  );
  refuses(
    () => checkRequestLimits({ prompt: ['x'.repeat(60), 'y'.repeat(60)] }, limits),
    'request_too_large',
  );
  // Token ids count one each.
  refuses(
    () => checkRequestLimits({ prompt: Array.from({ length: 101 }, () => 1) }, limits),
    'request_too_large',
  );
});

test('checkRequestLimits() leaves media payloads to the body limit', () => {
  const image = `data:image/png;base64,${'A'.repeat(10_000)}`;
  checkRequestLimits({
    messages: [{ content: [{ type: 'image_url', image_url: { url: image } }] }],
    input: [{ type: 'input_audio', input_audio: { data: 'B'.repeat(10_000) } }],
  }, { ...limits, maxMessages: 10, maxDepth: 10 });
});

test('checkRequestLimits() refuses too many messages, input items or prompts by their count', () => {
  const four = Array.from({ length: 4 }, () => ({ role: 'user', content: '' }));
  refuses(
    () => checkRequestLimits({ messages: four }, limits),
    'too_many_messages',
    /"messages" has 4/,
  );
  refuses(() => checkRequestLimits({ input: four }, limits), 'too_many_messages', /"input" has 4/);
  refuses(() => checkRequestLimits({ prompt: ['a', 'b', 'c'] }, limits), 'too_many_prompts');
  refuses(() => checkRequestLimits({ input: ['a', 'b', 'c'] }, limits), 'too_many_prompts');
  // One prompt of token ids is one prompt, however long.
  checkRequestLimits({ prompt: [1, 2, 3, 4] }, limits);
});

test('checkRequestLimits() refuses deep nesting and non-finite numbers', () => {
  checkRequestLimits({ a: [[[1]]] }, limits);
  refuses(
    () => checkRequestLimits({ a: [[[[[1]]]]] }, limits),
    'json_too_deep',
    /more than 5 levels/,
  );
  const deep = JSON.parse(`${'['.repeat(100_000)}${']'.repeat(100_000)}`);
  refuses(() => checkRequestLimits(deep, limits), 'json_too_deep');
  assert.throws(
    () => checkRequestLimits(JSON.parse('{"max_tokens":1e400}'), limits),
    (error: unknown) =>
      error instanceof ApiError && error.status === 400 && error.param === 'max_tokens',
  );
  // Inside a token array too, which is counted without stacking its numbers.
  assert.throws(
    () => checkRequestLimits(JSON.parse('{"prompt":[1,2,1e400,3]}'), limits),
    (error: unknown) =>
      error instanceof ApiError && error.status === 400 && error.param === 'prompt',
  );
});

test('checkOutputBudget() multiplies choices, tokens and logprobs', () => {
  checkOutputBudget({ choices: 1, maxTokens: 262_144, logprobs: undefined }, 262_144);
  checkOutputBudget({ choices: 1, maxTokens: undefined, logprobs: 20 }, 1);
  refuses(
    () => checkOutputBudget({ choices: 128, maxTokens: 100, logprobs: 20 }, 262_144),
    'output_budget_exceeded',
    /128 choice\(s\) x 100 max tokens x 22 \(20 top logprobs\) = 281600/,
  );
});
