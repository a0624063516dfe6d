import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { ApiError, NotImplementedError, ValidationError } from '../../errors.ts';
import {
  checkUnsupportedFields,
  formatParamPath,
  issuesToValidationError,
  parseChatCompletionRequest,
  parseCompletionRequest,
  parseEmbeddingRequest,
  parseResponsesRequest,
  promptCount,
} from './validate.ts';

interface Expected {
  status?: number;
  param: string | null;
  message: string | RegExp;
}

function rejects(fn: () => unknown, expected: Expected): void {
  assert.throws(fn, (error: unknown) => {
    assert.ok(error instanceof ApiError, `expected an ApiError, got ${String(error)}`);
    assert.equal(error.status, expected.status ?? 400);
    assert.equal(error.param, expected.param);
    if (typeof expected.message === 'string') assert.equal(error.message, expected.message);
    else assert.match(error.message, expected.message);
    return true;
  });
}

const user = { role: 'user', content: 'Hi' };
const chat = (fields: Record<string, unknown>) => () =>
  parseChatCompletionRequest({ model: 'm', messages: [user], ...fields });
const completion = (fields: Record<string, unknown>) => () =>
  parseCompletionRequest({ model: 'm', prompt: 'Hi', ...fields });
const tool = (name: string) => ({ type: 'function', function: { name } });

