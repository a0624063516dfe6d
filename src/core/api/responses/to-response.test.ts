import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { loadOpenAISpec } from '../../../../tests/helpers/openai-spec.ts';
import type { ChatCompletionResponse } from '../openai/schemas.ts';
import { ResponseObjectSchema } from '../openai/schemas.ts';
import { parseResponsesRequest } from '../openai/validate.ts';
import { chatToResponse } from './to-response.ts';

const spec = loadOpenAISpec();

function counter(): () => string {
  let n = 0;
  return () => `id-${++n}`;
}

function chatResponse(message: Partial<ChatCompletionResponse['choices'][number]['message']>) {
  const response: ChatCompletionResponse = {
    id: 'chatcmpl-1',
    object: 'chat.completion',
    created: 1700000000,
    model: 'qwen3',
    choices: [{
      index: 0,
      message: { role: 'assistant', content: null, refusal: null, ...message },
      finish_reason: 'stop',
      logprobs: null,
    }],
    usage: {
      prompt_tokens: 10,
      completion_tokens: 5,
      total_tokens: 15,
      prompt_tokens_details: { cached_tokens: 4 },
    },
  };
  return response;
}

const request = parseResponsesRequest({ model: 'qwen3', input: 'Hi' });

describe('chatToResponse()', () => {
  test('output cut by the token limit is incomplete, with reason max_output_tokens', () => {
    const chat = chatResponse({ content: 'Hel' });
    chat.choices[0]!.finish_reason = 'length';
    const response = chatToResponse(chat, { request, newId: counter() });
    assert.equal(response.status, 'incomplete');
    assert.deepEqual(response.incomplete_details, { reason: 'max_output_tokens' });
    assert.equal(response.completed_at, null);
    assert.equal(response.output[0]?.status, 'incomplete');
    assert.equal(response.usage?.output_tokens, 5);
  });

  test('usage is null, not absent, when the worker reported none', () => {
    const chat = chatResponse({ content: 'x' });
    delete chat.usage;
    const response = chatToResponse(chat, { request, newId: counter() });
    assert.ok(Object.hasOwn(response, 'usage'));
    assert.equal(response.usage, null);
  });

  test('a text answer becomes one completed message with every required field defaulted', () => {
    const response = chatToResponse(chatResponse({ content: 'Hello!' }), {
      request,
      newId: counter(),
    });
    assert.deepEqual(response, {
      id: 'resp_id1',
      object: 'response',
      created_at: 1700000000,
      completed_at: 1700000000,
      status: 'completed',
      model: 'qwen3',
      output: [{
        type: 'message',
        id: 'msg_id2',
        role: 'assistant',
        status: 'completed',
        content: [{ type: 'output_text', text: 'Hello!', annotations: [], logprobs: [] }],
      }],
      usage: {
        input_tokens: 10,
        input_tokens_details: { cached_tokens: 4, cache_write_tokens: 0 },
        output_tokens: 5,
        output_tokens_details: { reasoning_tokens: 0 },
        total_tokens: 15,
      },
      error: null,
      incomplete_details: null,
      instructions: null,
      max_output_tokens: null,
      max_tool_calls: null,
      background: false,
      frequency_penalty: 0,
      presence_penalty: 0,
      metadata: {},
      parallel_tool_calls: true,
      store: false,
      temperature: 1,
      top_p: 1,
      top_logprobs: 0,
      text: { format: { type: 'text' } },
      tool_choice: 'auto',
      tools: [],
      truncation: 'disabled',
      service_tier: 'auto',
      billing: null,
      conversation: null,
      previous_response_id: null,
      prompt: null,
      reasoning: null,
      prompt_cache_key: null,
      prompt_cache_retention: null,
      safety_identifier: null,
      user: null,
    });
    assert.equal(ResponseObjectSchema.safeParse(response).success, true);
  });

  test('request values are echoed back; function tools get strict true', () => {
    const echoed = parseResponsesRequest({
      model: 'qwen3',
      input: 'Hi',
      instructions: 'Be brief.',
      max_output_tokens: 64,
      temperature: 0.3,
      top_p: 0.8,
      store: true,
      metadata: { k: 'v' },
      tools: [{ type: 'function', name: 'f', parameters: { type: 'object' } }],
      tool_choice: 'required',
      parallel_tool_calls: false,
      text: { format: { type: 'json_object' } },
      prompt_cache_key: 'pk',
      safety_identifier: 'sid',
      user: 'u1',
    });
    const response = chatToResponse(chatResponse({ content: '{}' }), {
      request: echoed,
      newId: counter(),
    });
    assert.equal(response.instructions, 'Be brief.');
    assert.equal(response.max_output_tokens, 64);
    assert.equal(response.temperature, 0.3);
    assert.equal(response.top_p, 0.8);
    assert.equal(response.store, true);
    assert.deepEqual(response.metadata, { k: 'v' });
    assert.deepEqual(response.tools, [{
      type: 'function',
      name: 'f',
      description: null,
      parameters: { type: 'object' },
      strict: true,
    }]);
    assert.equal(response.tool_choice, 'required');
    assert.equal(response.parallel_tool_calls, false);
    assert.deepEqual(response.text, { format: { type: 'json_object' } });
    assert.equal(response.prompt_cache_key, 'pk');
    assert.equal(response.safety_identifier, 'sid');
    assert.equal(response.user, 'u1');
  });

  test('structured tool calls become function_call items before the message', () => {
    const response = chatToResponse(
      chatResponse({
        content: 'Let me check.',
        tool_calls: [{
          id: 'call_abc',
          type: 'function',
          function: { name: 'weather', arguments: '{"city":"Oslo"}' },
        }],
      }),
      { request, newId: counter() },
    );
    assert.deepEqual(response.output, [
      {
        type: 'function_call',
        id: 'fc_id2',
        call_id: 'call_abc',
        name: 'weather',
        arguments: '{"city":"Oslo"}',
        status: 'completed',
      },
      {
        type: 'message',
        id: 'msg_id3',
        role: 'assistant',
        status: 'completed',
        content: [{ type: 'output_text', text: 'Let me check.', annotations: [], logprobs: [] }],
      },
    ]);
  });

  test('reasoning becomes a reasoning item first; reasoning alone still gets an empty message', () => {
    const response = chatToResponse(
      chatResponse({ content: 'Yes.', reasoning_content: 'Thinking.' } as never),
      { request, newId: counter() },
    );
    assert.deepEqual(response.output.map((o) => o.type), ['reasoning', 'message']);
    assert.deepEqual(response.output[0], {
      type: 'reasoning',
      id: 'rs_id2',
      summary: [],
      content: [{ type: 'reasoning_text', text: 'Thinking.' }],
      status: 'completed',
    });
    const alone = chatToResponse(
      chatResponse({ content: null, reasoning_content: 'Only this.' } as never),
      { request, newId: counter() },
    );
    assert.deepEqual(alone.output.map((o) => o.type), ['reasoning', 'message']);
  });

  test('an empty answer becomes one empty message', () => {
    const response = chatToResponse(chatResponse({ content: null }), { request, newId: counter() });
    assert.equal(response.output.length, 1);
    assert.deepEqual(
      response.output[0]?.type === 'message' && response.output[0].content[0]?.text,
      '',
    );
  });

  test("the produced object conforms to OpenAI's Response schema", () => {
    const withTools = parseResponsesRequest({
      model: 'qwen3',
      input: 'Hi',
      tools: [{ type: 'function', name: 'f' }],
      prompt_cache_retention: '24h',
    });
    const response = chatToResponse(
      chatResponse({
        content: 'x',
        reasoning_content: 'r',
        tool_calls: [{ id: 'c', type: 'function', function: { name: 'f', arguments: '{}' } }],
      } as never),
      { request: withTools, newId: counter() },
    );
    // OpenResponses requires `user` (null when unset); OpenAI's document types it string only.
    assert.equal(response.user, null);
    assert.deepEqual(spec.validateAgainstSpec('Response', { ...response, user: undefined }), []);
  });
});
