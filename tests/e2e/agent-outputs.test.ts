/**
 * Tool calls, reasoning and structured outputs end to end, through the real frontend and the
 * official `openai` and `@anthropic-ai/sdk` clients, against simulated workers that answer what
 * the prompt marks (`--echo-marked`) and register Qwen3's parsers (`--dyn-tool-call-parser
 * hermes --dyn-reasoning-parser qwen3`). The workers stream one token per step, so every marker
 * and argument arrives split across many chunks; the SDKs' own stream accumulation must come
 * out right.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import Anthropic from '@anthropic-ai/sdk';
import OpenAI from 'openai';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { currentRuntime } from '../helpers/process.ts';
import { MODEL, type Stack, startStack } from '../helpers/stack.ts';
import { tempDir } from './_workers.ts';
import { loadOpenAISpec } from '../helpers/openai-spec.ts';
import { readSse } from '../helpers/stack.ts';

const spec = loadOpenAISpec();

const PLAIN = 'plain-model';
const SCRIPTED = 'scripted-model';

const say = (text: string) => `Please answer. [[say]]${text}[[/say]]`;
const weatherTool = {
  type: 'function' as const,
  function: {
    name: 'get_weather',
    description: 'Weather of a city',
    parameters: {
      type: 'object',
      properties: { city: { type: 'string' }, days: { type: 'integer' } },
      required: ['city'],
    },
  },
};
const timeTool = {
  type: 'function' as const,
  function: { name: 'get_time', parameters: { type: 'object', properties: {} } },
};
const TWO_CALLS = '<think>\nThe user wants weather and time.\n</think>\n\nLet me check.\n' +
  '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris", "days": 3}}\n</tool_call>\n' +
  '<tool_call>\n{"name": "get_time", "arguments": {"tz": "Europe/Paris"}}\n</tool_call>';

describe(`tool calls, reasoning and structured outputs on ${currentRuntime()}`, () => {
  let stack: Stack;
  let openai: OpenAI;
  let anthropic: Anthropic;
  before(async () => {
    const script = join(await tempDir('script'), 'script.json');
    await writeFile(
      script,
      JSON.stringify({
        rules: [
          { match: '<tool_response>\\s*(\\w+)', output: 'It is $1 there.' },
          {
            match: 'Weather in (\\w+)',
            output:
              '<tool_call>\n{"name": "get_weather", "arguments": {"city": "$1"}}\n</tool_call>',
          },
        ],
      }),
    );
    stack = await startStack({
      frontendArgs: ['--enable-anthropic-api'],
      mockers: [
        {
          args: [
            '--echo-marked',
            '--dyn-tool-call-parser',
            'hermes',
            '--dyn-reasoning-parser',
            'qwen3',
          ],
        },
        { name: PLAIN, args: ['--echo-marked'] },
        { name: SCRIPTED, args: ['--script', script, '--dyn-tool-call-parser', 'hermes'] },
      ],
    });
    openai = new OpenAI({ baseURL: `${stack.url}/v1`, apiKey: 'unused', maxRetries: 0 });
    anthropic = new Anthropic({ baseURL: stack.url, apiKey: 'unused', maxRetries: 0 });
  });
  after(async () => {
    await stack?.close();
  });

  test('chat, streamed: reasoning_content deltas, then parallel tool_calls the SDK accumulates', async () => {
    const stream = openai.chat.completions.stream({
      model: MODEL,
      messages: [{ role: 'user', content: say(TWO_CALLS) }],
      tools: [weatherTool, timeTool],
    });
    let reasoning = '';
    let argumentPieces = 0;
    for await (const chunk of stream) {
      const delta = chunk.choices[0]?.delta as
        | { reasoning_content?: string } & typeof chunk.choices[0]['delta']
        | undefined;
      reasoning += delta?.reasoning_content ?? '';
      for (const call of delta?.tool_calls ?? []) {
        if (call.function?.arguments) argumentPieces++;
      }
    }
    const done = await stream.finalChatCompletion();
    const choice = done.choices[0]!;
    assert.equal(reasoning, 'The user wants weather and time.\n');
    assert.equal(choice.finish_reason, 'tool_calls');
    assert.equal(choice.message.content, 'Let me check.\n');
    const calls = choice.message.tool_calls ?? [];
    assert.deepEqual(
      calls.map((c) =>
        c.type === 'function' ? [c.function.name, JSON.parse(c.function.arguments)] : []
      ),
      [['get_weather', { city: 'Paris', days: 3 }], ['get_time', { tz: 'Europe/Paris' }]],
    );
    assert.ok(calls.every((c) => /^call_/.test(c.id)));
    assert.notEqual(calls[0]?.id, calls[1]?.id);
    assert.ok(argumentPieces > 4, `arguments streamed in pieces (${argumentPieces})`);
  });

  test('chat, unary: the same answer folded; tool_choice none leaves the text alone', async () => {
    const done = await openai.chat.completions.create({
      model: MODEL,
      messages: [{ role: 'user', content: say(TWO_CALLS) }],
      tools: [weatherTool, timeTool],
    });
    const message = done.choices[0]!.message as typeof done.choices[0]['message'] & {
      reasoning_content?: string;
    };
    assert.equal(message.reasoning_content, 'The user wants weather and time.\n');
    assert.equal(message.tool_calls?.length, 2);
    assert.equal(done.choices[0]!.finish_reason, 'tool_calls');

    const none = await openai.chat.completions.create({
      model: MODEL,
      messages: [{
        role: 'user',
        content: say('<tool_call>{"name": "x", "arguments": {}}</tool_call>'),
      }],
      tools: [weatherTool],
      tool_choice: 'none',
    });
    assert.equal(
      none.choices[0]!.message.content,
      '<tool_call>{"name": "x", "arguments": {}}</tool_call>',
    );
    assert.equal(none.choices[0]!.message.tool_calls, undefined);
  });

  test('a model card without parsers streams the text as it is', async () => {
    const done = await openai.chat.completions.create({
      model: PLAIN,
      messages: [{ role: 'user', content: say('<think>a</think>b') }],
      tools: [weatherTool],
    });
    assert.equal(done.choices[0]!.message.content, '<think>a</think>b');
  });

  test('tool_choice required and named: guided JSON the worker honours, parsed into calls', async () => {
    const required = await openai.chat.completions.create({
      model: MODEL,
      messages: [{ role: 'user', content: 'Weather?' }],
      tools: [weatherTool],
      tool_choice: 'required',
    });
    const [call] = required.choices[0]!.message.tool_calls ?? [];
    assert.equal(call?.type === 'function' && call.function.name, 'get_weather');
    assert.deepEqual(call?.type === 'function' && JSON.parse(call.function.arguments), {
      city: 'text',
      days: 1,
    });

    const named = openai.chat.completions.stream({
      model: MODEL,
      messages: [{ role: 'user', content: say('{"city": "Oslo"}') }],
      tools: [weatherTool, timeTool],
      tool_choice: { type: 'function', function: { name: 'get_weather' } },
    });
    const final = await named.finalChatCompletion();
    const [only] = final.choices[0]!.message.tool_calls ?? [];
    assert.equal(only?.type === 'function' && only.function.name, 'get_weather');
    assert.deepEqual(only?.type === 'function' && JSON.parse(only.function.arguments), {
      city: 'Oslo',
    });
  });

  test('response_format json_schema reaches the worker as guided JSON (chat and completions)', async () => {
    const schema = {
      type: 'object',
      properties: { answer: { type: 'string', enum: ['yes', 'no'] }, score: { type: 'number' } },
      required: ['answer', 'score'],
    };
    const chat = await openai.chat.completions.create({
      model: MODEL,
      messages: [{ role: 'user', content: 'Is it?' }],
      response_format: { type: 'json_schema', json_schema: { name: 'verdict', schema } },
    });
    assert.deepEqual(JSON.parse(chat.choices[0]!.message.content ?? ''), {
      answer: 'yes',
      score: 1,
    });
    const object = await openai.chat.completions.create({
      model: MODEL,
      messages: [{ role: 'user', content: 'JSON please' }],
      response_format: { type: 'json_object' },
    });
    assert.deepEqual(JSON.parse(object.choices[0]!.message.content ?? ''), {});
    const completion = await openai.completions.create({
      model: MODEL,
      prompt: 'Pick one:',
      // Dynamo's extension, not in the SDK's types: sent as an extra body field.
      ...({ guided_choice: ['red', 'green'] } as object),
    });
    assert.equal(completion.choices[0]!.text, 'red');
  });

  test('a constraint the workers cannot honour is a clear 400, never free text', async () => {
    for (
      const extra of [
        { guided_regex: '[a-z]+' },
        { guided_grammar: 'root ::= "a"' },
      ]
    ) {
      const error = await openai.chat.completions.create({
        model: MODEL,
        messages: [{ role: 'user', content: 'x' }],
        ...(extra as object),
      }).then(() => undefined, (e: unknown) => e);
      assert.ok(error instanceof OpenAI.BadRequestError, String(error));
      assert.equal((error.error as { code?: string }).code, 'guided_decoding_unsupported');
      assert.match(error.message, /cannot honour guided_(regex|grammar).*support: json, choice/);
    }
    const both = await openai.chat.completions.create({
      model: MODEL,
      messages: [{ role: 'user', content: 'x' }],
      tools: [weatherTool],
      tool_choice: 'required',
      response_format: { type: 'json_object' },
    }).then(() => undefined, (e: unknown) => e);
    assert.ok(both instanceof OpenAI.BadRequestError);
    assert.match(both.message, /Only one guided-decoding constraint/);
  });

  test('Responses, streamed and not: reasoning and function_call items from the same parser', async () => {
    const tools = [{
      type: 'function' as const,
      name: 'get_weather',
      parameters: weatherTool.function.parameters,
      strict: false,
    }];
    const unary = await openai.responses.create({ model: MODEL, input: say(TWO_CALLS), tools });
    assert.deepEqual(unary.output.map((o) => o.type), [
      'reasoning',
      'function_call',
      'function_call',
      'message',
    ]);
    const thought = unary.output[0];
    assert.equal(
      thought?.type === 'reasoning' && thought.content?.[0]?.text,
      'The user wants weather and time.\n',
    );
    const calls = unary.output.filter((o) => o.type === 'function_call');
    assert.deepEqual(calls.map((c) => c.type === 'function_call' && c.name), [
      'get_weather',
      'get_time',
    ]);
    const message = unary.output.find((o) => o.type === 'message');
    assert.equal(
      message?.type === 'message' && message.content[0]?.type === 'output_text' &&
        message.content[0].text,
      'Let me check.\n',
    );

    const stream = openai.responses.stream({ model: MODEL, input: say(TWO_CALLS), tools });
    let deltas = 0;
    for await (const event of stream) {
      if (event.type === 'response.function_call_arguments.delta') deltas++;
    }
    const final = await stream.finalResponse();
    assert.equal(final.output[0]?.type, 'reasoning');
    const streamed = final.output.filter((o) => o.type === 'function_call');
    assert.deepEqual(
      streamed.map((c) => c.type === 'function_call' && JSON.parse(c.arguments)),
      [{ city: 'Paris', days: 3 }, { tz: 'Europe/Paris' }],
    );
    assert.ok(deltas > 4, `argument deltas: ${deltas}`);
  });

  test('Anthropic Messages, streamed: thinking and tool_use blocks the SDK accumulates', async () => {
    const stream = anthropic.messages.stream({
      model: MODEL,
      max_tokens: 400,
      messages: [{ role: 'user', content: say(TWO_CALLS) }],
      tools: [
        { name: 'get_weather', input_schema: { type: 'object', properties: {} } },
        { name: 'get_time', input_schema: { type: 'object', properties: {} } },
      ],
    });
    let jsonDeltas = 0;
    stream.on('inputJson', () => jsonDeltas++);
    const message = await stream.finalMessage();
    assert.deepEqual(message.content.map((b) => b.type), [
      'thinking',
      'text',
      'tool_use',
      'tool_use',
    ]);
    const [thinking, text, weather, time] = message.content;
    assert.equal(
      thinking?.type === 'thinking' && thinking.thinking,
      'The user wants weather and time.\n',
    );
    assert.equal(text?.type === 'text' && text.text, 'Let me check.\n');
    assert.deepEqual(weather?.type === 'tool_use' && [weather.name, weather.input], [
      'get_weather',
      { city: 'Paris', days: 3 },
    ]);
    assert.deepEqual(time?.type === 'tool_use' && [time.name, time.input], [
      'get_time',
      { tz: 'Europe/Paris' },
    ]);
    assert.equal(message.stop_reason, 'tool_use');
    assert.ok(jsonDeltas > 4, `input_json deltas: ${jsonDeltas}`);
  });

  test('--script: a whole tool round trip (call, tool result, answer) with the SDK', async () => {
    const messages: OpenAI.ChatCompletionMessageParam[] = [
      { role: 'user', content: 'Weather in Lisbon, please.' },
    ];
    const first = await openai.chat.completions.create({
      model: SCRIPTED,
      messages,
      tools: [weatherTool],
    });
    const call = first.choices[0]!.message.tool_calls?.[0];
    assert.ok(call?.type === 'function');
    assert.deepEqual(JSON.parse(call.function.arguments), { city: 'Lisbon' });
    messages.push(first.choices[0]!.message, {
      role: 'tool',
      tool_call_id: call.id,
      content: 'sunny',
    });
    const second = await openai.chat.completions.create({
      model: SCRIPTED,
      messages,
      tools: [weatherTool],
    });
    assert.equal(second.choices[0]!.message.content, 'It is sunny there.');
    assert.equal(second.choices[0]!.finish_reason, 'stop');
  });

  test('Responses text.format json_schema is guided JSON too', async () => {
    const response = await openai.responses.create({
      model: MODEL,
      input: 'Verdict?',
      text: {
        format: {
          type: 'json_schema',
          name: 'verdict',
          schema: { type: 'object', properties: { ok: { type: 'boolean' } }, required: ['ok'] },
        },
      },
    });
    assert.deepEqual(JSON.parse(response.output_text), { ok: true });
  });

  test('agent_hints that do nothing here are refused with a 501, from the body or a header', async () => {
    for (
      const [body, headers] of [
        [{ nvext: { agent_hints: { strict_priority: 1 } } }, {}],
        [{ nvext: { agent_hints: { speculative_prefill: true } } }, {}],
        [{}, { 'x-dynamo-request-strict-priority': '3' }],
      ] as const
    ) {
      const res = await stack.post('/v1/chat/completions', {
        model: MODEL,
        messages: [{ role: 'user', content: 'hi' }],
        ...body,
      }, headers);
      assert.equal(res.status, 501);
      const error = (await res.json() as { error: { message: string; param: string } }).error;
      assert.match(error.param, /^nvext\.agent_hints\.(strict_priority|speculative_prefill)$/);
      assert.match(error.message, /is not supported/);
    }
  });

  test("chat answers with tool calls and reasoning conform to OpenAI's schemas", async () => {
    const body = {
      model: MODEL,
      messages: [{ role: 'user', content: say(TWO_CALLS) }],
      tools: [weatherTool, timeTool],
    };
    const unary = await (await stack.post('/v1/chat/completions', body)).json();
    assert.deepEqual(spec.validateAgainstSpec('CreateChatCompletionResponse', unary), []);
    const streamed = await readSse(
      await stack.post('/v1/chat/completions', { ...body, stream: true }),
    );
    assert.ok(streamed.done);
    for (const chunk of streamed.chunks) {
      assert.deepEqual(
        spec.validateAgainstSpec('CreateChatCompletionStreamResponse', chunk),
        [],
        JSON.stringify(chunk),
      );
    }
  });

  test('Anthropic tool_choice any and tool: guided JSON, answered as tool_use blocks', async () => {
    const tools = [{
      name: 'get_weather',
      input_schema: {
        type: 'object' as const,
        properties: { city: { type: 'string' } },
        required: ['city'],
      },
    }];
    const any = await anthropic.messages.create({
      model: MODEL,
      max_tokens: 100,
      messages: [{ role: 'user', content: 'Weather?' }],
      tools,
      tool_choice: { type: 'any' },
    });
    assert.deepEqual(
      any.content.map((b) => b.type === 'tool_use' ? [b.name, b.input] : b.type),
      [['get_weather', { city: 'text' }]],
    );
    assert.equal(any.stop_reason, 'tool_use');
    const named = await anthropic.messages.create({
      model: MODEL,
      max_tokens: 100,
      messages: [{ role: 'user', content: say('{"city": "Bergen"}') }],
      tools,
      tool_choice: { type: 'tool', name: 'get_weather' },
    });
    const [block] = named.content;
    assert.deepEqual(block?.type === 'tool_use' && block.input, { city: 'Bergen' });
  });
});