describe('chat completion validation (reference §4.1)', () => {
  test('deprecated function_call and functions answer 501 with the reference messages', () => {
    rejects(chat({ function_call: 'auto' }), {
      status: 501,
      param: 'function_call',
      message: '`function_call` is deprecated. Please migrate to use `tool_choice` instead.',
    });
    rejects(chat({ functions: [{ name: 'f' }] }), {
      status: 501,
      param: 'functions',
      message: '`functions` is deprecated. Please migrate to use `tools` instead.',
    });
    assert.throws(chat({ functions: [] }), NotImplementedError);
  });

  test('empty messages use the reference message', () => {
    rejects(() => parseChatCompletionRequest({ model: 'm', messages: [] }), {
      param: 'messages',
      message: "The 'messages' field cannot be empty. At least one message is required.",
    });
  });

  test('stream_options without stream: true is refused', () => {
    const message = "The 'stream_options' field is only allowed when 'stream' is set to true.";
    rejects(chat({ stream_options: { include_usage: true } }), {
      param: 'stream_options',
      message,
    });
    rejects(chat({ stream: false, stream_options: {} }), { param: 'stream_options', message });
    parseChatCompletionRequest({
      model: 'm',
      messages: [user],
      stream: true,
      stream_options: { include_usage: true },
    });
    parseChatCompletionRequest({ model: 'm', messages: [user], stream_options: null });
  });

  test('unknown top-level fields answer "Unsupported parameter(s)" unless ignored', () => {
    rejects(chat({ foo: 1, bar: 2 }), {
      param: 'foo',
      message: 'Unsupported parameter(s): `foo`, `bar`',
    });
    const kept = parseChatCompletionRequest(
      { model: 'm', messages: [user], foo: 1, temperature: 1 },
      { ignoreUnsupported: true },
    );
    assert.equal('foo' in kept, false);
    assert.equal(kept.temperature, 1);
  });

  test('pass-through extras are type-checked even when unknown fields are ignored', () => {
    rejects(chat({ cache_salt: 5 }), {
      param: 'cache_salt',
      message: 'Invalid value for "cache_salt": expected string, got number',
    });
    rejects(chat({ stop_token_ids: ['a'] }), {
      param: 'stop_token_ids[0]',
      message: /^Invalid value for "stop_token_ids\[0\]": must be an integer between 0 and/,
    });
    rejects(chat({ detokenize: 'yes' }), {
      param: 'detokenize',
      message: 'Invalid value for "detokenize": expected boolean, got string',
    });
    rejects(chat({ allowed_token_ids: [-1] }), {
      param: 'allowed_token_ids[0]',
      message: /must be an integer between 0 and 4294967295 \(got -1\)/,
    });
    rejects(chat({ bad_words_token_ids: [1] }), {
      param: 'bad_words_token_ids[0]',
      message: 'Invalid value for "bad_words_token_ids[0]": expected array, got number',
    });
  });

  const RANGES: [string, unknown, string][] = [
    ['temperature', 3, 'must be between 0 and 2 (got 3)'],
    ['temperature', -0.1, 'must be between 0 and 2 (got -0.1)'],
    ['top_p', 1.5, 'must be between 0 and 1 (got 1.5)'],
    ['min_p', 2, 'must be between 0 and 1 (got 2)'],
    ['frequency_penalty', -3, 'must be between -2 and 2 (got -3)'],
    ['presence_penalty', 2.5, 'must be between -2 and 2 (got 2.5)'],
    ['repetition_penalty', 0, 'must be greater than 0 and at most 2 (got 0)'],
    ['repetition_penalty', 2.01, 'must be greater than 0 and at most 2 (got 2.01)'],
    ['top_k', -2, 'must be an integer between -1 and 2147483647 (got -2)'],
    ['n', 0, 'must be an integer between 1 and 128 (got 0)'],
    ['n', 1e9, 'must be an integer between 1 and 128 (got 1000000000)'],
    ['n', 1.5, 'must be an integer between 1 and 128 (got 1.5)'],
    ['top_logprobs', 21, 'must be an integer between 0 and 20 (got 21)'],
    ['max_tokens', 0, 'must be an integer between 1 and 4294967295 (got 0)'],
    ['max_tokens', -5, 'must be an integer between 1 and 4294967295 (got -5)'],
    [
      'max_completion_tokens',
      2 ** 40,
      'must be an integer between 1 and 4294967295 (got 1099511627776)',
    ],
    ['min_tokens', -1, 'must be an integer between 0 and 4294967295 (got -1)'],
    ['temperature', '0.5', 'must be a number (got "0.5")'],
    ['n', '2', 'must be an integer between 1 and 128 (got "2")'],
  ];
  for (const [field, value, rule] of RANGES) {
    test(`${field} = ${JSON.stringify(value)} is refused: ${rule}`, () => {
      rejects(chat({ [field]: value }), {
        param: field,
        message: `Invalid value for "${field}": ${rule}`,
      });
    });
  }

  test('logit_bias values must lie in -100..100', () => {
    rejects(chat({ logit_bias: { '42': 101 } }), {
      param: 'logit_bias.42',
      message: 'Invalid value for "logit_bias.42": must be between -100 and 100 (got 101)',
    });
  });

  test('stop: at most 32 entries, none empty, the array not empty', () => {
    rejects(chat({ stop: '' }), {
      param: 'stop',
      message: 'Invalid value for "stop": must not be empty (got "")',
    });
    rejects(chat({ stop: [] }), {
      param: 'stop',
      message: 'Invalid value for "stop": must not be empty',
    });
    rejects(chat({ stop: ['a', ''] }), {
      param: 'stop[1]',
      message: 'Invalid value for "stop[1]": must not be empty (got "")',
    });
    rejects(chat({ stop: Array.from({ length: 33 }, (_, i) => `s${i}`) }), {
      param: 'stop',
      message: 'Invalid value for "stop": must have at most 32 entries (got 33)',
    });
    rejects(chat({ stop: [1, 2] }), {
      param: 'stop[0]',
      message: 'Invalid value for "stop[0]": expected string, got number',
    });
    rejects(chat({ stop: ['x'.repeat(1025)] }), {
      param: 'stop[0]',
      message: 'Invalid value for "stop[0]": must be at most 1024 characters (got 1025)',
    });
    parseChatCompletionRequest({ model: 'm', messages: [user], stop: ['x'.repeat(1024)] });
  });

  test('tools: at most 1536, names of 1-96 characters of [A-Za-z0-9_-]', () => {
    rejects(chat({ tools: Array.from({ length: 1537 }, (_, i) => tool(`t${i}`)) }), {
      param: 'tools',
      message: 'Invalid value for "tools": must have at most 1536 entries (got 1537)',
    });
    for (const name of ['', 'a b', 'x'.repeat(97), 'naïve']) {
      rejects(chat({ tools: [tool(name)] }), {
        param: 'tools[0].function.name',
        message: /^Invalid value for "tools\[0\]\.function\.name": must be 1 to 96 characters/,
      });
    }
    parseChatCompletionRequest({ model: 'm', messages: [user], tools: [tool('a-B_9'.repeat(19))] });
  });

  test('tool_choice must agree with tools', () => {
    rejects(chat({ tool_choice: 'required' }), {
      param: 'tool_choice',
      message: 'Invalid value for "tool_choice": it is "required" but "tools" is empty',
    });
    rejects(
      chat({ tools: [tool('a')], tool_choice: { type: 'function', function: { name: 'b' } } }),
      {
        param: 'tool_choice.function.name',
        message:
          'Invalid value for "tool_choice.function.name": tool "b" is not present in "tools"',
      },
    );
    rejects(chat({ tool_choice: 'sometimes' }), {
      param: 'tool_choice',
      message: /^Invalid value for "tool_choice": must be one of "none", "auto", "required"/,
    });
    parseChatCompletionRequest({ model: 'm', messages: [user], tool_choice: 'none' });
  });

  test('response_format: json_schema needs a name and a satisfiable schema', () => {
    const format = (json_schema: Record<string, unknown>) => ({
      response_format: { type: 'json_schema', json_schema },
    });
    rejects(chat(format({ name: '', schema: {} })), {
      param: 'response_format.json_schema.name',
      message: 'Invalid value for "response_format.json_schema.name": must not be empty',
    });
    rejects(chat(format({ name: 'x' })), {
      param: 'response_format.json_schema.schema',
      message: /^Missing required parameter "response_format.json_schema.schema"/,
    });
    rejects(chat(format({ name: 'x', schema: false })), {
      param: 'response_format.json_schema.schema',
      message: /cannot be false/,
    });
    rejects(chat({ response_format: { type: 'yaml' } }), {
      param: 'response_format.type',
      message: /^Invalid value for "response_format.type": must be one of "text", "json_object"/,
    });
  });

  test('assistant tool-call arguments must be empty or a JSON object string', () => {
    const history = (args: string) => ({
      messages: [user, {
        role: 'assistant',
        tool_calls: [{ id: 'c', type: 'function', function: { name: 'f', arguments: args } }],
      }],
    });
    for (const args of ['[1]', 'not json', '"s"', 'null']) {
      rejects(chat(history(args)), {
        param: 'messages[1].tool_calls[0].function.arguments',
        message: /must be a JSON object string/,
      });
    }
    parseChatCompletionRequest({ model: 'm', ...history('') });
    parseChatCompletionRequest({ model: 'm', ...history(' {"a":1} ') });
  });

  test('chat_template_args may not carry chat_template', () => {
    rejects(chat({ chat_template_args: { chat_template: '{{ x }}' } }), {
      param: 'chat_template_args.chat_template',
      message: '`chat_template` is not supported inside `chat_template_args`',
    });
  });

  test('only one guided-decoding constraint at a time', () => {
    rejects(chat({ guided_json: { type: 'object' }, guided_regex: '\\d+' }), {
      param: 'guided_regex',
      message: 'Only one guided-decoding constraint can be set; received: json, regex',
    });
    rejects(chat({ guided_choice: ['a'], response_format: { type: 'json_object' } }), {
      param: 'response_format',
      message: 'Only one guided-decoding constraint can be set; received: choice, response_format',
    });
  });

  test('n > 1 needs a temperature above 0', () => {
    rejects(chat({ n: 2, temperature: 0 }), {
      param: 'temperature',
      message:
        'Invalid value for "temperature": must be greater than 0 when n > 1 (got 0 with n=2)',
    });
    parseChatCompletionRequest({ model: 'm', messages: [user], n: 2 });
  });

  test('messages: unknown roles, missing and mistyped content are named by path', () => {
    rejects(chat({ messages: [user, { role: 'robot', content: 'x' }] }), {
      param: 'messages[1].role',
      message:
        'Invalid value for "messages[1].role": must be one of "system", "developer", "user", "assistant", "tool" (got "robot")',
    });
    rejects(chat({ messages: [{ role: 'user' }] }), {
      param: 'messages[0].content',
      message: 'Missing required parameter "messages[0].content"',
    });
    rejects(chat({ messages: [{ role: 'user', content: 5 }] }), {
      param: 'messages[0].content',
      message: 'Invalid value for "messages[0].content": expected string or array, got number',
    });
    rejects(chat({ messages: [{ role: 'user', content: [{ type: 'hologram' }] }] }), {
      param: 'messages[0].content[0].type',
      message: /^Invalid value for "messages\[0\]\.content\[0\]\.type": must be one of "text"/,
    });
    rejects(chat({ messages: [{ role: 'tool', content: 'x' }] }), {
      param: 'messages[0].tool_call_id',
      message: 'Missing required parameter "messages[0].tool_call_id"',
    });
  });

  test('absurd bodies are 400s, never crashes', () => {
    rejects(() => parseChatCompletionRequest(null), {
      param: null,
      message: 'Invalid request body: expected object, got null',
    });
    rejects(() => parseChatCompletionRequest([1, 2]), {
      param: null,
      message: 'Invalid request body: expected object, got array',
    });
    rejects(() => parseChatCompletionRequest({ messages: [user] }), {
      param: 'model',
      message: 'Missing required parameter "model"',
    });
    rejects(chat({ messages: 'hello' }), {
      param: 'messages',
      message: 'Invalid value for "messages": expected array, got string',
    });
    rejects(chat({ temperature: Infinity }), {
      param: 'temperature',
      message: 'Invalid value for "temperature": must be a number (got Infinity)',
    });
    rejects(chat({ seed: 2 ** 64 }), { param: 'seed', message: /^Invalid value for "seed"/ });
    const huge = 'x'.repeat(10 * 1024 * 1024);
    const error = (() => {
      try {
        parseChatCompletionRequest({ model: 'm', messages: [user], stop: [huge, ''] });
      } catch (e) {
        return e;
      }
    })();
    assert.ok(error instanceof ValidationError);
    assert.ok(error.message.length < 200, 'the message does not echo a 10 MB value');
    parseChatCompletionRequest({ model: 'm', messages: [{ role: 'user', content: huge }] });
  });
});

