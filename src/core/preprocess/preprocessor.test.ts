import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { ModelDirFiles } from '../discovery/model-dir.ts';
import { BadRequestError } from '../errors.ts';
import { readModelDir } from '../../runtime/model-dir.ts';
import {
  defaultMaxTokens,
  loadModelPreprocessor,
  MAX_CHARS_PER_TOKEN,
  PromptTooLargeError,
  PromptTooLongError,
} from './preprocessor.ts';
import { ChatTemplateError } from './template.ts';

const files = await readModelDir(
  new URL('../../../tests/fixtures/model/', import.meta.url).pathname,
);
const pre = await loadModelPreprocessor(files);
const user = (content: string) => ({ role: 'user', content });

test('loadModelPreprocessor() reads EOS ids and the context length of the bundled model', () => {
  assert.deepEqual(pre.eosTokenIds, [151645, 151643]);
  assert.equal(pre.contextLength, 40960);
  assert.deepEqual(pre.template?.names, ['default']);
  assert.equal(pre.tokenizer.vocabSize, 151669);
});

test('renderChat() renders the template with a generation prompt and tokenizes it', () => {
  const { prompt, tokenIds } = pre.renderChat({ messages: [user('Hello')] });
  assert.equal(prompt, '<|im_start|>user\nHello<|im_end|>\n<|im_start|>assistant\n');
  assert.deepEqual(tokenIds, pre.tokenizer.encode(prompt, { addSpecialTokens: false }));
  assert.equal(tokenIds[0], 151644);
  assert.equal(tokenIds.length, 9);
});

test('renderChat() passes chat_template_args, which win over the defaults', () => {
  const thinkingOff = pre.renderChat({
    messages: [user('Hi')],
    chat_template_args: { enable_thinking: false },
  });
  assert.ok(thinkingOff.prompt.endsWith('<think>\n\n</think>\n\n'));
  const noGeneration = pre.renderChat({
    messages: [user('Hi')],
    chat_template_args: { add_generation_prompt: false },
  });
  assert.equal(noGeneration.prompt, '<|im_start|>user\nHi<|im_end|>\n');
});

test('renderChat() leaves tools out of the template when tool_choice is "none"', () => {
  const tools = [{ type: 'function', function: { name: 'f', parameters: {} } }];
  const withTools = pre.renderChat({ messages: [user('x')], tools, tool_choice: 'auto' });
  assert.ok(withTools.prompt.includes('<tools>'));
  assert.ok(
    withTools.prompt.includes('"parameters": {"type": "object", "properties": {}}'),
    'empty parameters are backfilled',
  );
  const none = pre.renderChat({ messages: [user('x')], tools, tool_choice: 'none' });
  assert.ok(!none.prompt.includes('<tools>'));
});

test('renderChat() with use_raw_prompt skips the template', () => {
  const raw = '<|im_start|>user\nraw<|im_end|>\n<|im_start|>assistant\n';
  const { prompt, tokenIds } = pre.renderChat({ messages: [user(raw)], use_raw_prompt: true });
  assert.equal(prompt, raw);
  assert.equal(tokenIds[0], 151644);
});

test('tokenizePrompt() tokenizes a completion prompt', () => {
  assert.deepEqual(pre.tokenizePrompt('Hello world'), [9707, 1879]);
});

test('a prompt that fills the context throws PromptTooLongError with both numbers', async () => {
  const small: ModelDirFiles = {
    ...files,
    config: { path: 'config.json', text: JSON.stringify({ max_position_embeddings: 8 }) },
  };
  const tiny = await loadModelPreprocessor(small);
  assert.equal(tiny.contextLength, 8);
  assert.throws(
    () => tiny.renderChat({ messages: [user('Hello')] }),
    (error: unknown) =>
      error instanceof PromptTooLongError && error instanceof BadRequestError &&
      error.contextLength === 8 && error.promptLength === 9 &&
      error.message === "This model's maximum context length is 8 tokens; the prompt has 9 tokens",
  );
  assert.deepEqual(tiny.tokenizePrompt('one two three'), pre.tokenizePrompt('one two three'));
});

test('defaultMaxTokens() is what the context leaves, or undefined when it is unknown', () => {
  assert.equal(defaultMaxTokens(40960, 100), 40860);
  assert.equal(defaultMaxTokens(undefined, 100), undefined);
  assert.throws(
    () => defaultMaxTokens(40960, 50000),
    {
      name: 'PromptTooLongError',
      message: "This model's maximum context length is 40960 tokens; the prompt has 50000 tokens",
    },
  );
  assert.throws(() => defaultMaxTokens(10, 10), PromptTooLongError);
});

test('a model without a chat template serves completions; chat throws ChatTemplateError', async () => {
  const noTemplate = await loadModelPreprocessor({
    ...files,
    tokenizerConfig: { path: 'tokenizer_config.json', text: '{"eos_token": "<|im_end|>"}' },
  });
  assert.equal(noTemplate.template, undefined);
  assert.deepEqual(noTemplate.tokenizePrompt('Hello world'), [9707, 1879]);
  assert.throws(() => noTemplate.renderChat({ messages: [user('x')] }), ChatTemplateError);
});

test('text longer than the context can hold is refused unread (degenerate text tokenizes slowly)', () => {
  const contextLength = pre.contextLength ?? 0;
  // A megabyte of spaces would take the tokenizer ~20 s; the length check answers at once.
  const spaces = ' '.repeat(contextLength * MAX_CHARS_PER_TOKEN + 1);
  assert.throws(() => pre.tokenizePrompt(spaces), (e: PromptTooLargeError) => {
    assert.ok(e instanceof BadRequestError && e.status === 400);
    assert.equal(e.code, 'context_length_exceeded');
    assert.match(e.message, new RegExp(`maximum context length is ${contextLength} tokens`));
    assert.match(e.message, new RegExp(`${spaces.length} characters`));
    return true;
  });
  assert.throws(() => pre.renderChat({ messages: [user(spaces)] }), PromptTooLargeError);
});
