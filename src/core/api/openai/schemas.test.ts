import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { loadOpenAISpec } from '../../../../tests/helpers/openai-spec.ts';
import {
  ChatCompletionChunkSchema,
  ChatCompletionResponseSchema,
  CompletionChunkSchema,
  CompletionResponseSchema,
  EmbeddingResponseSchema,
  UsageSchema,
} from './schemas.ts';
import {
  parseChatCompletionRequest,
  parseCompletionRequest,
  parseEmbeddingRequest,
  parseResponsesRequest,
} from './validate.ts';

const spec = loadOpenAISpec();

const weatherTool = {
  type: 'function',
  function: {
    name: 'get_current_weather',
    description: 'Get the current weather in a given location',
    parameters: {
      type: 'object',
      properties: {
        location: { type: 'string', description: 'The city and state, e.g. San Francisco, CA' },
        unit: { type: 'string', enum: ['celsius', 'fahrenheit'] },
      },
      required: ['location'],
    },
  },
};

/** Request bodies from OpenAI's API reference examples. */
const CHAT_EXAMPLES: Record<string, unknown> = {
  default: {
    model: 'gpt-4.1',
    messages: [
      { role: 'developer', content: 'You are a helpful assistant.' },
      { role: 'user', content: 'Hello!' },
    ],
  },
  'image input': {
    model: 'gpt-4.1',
    messages: [{
      role: 'user',
      content: [
        { type: 'text', text: 'What is in this image?' },
        { type: 'image_url', image_url: { url: 'https://example.com/boardwalk.jpg' } },
      ],
    }],
    max_tokens: 300,
  },
  streaming: {
    model: 'gpt-4.1',
    messages: [{ role: 'system', content: 'You are a helpful assistant.' }, {
      role: 'user',
      content: 'Hello!',
    }],
    stream: true,
    stream_options: { include_usage: true },
  },
  functions: {
    model: 'gpt-4.1',
    messages: [{ role: 'user', content: "What's the weather like in Boston today?" }],
    tools: [weatherTool],
    tool_choice: 'auto',
  },
  logprobs: {
    model: 'gpt-4.1',
    messages: [{ role: 'user', content: 'Hello!' }],
    logprobs: true,
    top_logprobs: 2,
  },
  'tool results': {
    model: 'gpt-4.1',
    messages: [
      { role: 'user', content: 'Weather in Paris?' },
      {
        role: 'assistant',
        content: null,
        tool_calls: [{
          id: 'call_1',
          type: 'function',
          function: { name: 'get_current_weather', arguments: '{"location":"Paris"}' },
        }],
      },
      { role: 'tool', tool_call_id: 'call_1', content: '18 C, cloudy' },
    ],
    tools: [weatherTool],
    tool_choice: { type: 'function', function: { name: 'get_current_weather' } },
    parallel_tool_calls: false,
  },
  'structured output': {
    model: 'gpt-4.1',
    messages: [{ role: 'user', content: 'Extract the event.' }],
    response_format: {
      type: 'json_schema',
      json_schema: {
        name: 'event',
        strict: true,
        schema: { type: 'object', properties: { name: { type: 'string' } } },
      },
    },
  },
  'every sampling field, nulls included': {
    model: 'gpt-4.1',
    messages: [{ role: 'user', content: 'Hi', name: 'ann' }],
    temperature: 0.7,
    top_p: null,
    n: 2,
    stop: ['\n\n', 'END'],
    max_completion_tokens: 64,
    presence_penalty: -0.5,
    frequency_penalty: 2,
    logit_bias: { '50256': -100 },
    seed: 42,
    user: 'user-1',
    metadata: { team: 'a' },
    store: false,
    reasoning_effort: 'low',
    service_tier: 'auto',
    prompt_cache_key: 'k',
    safety_identifier: 's',
  },
  'Dynamo extensions': {
    model: 'Qwen/Qwen3-0.6B',
    messages: [{ role: 'user', content: 'Hi' }],
    ignore_eos: true,
    min_tokens: 4,
    top_k: -1,
    min_p: 0.05,
    repetition_penalty: 1.1,
    include_stop_str_in_output: false,
    guided_choice: ['yes', 'no'],
    guided_decoding_backend: 'xgrammar',
    skip_special_tokens: true,
    return_tokens_as_token_ids: false,
    chat_template_args: { enable_thinking: false },
    cache_salt: 'tenant-a',
    stop_token_ids: [151645],
    detokenize: true,
    allowed_token_ids: [1, 2, 3],
    bad_words_token_ids: [[4, 5]],
    stream: true,
    stream_options: { include_usage: true, continuous_usage_stats: true },
    nvext: {
      greed_sampling: false,
      annotations: ['request_id'],
      backend_instance_id: 7,
      extra_fields: ['worker_id', 'timing'],
      agent_hints: { priority: 5, osl: 128 },
      session_control: { session_id: 's1', action: 'open', timeout: 60 },
    },
  },
};