describe('completion validation (reference §4.2)', () => {
  test('prompt forms: none may be empty', () => {
    rejects(completion({ prompt: '' }), {
      param: 'prompt',
      message: 'Invalid value for "prompt": must not be empty (got "")',
    });
    rejects(completion({ prompt: [] }), {
      param: 'prompt',
      message: /^Invalid value for "prompt": must not be empty/,
    });
    rejects(completion({ prompt: ['a', ''] }), {
      param: 'prompt[1]',
      message: 'Invalid value for "prompt[1]": must not be empty (got "")',
    });
    rejects(completion({ prompt: [[1], []] }), {
      param: 'prompt[1]',
      message: 'Invalid value for "prompt[1]": must not be empty',
    });
    rejects(completion({ prompt: [1, -2] }), {
      param: 'prompt[1]',
      message: /must be an integer between 0 and 4294967295 \(got -2\)/,
    });
    rejects(completion({ prompt: { text: 'x' } }), {
      param: 'prompt',
      message: 'Invalid value for "prompt": expected string or array, got object',
    });
  });

  test('a long token prompt is checked by one loop and kept whole; a bad item still names itself', () => {
    const long = Array.from({ length: 5000 }, (_, i) => i % 1000);
    const parsed = parseCompletionRequest({ model: 'm', prompt: long });
    assert.equal(parsed.prompt, long, 'the same array comes back, every item');
    const batch = [long, [7, 8], long];
    assert.deepEqual(parseCompletionRequest({ model: 'm', prompt: batch }).prompt, batch);
    rejects(completion({ prompt: [...long.slice(0, 4000), -2, ...long.slice(4000)] }), {
      param: 'prompt[4000]',
      message: /must be an integer between 0 and 4294967295 \(got -2\)/,
    });
    rejects(completion({ prompt: [[1, 2], [...long.slice(0, 99), 1.5]] }), {
      param: 'prompt[1][99]',
      message: /must be an integer between 0 and 4294967295 \(got 1.5\)/,
    });
    rejects(completion({ prompt: [...long, 'text'] }), {
      param: 'prompt[5000]',
      message: /must be an integer between 0 and 4294967295 \(got "text"\)/,
    });
  });

  test('prompt or prompt_embeds is required', () => {
    rejects(() => parseCompletionRequest({ model: 'm' }), {
      param: 'prompt',
      message: "At least one of 'prompt' or 'prompt_embeds' must be provided",
    });
  });

  test('prompt_embeds must be a base64 torch.save() tensor of 100 bytes to 10 MiB', () => {
    rejects(completion({ prompt: null, prompt_embeds: 'not base64!' }), {
      param: 'prompt_embeds',
      message: 'Invalid value for "prompt_embeds": must be valid base64',
    });
    rejects(completion({ prompt: null, prompt_embeds: 'AAAA' }), {
      param: 'prompt_embeds',
      message: 'Invalid value for "prompt_embeds": must decode to at least 100 bytes (got 3)',
    });
    rejects(completion({ prompt: null, prompt_embeds: 'A'.repeat(136) }), {
      param: 'prompt_embeds',
      message:
        'Invalid value for "prompt_embeds": must be a tensor saved by torch.save(), base64-encoded',
    });
    parseCompletionRequest({ model: 'm', prompt_embeds: `UEsDBA${'A'.repeat(130)}` });
  });

  test('logprobs 0..5, best_of 0..20 and >= n, suffix <= 10000 characters', () => {
    rejects(completion({ logprobs: 6 }), {
      param: 'logprobs',
      message: 'Invalid value for "logprobs": must be an integer between 0 and 5 (got 6)',
    });
    rejects(completion({ best_of: 21 }), {
      param: 'best_of',
      message: 'Invalid value for "best_of": must be an integer between 0 and 20 (got 21)',
    });
    rejects(completion({ best_of: 1, n: 2 }), {
      param: 'best_of',
      message: 'Invalid value for "best_of": must be greater than or equal to n (got 1, n=2)',
    });
    rejects(completion({ suffix: 'x'.repeat(10001) }), {
      param: 'suffix',
      message: 'Invalid value for "suffix": must be at most 10000 characters (got 10001)',
    });
  });

  test('a batch of prompts times n is at most 128 choices', () => {
    rejects(completion({ prompt: ['a', 'b', 'c'], n: 50 }), {
      param: 'n',
      message: 'Invalid value for "n": prompts × n must be at most 128 (got 3 × 50 = 150)',
    });
    assert.equal(promptCount('a'), 1);
    assert.equal(promptCount([1, 2]), 1);
    assert.equal(promptCount([[1], [2]]), 2);
  });

  test('stream_options without stream and unknown fields are refused as for chat', () => {
    rejects(completion({ stream_options: { include_usage: true } }), {
      param: 'stream_options',
      message: "The 'stream_options' field is only allowed when 'stream' is set to true.",
    });
    rejects(completion({ messages: [] }), {
      param: 'messages',
      message: 'Unsupported parameter(s): `messages`',
    });
  });
});

