/**
 * The Anthropic Messages API end to end with the official `@anthropic-ai/sdk` client, unchanged,
 * against the frontend and simulated workers in this process: unary and streamed messages, the
 * raw SSE event sequence, stop reasons, a multi-turn conversation with tools, tool results and
 * thinking, count_tokens by the model's tokenizer, errors in Anthropic's envelope, and 404 for
 * every route when the API is not enabled.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import Anthropic from '@anthropic-ai/sdk';
import { currentRuntime } from '../helpers/process.ts';
import { MODEL, type Stack, startStack } from '../helpers/stack.ts';

const user = (content: string) => ({ role: 'user' as const, content });

/** Every token of the mocker is one word: a space and 3 to 9 lower-case letters. */
const WORDS = /^[a-z]{3,9}( [a-z]{3,9})*$/;

/** The `event:` / `data:` pairs of an SSE body, in order. */
function sseEvents(text: string): Array<{ event?: string; data: string }> {
  return text.split('\n\n').filter((f) => f.trim() !== '').map((frame) => {
    const lines = frame.split('\n');
    const event = lines.find((l) => l.startsWith('event:'))?.slice(6).trim();
    const data = lines.filter((l) => l.startsWith('data:')).map((l) => l.slice(5).trim()).join(
      '\n',
    );
    return { ...(event !== undefined ? { event } : {}), data };
  });
}

async function expectApiError(
  promise: Promise<unknown>,
  status: number,
  type: string,
): Promise<string> {
  try {
    await promise;
  } catch (error) {
    assert.ok(error instanceof Anthropic.APIError, String(error));
    assert.equal(error.status, status, error.message);
    const body = error.error as { type: string; error: { type: string; message: string } };
    assert.equal(body.type, 'error');
    assert.equal(body.error.type, type);
    return body.error.message;
  }
  assert.fail(`expected a ${status} ${type}`);
}