describe('OpenAI request schemas accept the API reference examples', () => {
  for (const [name, body] of Object.entries(CHAT_EXAMPLES)) {
    test(`chat: ${name}`, () => {
      const parsed = parseChatCompletionRequest(body);
      assert.equal(parsed.model, (body as { model: string }).model);
    });
  }

  test('completions: string, batch, token ids and batches of token ids', () => {
    for (
      const prompt of ['Say this is a test', ['a', 'b'], [1, 2, 3], [[1, 2], [3]]] as unknown[]
    ) {
      const parsed = parseCompletionRequest({
        model: 'gpt-3.5-turbo-instruct',
        prompt,
        max_tokens: 7,
        temperature: 0,
        logprobs: 5,
        echo: false,
        best_of: 2,
        suffix: 'end',
        stop: '\n',
      });
      assert.deepEqual(parsed.prompt, prompt);
    }
  });

  test('embeddings: a string, strings and token ids; unknown fields are dropped', () => {
    const parsed = parseEmbeddingRequest({
      input: 'The food was delicious and the waiter...',
      model: 'text-embedding-ada-002',
      encoding_format: 'float',
      dimensions: 256,
      extra: true,
    });
    assert.equal(parsed.input, 'The food was delicious and the waiter...');
    assert.equal('extra' in parsed, false);
    assert.deepEqual(parseEmbeddingRequest({ input: [[1, 2]], model: 'm' }).input, [[1, 2]]);
  });

  test('responses: text, items, image, function tools and call outputs', () => {
    parseResponsesRequest({ model: 'gpt-4.1', input: 'Tell me a three sentence bedtime story' });
    const parsed = parseResponsesRequest({
      model: 'gpt-4.1',
      instructions: 'Be brief.',
      input: [
        {
          role: 'user',
          content: [
            { type: 'input_text', text: 'what is in this image?' },
            { type: 'input_image', image_url: 'https://example.com/a.jpg', detail: 'auto' },
          ],
        },
        { type: 'function_call', call_id: 'call_1', name: 'f', arguments: '{}' },
        { type: 'function_call_output', call_id: 'call_1', output: '42' },
        { type: 'item_reference', id: 'msg_1' },
        { type: 'reasoning', id: 'rs_1', summary: [] },
      ],
      tools: [
        { type: 'function', name: 'f', parameters: { type: 'object' }, strict: true },
        { type: 'web_search_preview' },
      ],
      tool_choice: { type: 'function', name: 'f' },
      text: { format: { type: 'json_schema', name: 'x', schema: { type: 'object' } } },
      max_output_tokens: 1024,
      store: false,
      include: ['reasoning.encrypted_content'],
      reasoning: { effort: 'low' },
      stream: true,
      unknown_field: 'ignored',
    });
    assert.equal(Array.isArray(parsed.input) && parsed.input.length, 5);
    assert.equal('unknown_field' in parsed, false);
  });
});

const usage = {
  prompt_tokens: 9,
  completion_tokens: 12,
  total_tokens: 21,
  prompt_tokens_details: { cached_tokens: 0 },
};

/** Minimal objects each of our response schemas accepts; the spec must accept them too. */
const RESPONSE_SAMPLES = [
  {
    ours: ChatCompletionResponseSchema,
    component: 'CreateChatCompletionResponse',
    value: {
      id: 'chatcmpl-1',
      object: 'chat.completion',
      created: 1741569952,
      model: 'm',
      choices: [{
        index: 0,
        message: {
          role: 'assistant',
          content: null,
          refusal: null,
          tool_calls: [{
            id: 'call_1',
            type: 'function',
            function: { name: 'f', arguments: '{}' },
          }],
        },
        finish_reason: 'tool_calls',
        logprobs: null,
      }],
      usage,
    },
  },
  {
    ours: ChatCompletionChunkSchema,
    component: 'CreateChatCompletionStreamResponse',
    value: {
      id: 'chatcmpl-1',
      object: 'chat.completion.chunk',
      created: 1741569952,
      model: 'm',
      choices: [{ index: 0, delta: { role: 'assistant', content: 'Hel' }, finish_reason: null }],
      usage: null,
    },
  },
  {
    ours: ChatCompletionChunkSchema,
    component: 'CreateChatCompletionStreamResponse',
    label: ' (usage-only chunk)',
    value: {
      id: 'chatcmpl-1',
      object: 'chat.completion.chunk',
      created: 1741569952,
      model: 'm',
      choices: [],
      usage,
    },
  },
  {
    ours: CompletionResponseSchema,
    component: 'CreateCompletionResponse',
    value: {
      id: 'cmpl-1',
      object: 'text_completion',
      created: 1741569952,
      model: 'm',
      choices: [{ index: 0, text: 'This is a test', logprobs: null, finish_reason: 'length' }],
      usage,
    },
  },
  {
    ours: EmbeddingResponseSchema,
    component: 'CreateEmbeddingResponse',
    value: {
      object: 'list',
      data: [{ object: 'embedding', index: 0, embedding: [0.1, -0.2] }],
      model: 'm',
      usage: { prompt_tokens: 8, total_tokens: 8 },
    },
  },
  { ours: UsageSchema, component: 'CompletionUsage', value: usage },
] as const;

describe("OpenAI response schemas agree with OpenAI's own document", () => {
  for (const sample of RESPONSE_SAMPLES) {
    const { ours, component, value } = sample;
    const label = 'label' in sample ? sample.label : '';
    test(
      `${component}${label}: a sample our schema accepts conforms to the spec`,
      () => {
        assert.equal(ours.safeParse(value).success, true);
        assert.deepEqual(spec.validateAgainstSpec(component, value), []);
      },
    );
  }

  test('a completion chunk is a text_completion whose finish_reason may be null', () => {
    const chunk = {
      id: 'cmpl-1',
      object: 'text_completion',
      created: 1,
      model: 'm',
      choices: [{ index: 0, text: 'x', logprobs: null, finish_reason: null }],
    };
    assert.equal(CompletionChunkSchema.safeParse(chunk).success, true);
  });

  test('a chat response without refusal is refused, as the spec requires it', () => {
    const value = structuredClone(RESPONSE_SAMPLES[0].value) as unknown as {
      choices: { message: Record<string, unknown> }[];
    };
    delete value.choices[0]?.message.refusal;
    assert.equal(ChatCompletionResponseSchema.safeParse(value).success, false);
  });
});
