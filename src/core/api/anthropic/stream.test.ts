import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { ChatCompletionChunk } from '../openai/schemas.ts';
import {
  foldMessage,
  type MessagesStreamEvent,
  type MessagesStreamOptions,
  toMessagesEvents,
} from './stream.ts';

type Choice = Record<string, unknown>;

/** Chat chunks: one per text delta, then the finish, then the usage chunk. */
function chunks(
  deltas: Array<string | Choice>,
  end: { finish?: string; stopReason?: string; usage?: Record<string, unknown> } = {},
): AsyncIterable<ChatCompletionChunk> {
  const base = { id: 'c', object: 'chat.completion.chunk', created: 0, model: 'm' };
  const list: unknown[] = deltas.map((d) => ({
    ...base,
    choices: [{
      index: 0,
      delta: typeof d === 'string' ? { content: d } : d,
      finish_reason: null,
    }],
  }));
  list.push({
    ...base,
    choices: [{
      index: 0,
      delta: {},
      finish_reason: end.finish ?? 'stop',
      ...(end.stopReason !== undefined ? { stop_reason: end.stopReason } : {}),
    }],
  });
  if (end.usage) list.push({ ...base, choices: [], usage: end.usage });
  return (async function* () {
    yield* list as ChatCompletionChunk[];
  })();
}

let ids = 0;
const options = (over: Partial<MessagesStreamOptions> = {}): MessagesStreamOptions => ({
  id: 'msg_1',
  model: 'm',
  inputTokens: 7,
  newId: () => `id-${++ids}`,
  ...over,
});

async function all(events: AsyncIterable<MessagesStreamEvent>): Promise<MessagesStreamEvent[]> {
  const out: MessagesStreamEvent[] = [];
  for await (const e of events) out.push(e);
  return out;
}

const usage = { prompt_tokens: 7, completion_tokens: 3, total_tokens: 10 };