describe('embedding and Responses validation (reference §4.3, §4.4)', () => {
  test('embedding input: none empty, token ids in range', () => {
    rejects(() => parseEmbeddingRequest({ model: 'm', input: [] }), {
      param: 'input',
      message: /^Invalid value for "input": must not be empty/,
    });
    rejects(() => parseEmbeddingRequest({ model: 'm', input: [[1, -1]] }), {
      param: 'input[0][1]',
      message: /must be an integer between 0 and 4294967295/,
    });
  });

  test('background runs, stored prompts and server-run tools answer 501', () => {
    const base = { model: 'm', input: 'x' };
    const cases: [Record<string, unknown>, string][] = [
      [{ background: true }, 'background'],
      [{ prompt: { id: 'pmpt_1' } }, 'prompt'],
      [{ conversation: 'conv_1' }, 'conversation'],
      [{ max_tool_calls: 3 }, 'max_tool_calls'],
      [{ nvext: { extra_fields: ['prompt_logprobs'] } }, 'nvext.extra_fields'],
    ];
    for (const [fields, param] of cases) {
      rejects(() => parseResponsesRequest({ ...base, ...fields }), {
        status: 501,
        param,
        message: new RegExp(`^"${param.replace('.', '\\.')}" is not supported`),
      });
    }
    parseResponsesRequest({ ...base, background: false, previous_response_id: null });
    // Continuing a stored response is the store's business (404 when it is not there).
    parseResponsesRequest({ ...base, previous_response_id: 'resp_1' });
  });

  test('temperature, top_p and max_output_tokens ranges; text.format rules', () => {
    rejects(() => parseResponsesRequest({ model: 'm', input: 'x', temperature: 3 }), {
      param: 'temperature',
      message: 'Invalid value for "temperature": must be between 0 and 2 (got 3)',
    });
    rejects(() => parseResponsesRequest({ model: 'm', input: 'x', top_p: 2 }), {
      param: 'top_p',
      message: 'Invalid value for "top_p": must be between 0 and 1 (got 2)',
    });
    rejects(() => parseResponsesRequest({ model: 'm', input: 'x', max_output_tokens: 0 }), {
      param: 'max_output_tokens',
      message: /^Invalid value for "max_output_tokens": must be an integer between 1/,
    });
    rejects(
      () =>
        parseResponsesRequest({
          model: 'm',
          input: 'x',
          text: { format: { type: 'json_schema', name: 'x', schema: false } },
        }),
      { param: 'text.format.schema', message: /cannot be false/ },
    );
  });

  test('input items: the closest item shape names the field', () => {
    rejects(
      () =>
        parseResponsesRequest({
          model: 'm',
          input: [{ role: 'user', content: 'x' }, { type: 'function_call', name: 'f' }],
        }),
      { param: 'input[1].call_id', message: 'Missing required parameter "input[1].call_id"' },
    );
    rejects(
      () => parseResponsesRequest({ model: 'm', input: [{ role: 'wizard', content: 'x' }] }),
      { param: 'input[0].role', message: /^Invalid value for "input\[0\]\.role": must be one of/ },
    );
  });
});

describe('validation helpers', () => {
  test('formatParamPath() writes indices in brackets', () => {
    assert.equal(
      formatParamPath(['messages', 0, 'content', 2, 'text']),
      'messages[0].content[2].text',
    );
    assert.equal(formatParamPath([]), '');
  });

  test('issuesToValidationError() reports the first issue against the input', () => {
    const error = issuesToValidationError(
      [{ code: 'invalid_type', path: ['a', 1], message: 'Invalid input', expected: 'number' } as {
        code: string;
        path: PropertyKey[];
        message: string;
      }],
      { a: [0, 'x'] },
    );
    assert.equal(error.param, 'a[1]');
    assert.equal(error.message, 'Invalid value for "a[1]": expected number, got string');
  });

  test('checkUnsupportedFields() returns the same object when nothing is unknown', () => {
    const body = { a: 1 };
    assert.equal(checkUnsupportedFields(body, new Set(['a'])), body);
  });
});
