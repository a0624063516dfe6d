import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { ApiError } from '../../errors.ts';
import { parseResponsesRequest } from '../openai/validate.ts';
import { responsesToChat } from './to-chat.ts';

const convert = (body: Record<string, unknown>) =>
  responsesToChat(parseResponsesRequest({ model: 'm', ...body }));

function rejects(fn: () => unknown, status: number, param: string, message: RegExp | string) {
  assert.throws(fn, (error: unknown) => {
    assert.ok(error instanceof ApiError);
    assert.equal(error.status, status);
    assert.equal(error.param, param);
    if (typeof message === 'string') assert.equal(error.message, message);
    else assert.match(error.message, message);
    return true;
  });
}

describe('responsesToChat()', () => {
  test('instructions become a leading system message; a string input one user message', () => {
    const chat = convert({ instructions: 'Be brief.', input: 'Hello' });
    assert.deepEqual(chat.messages, [
      { role: 'system', content: 'Be brief.' },
      { role: 'user', content: 'Hello' },
    ]);
    assert.equal(chat.model, 'm');
    assert.equal(chat.stream, true);
    assert.deepEqual(chat.stream_options, { include_usage: true });
  });

  test('items map by role and type; references and unknown items are skipped', () => {
    const chat = convert({
      input: [
        {
          role: 'developer',
          content: [{ type: 'input_text', text: 'Rule 1. ' }, {
            type: 'input_text',
            text: 'Rule 2.',
          }],
        },
        { type: 'message', role: 'user', content: [{ type: 'input_text', text: 'Weather?' }] },
        {
          type: 'message',
          role: 'assistant',
          id: 'msg_1',
          status: 'completed',
          content: [{ type: 'output_text', text: 'Checking.', annotations: [] }],
        },
        { type: 'function_call', call_id: 'call_1', name: 'weather', arguments: '{"city":"Oslo"}' },
        { type: 'function_call', call_id: 'call_2', name: 'weather', arguments: '{"city":"Rome"}' },
        { type: 'function_call_output', call_id: 'call_1', output: '3 C' },
        {
          type: 'function_call_output',
          call_id: 'call_2',
          output: [{ type: 'input_text', text: '19 C' }],
        },
        { type: 'item_reference', id: 'msg_0' },
        { type: 'reasoning', id: 'rs_1', summary: [] },
      ],
    });
    assert.deepEqual(chat.messages, [
      { role: 'system', content: 'Rule 1. Rule 2.' },
      { role: 'user', content: 'Weather?' },
      { role: 'assistant', content: 'Checking.' },
      {
        role: 'assistant',
        content: null,
        tool_calls: [
          {
            id: 'call_1',
            type: 'function',
            function: { name: 'weather', arguments: '{"city":"Oslo"}' },
          },
          {
            id: 'call_2',
            type: 'function',
            function: { name: 'weather', arguments: '{"city":"Rome"}' },
          },
        ],
      },
      { role: 'tool', tool_call_id: 'call_1', content: '3 C' },
      { role: 'tool', tool_call_id: 'call_2', content: '19 C' },
    ]);
  });

  test('user images and videos become URL parts; audio and files are 400s', () => {
    const chat = convert({
      input: [{
        role: 'user',
        content: [
          { type: 'input_text', text: 'Compare' },
          { type: 'input_image', image_url: 'https://example.com/a.png', detail: 'low' },
          { type: 'input_video', video: 'https://example.com/v.mp4' },
        ],
      }],
    });
    assert.deepEqual(chat.messages[0], {
      role: 'user',
      content: [
        { type: 'text', text: 'Compare' },
        { type: 'image_url', image_url: { url: 'https://example.com/a.png', detail: 'low' } },
        { type: 'video_url', video_url: { url: 'https://example.com/v.mp4' } },
      ],
    });
    rejects(
      () =>
        convert({
          input: [{ role: 'user', content: [{ type: 'input_image', image_url: 'not a url' }] }],
        }),
      400,
      'input[0].content[0].image_url',
      /must be a URL/,
    );
    rejects(
      () => convert({ input: [{ role: 'user', content: [{ type: 'input_audio' }] }] }),
      400,
      'input[0].content[0]',
      'Audio input content is not yet supported',
    );
    // Files are text before translation (planResponse, preprocess/file-parts.ts); one that
    // reaches it unconverted is still a 400, never a part the chat pipeline does not know.
    rejects(
      () => convert({ input: [{ role: 'user', content: [{ type: 'input_file', file_id: 'f' }] }] }),
      400,
      'input[0].content[0]',
      'File input content is not supported in "input[0].content[0]"',
    );
  });

  test('function tools only; tool_choice maps, anything unknown becomes auto', () => {
    const tools = [
      {
        type: 'function',
        name: 'f',
        description: 'd',
        parameters: { type: 'object' },
        strict: true,
      },
      { type: 'web_search_preview' },
    ];
    const chat = convert({ input: 'x', tools, tool_choice: { type: 'function', name: 'f' } });
    assert.deepEqual(chat.tools, [{
      type: 'function',
      function: { name: 'f', description: 'd', parameters: { type: 'object' }, strict: true },
    }]);
    assert.deepEqual(chat.tool_choice, { type: 'function', function: { name: 'f' } });
    assert.equal(convert({ input: 'x', tools, tool_choice: 'required' }).tool_choice, 'required');
    assert.equal(
      convert({ input: 'x', tools, tool_choice: { type: 'web_search_preview' } }).tool_choice,
      'auto',
    );
    assert.equal(convert({ input: 'x', tools: [{ type: 'file_search' }] }).tools, undefined);
  });

  test('sampling fields, limits, metadata, text.format and nvext carry over', () => {
    const chat = convert({
      input: 'x',
      max_output_tokens: 256,
      temperature: 0.2,
      top_p: 0.9,
      top_logprobs: 50,
      metadata: { a: 'b' },
      parallel_tool_calls: false,
      text: {
        format: { type: 'json_schema', name: 'out', schema: { type: 'object' }, strict: true },
      },
      nvext: { annotations: ['request_id'] },
    });
    assert.equal(chat.max_completion_tokens, 256);
    assert.equal(chat.max_tokens, undefined);
    assert.equal(chat.temperature, 0.2);
    assert.equal(chat.top_p, 0.9);
    assert.equal(chat.top_logprobs, 20);
    assert.deepEqual(chat.metadata, { a: 'b' });
    assert.equal(chat.parallel_tool_calls, false);
    assert.deepEqual(chat.response_format, {
      type: 'json_schema',
      json_schema: { name: 'out', schema: { type: 'object' }, strict: true },
    });
    assert.deepEqual(chat.nvext, { annotations: ['request_id'] });
    assert.deepEqual(
      convert({ input: 'x', text: { format: { type: 'json_object' } } }).response_format,
      {
        type: 'json_object',
      },
    );
  });

  test('an empty or missing input is a 400 on "input"', () => {
    rejects(
      () => convert({ input: '' }),
      400,
      'input',
      'Invalid value for "input": must not be empty',
    );
    rejects(
      () => convert({ input: [] }),
      400,
      'input',
      'Invalid value for "input": must not be empty',
    );
    rejects(() => convert({}), 400, 'input', 'Missing required parameter "input"');
  });

  test('the chat request is validated again: an input of only references has no messages', () => {
    rejects(
      () => convert({ input: [{ type: 'item_reference', id: 'x' }] }),
      400,
      'messages',
      "The 'messages' field cannot be empty. At least one message is required.",
    );
    rejects(
      () => convert({ input: 'x', tool_choice: 'required' }),
      400,
      'tool_choice',
      /"required" but "tools" is empty/,
    );
  });
});