describe('toMessagesEvents()', () => {
  test('text: message_start, ping, one text block, message_delta with usage, message_stop', async () => {
    const events = await all(toMessagesEvents(chunks([' Hello', ' world'], { usage }), options()));
    assert.deepEqual(events.map((e) => e.type), [
      'message_start',
      'ping',
      'content_block_start',
      'content_block_delta',
      'content_block_delta',
      'content_block_stop',
      'message_delta',
      'message_stop',
    ]);
    assert.deepEqual(events[0], {
      type: 'message_start',
      message: {
        id: 'msg_1',
        type: 'message',
        role: 'assistant',
        model: 'm',
        content: [],
        stop_reason: null,
        stop_sequence: null,
        usage: { input_tokens: 7, output_tokens: 0, cache_creation_input_tokens: 0 },
      },
    });
    // A block does not start with the whitespace the model put first.
    assert.deepEqual(events[3], {
      type: 'content_block_delta',
      index: 0,
      delta: { type: 'text_delta', text: 'Hello' },
    });
    assert.deepEqual(events[6], {
      type: 'message_delta',
      delta: { stop_reason: 'end_turn', stop_sequence: null },
      usage: { input_tokens: 7, output_tokens: 3 },
    });
  });

  test('thinking then text then a tool call, folded into the unary message', async () => {
    const message = await foldMessage(toMessagesEvents(
      chunks([
        { reasoning_content: 'Need the ' },
        { reasoning_content: 'weather.' },
        'Checking.\n',
        {
          tool_calls: [{
            index: 0,
            id: 'call_x',
            type: 'function',
            function: { name: 'get_weather', arguments: '' },
          }],
        },
        { tool_calls: [{ index: 0, function: { arguments: '{"city": ' } }] },
        { tool_calls: [{ index: 0, function: { arguments: '"Paris"}' } }] },
      ], { usage, finish: 'tool_calls' }),
      options(),
    ));
    assert.equal(message.stop_reason, 'tool_use');
    assert.equal(message.content.length, 3);
    assert.deepEqual(message.content[0], {
      type: 'thinking',
      thinking: 'Need the weather.',
      signature: 'erased',
    });
    assert.deepEqual(message.content[1], { type: 'text', text: 'Checking.\n' });
    const tool = message.content[2];
    assert.equal(tool?.type, 'tool_use');
    assert.match((tool as { id: string }).id, /^toolu_id\d+$/);
    assert.deepEqual((tool as { input: unknown }).input, { city: 'Paris' });
    assert.deepEqual(message.usage, {
      input_tokens: 7,
      output_tokens: 3,
      cache_creation_input_tokens: 0,
    });
  });

  test('the thinking block closes with signature_delta "erased"; tool arguments stream as json deltas; thinking can be turned off', async () => {
    const deltas = [
      { reasoning_content: 'a' },
      { tool_calls: [{ index: 0, id: 'c', function: { name: 'f', arguments: '{"k":' } }] },
      { tool_calls: [{ index: 0, function: { arguments: '"v"}' } }] },
      { tool_calls: [{ index: 1, id: 'd', function: { name: 'g', arguments: '{}' } }] },
    ];
    const events = await all(toMessagesEvents(chunks(deltas), options()));
    const shown = events.filter((e) =>
      e.type === 'content_block_delta' || e.type === 'content_block_start' ||
      e.type === 'content_block_stop'
    ).map((e) =>
      e.type === 'content_block_delta'
        ? [e.index, e.delta]
        : e.type === 'content_block_start'
        ? [e.index, e.content_block.type]
        : [e.index, 'stop']
    );
    assert.deepEqual(shown, [
      [0, 'thinking'],
      [0, { type: 'thinking_delta', thinking: 'a' }],
      [0, { type: 'signature_delta', signature: 'erased' }],
      [0, 'stop'],
      [1, 'tool_use'],
      [1, { type: 'input_json_delta', partial_json: '{"k":' }],
      [1, { type: 'input_json_delta', partial_json: '"v"}' }],
      [1, 'stop'],
      [2, 'tool_use'],
      [2, { type: 'input_json_delta', partial_json: '{}' }],
      [2, 'stop'],
    ]);
    const quiet = await foldMessage(
      toMessagesEvents(chunks(deltas), options({ parseThinking: false })),
    );
    assert.deepEqual(quiet.content.map((b) => b.type), ['tool_use', 'tool_use']);
  });

  test('stop reasons: length, a matched stop sequence, end_turn, tool_calls, content_filter', async () => {
    const stopOf = async (
      end: Parameters<typeof chunks>[1],
      over: Partial<MessagesStreamOptions> = {},
    ) => {
      const m = await foldMessage(toMessagesEvents(chunks(['x'], end), options(over)));
      return [m.stop_reason, m.stop_sequence];
    };
    assert.deepEqual(await stopOf({ finish: 'length' }), ['max_tokens', null]);
    assert.deepEqual(
      await stopOf({ finish: 'stop', stopReason: 'END' }, { stopSequences: ['END'] }),
      ['stop_sequence', 'END'],
    );
    // A stop id (EOS) is not one of the request's stop sequences.
    assert.deepEqual(await stopOf({ finish: 'stop' }, { stopSequences: ['END'] }), [
      'end_turn',
      null,
    ]);
    assert.deepEqual(await stopOf({ finish: 'tool_calls' }), ['tool_use', null]);
    assert.deepEqual(await stopOf({ finish: 'content_filter' }), ['refusal', null]);
  });

  test('reasoning_content and tool_calls deltas are used as they come (ids minted as toolu_)', async () => {
    const message = await foldMessage(toMessagesEvents(
      chunks([
        { reasoning_content: 'hmm' },
        { content: 'ok' },
        { tool_calls: [{ index: 0, id: 'call_1', function: { name: 'f', arguments: '{"a"' } }] },
        { tool_calls: [{ index: 0, function: { arguments: ':2}' } }] },
      ], { finish: 'tool_calls' }),
      options(),
    ));
    assert.deepEqual(message.content, [
      { type: 'thinking', thinking: 'hmm', signature: 'erased' },
      { type: 'text', text: 'ok' },
      {
        type: 'tool_use',
        id: message.content[2]?.type === 'tool_use' ? message.content[2].id : '',
        name: 'f',
        input: { a: 2 },
      },
    ]);
    assert.match((message.content[2] as { id: string }).id, /^toolu_/);
    assert.equal(message.stop_reason, 'tool_use');
  });

  test('cached prompt tokens are reported apart from input_tokens', async () => {
    const message = await foldMessage(toMessagesEvents(
      chunks(['x'], {
        usage: { ...usage, prompt_tokens_details: { cached_tokens: 4 } },
      }),
      options(),
    ));
    assert.equal(message.usage.input_tokens, 3);
    assert.equal(message.usage.cache_read_input_tokens, 4);
  });

  test('content is text as it comes (parsing is upstream); nothing generated is an empty content', async () => {
    const text = await foldMessage(toMessagesEvents(
      chunks(['<tool_call>{"name":"f","arguments":{}}</tool_call>']),
      options(),
    ));
    assert.deepEqual(text.content, [{
      type: 'text',
      text: '<tool_call>{"name":"f","arguments":{}}</tool_call>',
    }]);
    const empty = await foldMessage(toMessagesEvents(chunks([]), options()));
    assert.deepEqual(empty.content, []);
    assert.equal(empty.stop_reason, 'end_turn');
  });
});
