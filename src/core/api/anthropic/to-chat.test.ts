import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { ValidationError } from '../../errors.ts';
import type { MessagesRequest } from './schemas.ts';
import {
  countTokensToChat,
  estimateTokens,
  messagesToChat,
  validateMessagesRequest,
} from './to-chat.ts';

const base = (over: Partial<MessagesRequest> = {}): MessagesRequest => ({
  model: 'm',
  max_tokens: 16,
  messages: [{ role: 'user', content: 'hi' }],
  ...over,
});

function refused(request: MessagesRequest, message: RegExp, param?: string) {
  assert.throws(() => validateMessagesRequest(request), (error) => {
    assert.ok(error instanceof ValidationError);
    assert.equal(error.status, 400);
    assert.match(error.message, message);
    if (param) assert.equal(error.param, param);
    return true;
  });
}

describe('validateMessagesRequest()', () => {
  test('refuses empty messages, empty block lists, non-object and unknown blocks', () => {
    refused(base({ messages: [] }), /^messages: field required$/, 'messages');
    refused(
      base({ messages: [{ role: 'user', content: 'a' }, { role: 'assistant', content: [] }] }),
      /^messages\[1\]\.content: must contain at least one content block$/,
    );
    refused(
      base({ messages: [{ role: 'user', content: ['text'] }] }),
      /content blocks must be objects/,
      'messages[0].content[0]',
    );
    refused(
      base({ messages: [{ role: 'user', content: [{ type: 'audio' }] }] }),
      /^content block type "audio" is not supported$/,
    );
  });

  test('refuses max_tokens <= 0, server tools, custom tools without a schema, empty stops', () => {
    refused(base({ max_tokens: 0 }), /^max_tokens: must be greater than 0$/, 'max_tokens');
    refused(base({ tools: [{ type: 'bash_20250124', name: 'bash' }] }), /server tool type/);
    refused(
      base({ tools: [{ name: 'f' }] }),
      /input_schema: field required/,
      'tools[0].input_schema',
    );
    refused(base({ stop_sequences: ['ok', ''] }), /must not be empty/);
    assert.doesNotThrow(() =>
      validateMessagesRequest(base({ tools: [{ type: 'custom', name: 'f', input_schema: {} }] }))
    );
  });
});