describe(`Anthropic Messages API on ${currentRuntime()}`, () => {
  let stack: Stack;
  let client: Anthropic;
  before(async () => {
    stack = await startStack({ frontendArgs: ['--enable-anthropic-api'] });
    client = new Anthropic({ baseURL: stack.url, apiKey: 'unused', maxRetries: 0 });
  });
  after(async () => {
    await stack?.close();
  });

  test('a unary message: text block, max_tokens stop, usage that count_tokens agrees with', async () => {
    const request = {
      model: MODEL,
      max_tokens: 8,
      system: 'You are terse.',
      messages: [user('Tell me a story')],
    };
    const message = await client.messages.create(request);
    assert.match(message.id, /^msg_/);
    assert.equal(message.type, 'message');
    assert.equal(message.role, 'assistant');
    assert.equal(message.model, MODEL);
    assert.equal(message.stop_reason, 'max_tokens');
    assert.equal(message.stop_sequence, null);
    assert.equal(message.content.length, 1);
    const [block] = message.content;
    assert.equal(block?.type, 'text');
    assert.match((block as Anthropic.TextBlock).text, WORDS);
    assert.equal(message.usage.output_tokens, 8);

    const counted = await client.messages.countTokens({
      model: MODEL,
      system: request.system,
      messages: request.messages,
    });
    assert.equal(counted.input_tokens, message.usage.input_tokens);
    // The same chat through the OpenAI route renders the same prompt.
    const chat = await stack.post('/v1/chat/completions', {
      model: MODEL,
      max_tokens: 1,
      messages: [{ role: 'system', content: 'You are terse.' }, user('Tell me a story')],
    });
    const usage = (await chat.json() as { usage: { prompt_tokens: number } }).usage;
    assert.equal(usage.prompt_tokens, counted.input_tokens);
  });

  test('a streamed message through the SDK helper folds into the same shape', async () => {
    const stream = client.messages.stream({
      model: MODEL,
      max_tokens: 10,
      messages: [user('Tell me a story')],
    });
    let text = '';
    stream.on('text', (delta) => {
      text += delta;
    });
    const message = await stream.finalMessage();
    assert.equal(message.stop_reason, 'max_tokens');
    assert.equal(message.usage.output_tokens, 10);
    assert.ok(message.usage.input_tokens > 0);
    assert.equal(message.content.length, 1);
    assert.equal((message.content[0] as Anthropic.TextBlock).text, text);
    assert.match(text, WORDS);
  });

  test('the raw stream: every event named after its type, in the documented order', async () => {
    const res = await stack.post('/v1/messages', {
      model: MODEL,
      max_tokens: 6,
      stream: true,
      messages: [user('hi')],
    });
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type') ?? '', /^text\/event-stream/);
    const frames = sseEvents(await res.text());
    assert.deepEqual(frames.at(-1), { data: '[DONE]' });
    const events = frames.slice(0, -1).map((f) => {
      const data = JSON.parse(f.data) as { type: string } & Record<string, unknown>;
      assert.equal(f.event, data.type);
      return data;
    });
    const types = events.map((e) => e.type);
    assert.deepEqual(types.slice(0, 3), ['message_start', 'ping', 'content_block_start']);
    assert.deepEqual(types.slice(-3), ['content_block_stop', 'message_delta', 'message_stop']);
    assert.ok(
      types.slice(3, -3).every((t) => t === 'content_block_delta'),
      types.join(),
    );
    const start = events[0] as unknown as { message: Anthropic.Message };
    assert.deepEqual(start.message.content, []);
    assert.equal(start.message.stop_reason, null);
    assert.equal(start.message.usage.output_tokens, 0);
    const delta = events.at(-2) as unknown as {
      delta: { stop_reason: string; stop_sequence: null };
      usage: { input_tokens: number; output_tokens: number };
    };
    assert.deepEqual(delta.delta, { stop_reason: 'max_tokens', stop_sequence: null });
    assert.equal(delta.usage.output_tokens, 6);
    assert.equal(delta.usage.input_tokens, start.message.usage.input_tokens);
  });

  test('the SDK iterates raw stream events', async () => {
    const stream = await client.messages.create({
      model: MODEL,
      max_tokens: 4,
      stream: true,
      messages: [user('hi')],
    });
    const types: string[] = [];
    for await (const event of stream) types.push(event.type);
    assert.equal(types[0], 'message_start');
    assert.equal(types.at(-1), 'message_stop');
    assert.ok(types.includes('content_block_delta'));
  });

  test('a stop sequence ends the turn with stop_reason stop_sequence', async () => {
    // Every mocker token starts with a space: the first one matches.
    const message = await client.messages.create({
      model: MODEL,
      max_tokens: 8,
      stop_sequences: [' '],
      messages: [user('hi')],
    });
    assert.equal(message.stop_reason, 'stop_sequence');
    assert.equal(message.stop_sequence, ' ');
    assert.deepEqual(message.content, []);
    const streamed = await client.messages.stream({
      model: MODEL,
      max_tokens: 8,
      stop_sequences: ['zzzz', ' '],
      messages: [user('hi')],
    }).finalMessage();
    assert.equal(streamed.stop_reason, 'stop_sequence');
    assert.equal(streamed.stop_sequence, ' ');
  });

  test('a multi-turn conversation with tools, tool_use, tool_result and thinking blocks', async () => {
    const tools: Anthropic.Tool[] = [{
      name: 'get_weather',
      description: 'Weather of a city',
      input_schema: {
        type: 'object',
        properties: { city: { type: 'string' } },
        required: ['city'],
      },
    }];
    const messages: Anthropic.MessageParam[] = [
      user('What is the weather in Paris?'),
      {
        role: 'assistant',
        content: [
          { type: 'thinking', thinking: 'I should call the tool.', signature: 'sig' },
          { type: 'text', text: 'Let me check.' },
          { type: 'tool_use', id: 'toolu_1', name: 'get_weather', input: { city: 'Paris' } },
        ],
      },
      {
        role: 'user',
        content: [
          { type: 'tool_result', tool_use_id: 'toolu_1', content: [{ type: 'text', text: '21C' }] },
          { type: 'text', text: 'And tomorrow?' },
        ],
      },
    ];
    const system = [{ type: 'text' as const, text: 'Be brief.' }, {
      type: 'text' as const,
      text: 'Use tools.',
    }];
    const message = await client.messages.create({
      model: MODEL,
      max_tokens: 5,
      system,
      tools,
      tool_choice: { type: 'auto' },
      thinking: { type: 'enabled', budget_tokens: 1024 },
      messages,
    });
    assert.equal(message.stop_reason, 'max_tokens');
    assert.equal(message.usage.output_tokens, 5);

    const withTools = await client.messages.countTokens({ model: MODEL, system, tools, messages });
    const without = await client.messages.countTokens({ model: MODEL, system, messages });
    assert.ok(withTools.input_tokens > without.input_tokens, 'tool definitions are counted');
    const first = await client.messages.countTokens({
      model: MODEL,
      messages: messages.slice(0, 1),
    });
    assert.ok(without.input_tokens > first.input_tokens);

    // A named tool that is not declared is refused by the chat rules.
    await expectApiError(
      client.messages.create({
        model: MODEL,
        max_tokens: 5,
        tools,
        tool_choice: { type: 'tool', name: 'nope' },
        messages: [user('hi')],
      }),
      400,
      'invalid_request_error',
    );
  });

  test("invalid requests are 400 invalid_request_error in Anthropic's envelope", async () => {
    const cases: Array<[unknown, RegExp]> = [
      [{ model: MODEL, max_tokens: 0, messages: [user('hi')] }, /max_tokens: must be greater/],
      [{ model: MODEL, max_tokens: 5, messages: [] }, /messages: field required/],
      [
        { model: MODEL, max_tokens: 5, messages: [{ role: 'user', content: [] }] },
        /must contain at least one content block/,
      ],
      [
        { model: MODEL, max_tokens: 5, messages: [{ role: 'user', content: [{ type: 'video' }] }] },
        /content block type "video" is not supported/,
      ],
      [
        {
          model: MODEL,
          max_tokens: 5,
          messages: [user('hi')],
          tools: [{ type: 'web_search_20250305', name: 'web_search' }],
        },
        /server tool type "web_search_20250305" is not supported/,
      ],
      [{ model: MODEL, messages: [user('hi')] }, /max_tokens/],
    ];
    for (const [body, message] of cases) {
      const text = await expectApiError(
        client.messages.create(body as Anthropic.MessageCreateParamsNonStreaming),
        400,
        'invalid_request_error',
      );
      assert.match(text, message);
    }
    const raw = await stack.post('/v1/messages', '{not json');
    assert.equal(raw.status, 400);
    assert.equal((await raw.json() as { type: string }).type, 'error');
  });

  test('an unknown model is a 404 not_found_error on both routes', async () => {
    const message = await expectApiError(
      client.messages.create({ model: 'no-such-model', max_tokens: 5, messages: [user('hi')] }),
      404,
      'not_found_error',
    );
    assert.match(message, /"no-such-model"/);
    await expectApiError(
      client.messages.countTokens({ model: 'no-such-model', messages: [user('hi')] }),
      404,
      'not_found_error',
    );
  });

  test('/openapi.json documents both routes', async () => {
    const doc = await (await fetch(`${stack.url}/openapi.json`)).json() as {
      paths: Record<string, { post?: unknown }>;
    };
    assert.ok(doc.paths['/v1/messages']?.post);
    assert.ok(doc.paths['/v1/messages/count_tokens']?.post);
  });
});

describe(`Anthropic Messages API disabled (the default) on ${currentRuntime()}`, () => {
  test('both routes answer 404 and are not documented', async () => {
    const stack = await startStack({ mockers: [] });
    try {
      const client = new Anthropic({ baseURL: stack.url, apiKey: 'unused', maxRetries: 0 });
      await assert.rejects(
        client.messages.create({ model: MODEL, max_tokens: 5, messages: [user('hi')] }),
        (error) => error instanceof Anthropic.NotFoundError,
      );
      const count = await stack.post('/v1/messages/count_tokens', {
        model: MODEL,
        messages: [user('hi')],
      });
      assert.equal(count.status, 404);
      await count.body?.cancel();
      const doc = await (await fetch(`${stack.url}/openapi.json`)).json() as {
        paths: Record<string, unknown>;
      };
      assert.equal(doc.paths['/v1/messages'], undefined);
    } finally {
      await stack.close();
    }
  });
});