describe('messagesToChat()', () => {
  test('system string or blocks lead; sampling, stops and max_tokens carry over; always streamed', () => {
    const chat = messagesToChat(base({
      system: [{ type: 'text', text: 'a' }, { type: 'text', text: 'b' }],
      temperature: 0.5,
      top_p: 0.9,
      top_k: 40,
      stop_sequences: ['END'],
    }));
    assert.deepEqual(chat.messages, [
      { role: 'system', content: 'a\nb' },
      { role: 'user', content: 'hi' },
    ]);
    assert.equal(chat.max_completion_tokens, 16);
    assert.deepEqual(chat.stop, ['END']);
    assert.equal(chat.temperature, 0.5);
    assert.equal(chat.top_p, 0.9);
    assert.equal((chat as Record<string, unknown>).top_k, 40);
    assert.equal(chat.stream, true);
    assert.deepEqual(chat.stream_options, { include_usage: true });
    assert.equal(messagesToChat(base({ system: 'sys' })).messages[0]?.content, 'sys');
    assert.equal(messagesToChat(base()).stop, undefined);
  });

  test('a user turn: text joined, images as [image], each tool_result a tool message in order', () => {
    const chat = messagesToChat(base({
      messages: [{
        role: 'user',
        content: [
          { type: 'text', text: 'look' },
          { type: 'image', source: { type: 'base64', media_type: 'image/png', data: '' } },
          { type: 'tool_result', tool_use_id: 't1', content: 'sunny' },
          {
            type: 'tool_result',
            tool_use_id: 't2',
            content: [{ type: 'text', text: 'a' }, { type: 'text', text: 'b' }],
          },
          { type: 'text', text: 'thanks' },
          { type: 'thinking', thinking: 'skipped', signature: '' },
        ],
      }],
    }));
    assert.deepEqual(chat.messages, [
      { role: 'user', content: 'look\n[image]' },
      { role: 'tool', tool_call_id: 't1', content: 'sunny' },
      { role: 'tool', tool_call_id: 't2', content: 'a\nb' },
      { role: 'user', content: 'thanks' },
    ]);
  });

  test('an assistant turn: text, tool_use as tool_calls, thinking as reasoning segments', () => {
    const chat = messagesToChat(base({
      messages: [
        { role: 'user', content: 'q' },
        {
          role: 'assistant',
          content: [
            { type: 'thinking', thinking: 'first', signature: 's' },
            { type: 'text', text: 'Checking.' },
            { type: 'tool_use', id: 'toolu_1', name: 'f', input: { x: 1 } },
            { type: 'thinking', thinking: 'second', signature: 's' },
            { type: 'tool_use', id: 'toolu_2', name: 'g', input: {} },
          ],
        },
        { role: 'assistant', content: [{ type: 'thinking', thinking: 'only', signature: '' }] },
      ],
    }));
    assert.deepEqual(chat.messages[1], {
      role: 'assistant',
      content: 'Checking.',
      tool_calls: [
        { id: 'toolu_1', type: 'function', function: { name: 'f', arguments: '{"x":1}' } },
        { id: 'toolu_2', type: 'function', function: { name: 'g', arguments: '{}' } },
      ],
      reasoning_content: ['first', 'second', ''],
    });
    assert.deepEqual(chat.messages[2], {
      role: 'assistant',
      content: '',
      reasoning_content: 'only',
    });
  });

  test('tools become functions; tool_choice auto/any/none/tool map; parallel use can be disabled', () => {
    const tools = [{ name: 'f', description: 'does f', input_schema: { type: 'object' } }];
    const chat = messagesToChat(base({ tools }));
    assert.deepEqual(chat.tools, [{
      type: 'function',
      function: { name: 'f', description: 'does f', parameters: { type: 'object' } },
    }]);
    const choice = (tool_choice: MessagesRequest['tool_choice']) =>
      messagesToChat(base({ tools, tool_choice }));
    assert.equal(choice({ type: 'auto' }).tool_choice, 'auto');
    assert.equal(choice({ type: 'any' }).tool_choice, 'required');
    assert.equal(choice({ type: 'none' }).tool_choice, 'none');
    assert.deepEqual(choice({ type: 'tool', name: 'f' }).tool_choice, {
      type: 'function',
      function: { name: 'f' },
    });
    assert.equal(choice({ type: 'tool' }).tool_choice, 'required');
    const serial = choice({ type: 'auto', disable_parallel_tool_use: true });
    assert.equal(serial.parallel_tool_calls, false);
    assert.throws(() => choice({ type: 'tool', name: 'missing' }), /not present in "tools"/);
  });

  test("thinking sets the template's enable_thinking", () => {
    assert.deepEqual(
      messagesToChat(base({ thinking: { type: 'enabled', budget_tokens: 1024 } }))
        .chat_template_args,
      { enable_thinking: true },
    );
    assert.deepEqual(
      messagesToChat(base({ thinking: { type: 'disabled' } })).chat_template_args,
      { enable_thinking: false },
    );
    assert.equal(messagesToChat(base()).chat_template_args, undefined);
  });
});

describe('count_tokens translation', () => {
  test('renders the same messages and tools as a Messages request; checks the blocks', () => {
    const chat = countTokensToChat({
      model: 'm',
      system: 'sys',
      messages: [{ role: 'user', content: 'hi' }],
      tools: [{ name: 'f', input_schema: {} }],
    });
    assert.deepEqual(chat.messages, [
      { role: 'system', content: 'sys' },
      { role: 'user', content: 'hi' },
    ]);
    assert.equal(chat.tools.length, 1);
    assert.throws(
      () => countTokensToChat({ model: 'm', messages: [] }),
      /messages: field required/,
    );
  });

  test("the estimate for text-input models is Dynamo's characters / 3", () => {
    // system 3 + user role 4 + content 5 = 12 characters.
    assert.equal(
      estimateTokens({ model: 'm', system: 'abc', messages: [{ role: 'user', content: 'hello' }] }),
      4,
    );
  });
});
