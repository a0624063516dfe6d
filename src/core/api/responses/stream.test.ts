import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { loadOpenAISpec } from '../../../../tests/helpers/openai-spec.ts';
import { OverloadedError, ValidationError } from '../../errors.ts';
import type { ChatCompletionChunk, Usage } from '../openai/schemas.ts';
import { parseResponsesRequest } from '../openai/validate.ts';
import { createResponsesStream, type ResponsesStreamEvent } from './stream.ts';

const spec = loadOpenAISpec();

function counter(): () => string {
  let n = 0;
  return () => `id-${++n}`;
}

const usage: Usage = { prompt_tokens: 7, completion_tokens: 3, total_tokens: 10 };

function chunk(
  delta: ChatCompletionChunk['choices'][number]['delta'],
  finish: ChatCompletionChunk['choices'][number]['finish_reason'] = null,
): ChatCompletionChunk {
  return {
    id: 'chatcmpl-1',
    object: 'chat.completion.chunk',
    created: 1700000000,
    model: 'm',
    choices: [{ index: 0, delta, finish_reason: finish }],
  };
}

function usageChunk(): ChatCompletionChunk {
  return { ...chunk({}), choices: [], usage };
}

async function* from(chunks: ChatCompletionChunk[], error?: Error) {
  for (const c of chunks) yield c;
  if (error) throw error;
}

async function collect(events: AsyncIterable<ResponsesStreamEvent>) {
  const out: ResponsesStreamEvent[] = [];
  for await (const event of events) out.push(event);
  return out;
}

const request = parseResponsesRequest({ model: 'm', input: 'Hi', stream: true });
const options = () => ({ newId: counter(), now: () => 1700000000 });

/** The spec component of each event type. */
const COMPONENT: Record<string, string> = {
  'response.created': 'ResponseCreatedEvent',
  'response.in_progress': 'ResponseInProgressEvent',
  'response.completed': 'ResponseCompletedEvent',
  'response.failed': 'ResponseFailedEvent',
  'response.incomplete': 'ResponseIncompleteEvent',
  'response.output_item.added': 'ResponseOutputItemAddedEvent',
  'response.output_item.done': 'ResponseOutputItemDoneEvent',
  'response.content_part.added': 'ResponseContentPartAddedEvent',
  'response.content_part.done': 'ResponseContentPartDoneEvent',
  'response.output_text.delta': 'ResponseTextDeltaEvent',
  'response.output_text.done': 'ResponseTextDoneEvent',
  'response.function_call_arguments.delta': 'ResponseFunctionCallArgumentsDeltaEvent',
  'response.function_call_arguments.done': 'ResponseFunctionCallArgumentsDoneEvent',
  'response.reasoning_text.delta': 'ResponseReasoningTextDeltaEvent',
  'response.reasoning_text.done': 'ResponseReasoningTextDoneEvent',
};

function assertSequenced(events: ResponsesStreamEvent[]) {
  events.forEach((e, i) => {
    assert.equal(e.event, e.data.type);
    assert.equal(e.data.sequence_number, i);
  });
}

function assertConformsToSpec(events: ResponsesStreamEvent[]) {
  for (const { event, data } of events) {
    const component = COMPONENT[event];
    assert.ok(component, `no component for ${event}`);
    // OpenResponses requires `usage` on every response object, `null` until known; OpenAI's
    // document marks it optional but not nullable. The null is checked, then left out here.
    // Likewise `user`: OpenResponses requires the key (null when unset), OpenAI types it string.
    const response = (data as { response?: { usage?: unknown; user?: unknown } }).response;
    const checked = response
      ? {
        ...data,
        response: {
          ...response,
          ...(response.usage === null ? { usage: undefined } : {}),
          ...(response.user === null ? { user: undefined } : {}),
        },
      }
      : data;
    assert.deepEqual(spec.validateAgainstSpec(component, checked), [], event);
  }
}

const textChunks = () => [
  chunk({ role: 'assistant', content: '' }),
  chunk({ content: 'Hel' }),
  chunk({ content: 'lo' }),
  chunk({}, 'stop'),
  usageChunk(),
];

const toolChunks = () => [
  chunk({
    role: 'assistant',
    tool_calls: [{
      index: 0,
      id: 'call_a',
      type: 'function',
      function: { name: 'weather', arguments: '' },
    }],
  }),
  chunk({ tool_calls: [{ index: 0, function: { arguments: '{"city":' } }] }),
  chunk({ tool_calls: [{ index: 0, function: { arguments: '"Oslo"}' } }] }),
  chunk({}, 'tool_calls'),
  usageChunk(),
];

describe('createResponsesStream()', () => {
  test('every response object carries usage: null until the worker reported it', async () => {
    const events = await collect(
      createResponsesStream(request, options()).convert(
        from(textChunks()),
      ),
    );
    const snapshots = events.flatMap((e) => 'response' in e.data ? [e.data] : []);
    assert.deepEqual(snapshots.map((d) => [d.type, d.response.usage]), [
      ['response.created', null],
      ['response.in_progress', null],
      ['response.completed', {
        input_tokens: 7,
        input_tokens_details: { cached_tokens: 0, cache_write_tokens: 0 },
        output_tokens: 3,
        output_tokens_details: { reasoning_tokens: 0 },
        total_tokens: 10,
      }],
    ]);
    for (const d of snapshots) assert.ok(Object.hasOwn(d.response, 'usage'), d.type);
  });

  test('a failed stream reports usage: null in response.failed', async () => {
    const events = await collect(
      createResponsesStream(request, options()).convert(
        from([chunk({ content: 'x' })], new Error('boom')),
      ),
    );
    const failed = events.at(-1)?.data;
    assert.equal(failed?.type, 'response.failed');
    assert.ok(failed && 'response' in failed && Object.hasOwn(failed.response, 'usage'));
    assert.equal(failed && 'response' in failed ? failed.response.usage : 'absent', null);
  });

  test('output cut by max_output_tokens ends with response.incomplete and the reason', async () => {
    const cut = [chunk({ content: 'Hel' }), chunk({}, 'length'), usageChunk()];
    const stream = createResponsesStream(request, options());
    const events = await collect(stream.convert(from(cut)));
    const last = events.at(-1)?.data;
    assert.equal(last?.type, 'response.incomplete');
    const response = last && 'response' in last ? last.response : undefined;
    assert.equal(response?.status, 'incomplete');
    assert.deepEqual(response?.incomplete_details, { reason: 'max_output_tokens' });
    assert.equal(response?.completed_at, null);
    assert.equal(response?.output[0]?.status, 'incomplete');
    assert.equal(response?.usage?.output_tokens, 3);
    assert.equal(stream.final, response);
    if (spec) assertConformsToSpec(events);
  });

  test('a text answer: the exact event sequence', async () => {
    const stream = createResponsesStream(request, options());
    const events = await collect(stream.convert(from(textChunks())));
    assertSequenced(events);
    assert.deepEqual(events.map((e) => e.event), [
      'response.created',
      'response.in_progress',
      'response.output_item.added',
      'response.content_part.added',
      'response.output_text.delta',
      'response.output_text.delta',
      'response.output_text.done',
      'response.content_part.done',
      'response.output_item.done',
      'response.completed',
    ]);
    const [created, , added, partAdded, delta1, delta2, textDone, partDone, itemDone, completed] =
      events.map((e) => e.data);
    assert.equal(created?.type === 'response.created' && created.response.status, 'in_progress');
    assert.deepEqual(created?.type === 'response.created' && created.response.output, []);
    assert.deepEqual(added, {
      type: 'response.output_item.added',
      sequence_number: 2,
      output_index: 0,
      item: {
        type: 'message',
        id: 'msg_id2',
        role: 'assistant',
        status: 'in_progress',
        content: [],
      },
    });
    assert.deepEqual(partAdded, {
      type: 'response.content_part.added',
      sequence_number: 3,
      item_id: 'msg_id2',
      output_index: 0,
      content_index: 0,
      part: { type: 'output_text', text: '', annotations: [], logprobs: [] },
    });
    assert.deepEqual(delta1, {
      type: 'response.output_text.delta',
      sequence_number: 4,
      item_id: 'msg_id2',
      output_index: 0,
      content_index: 0,
      delta: 'Hel',
      logprobs: [],
    });
    assert.equal(delta2?.type === 'response.output_text.delta' && delta2.delta, 'lo');
    assert.equal(textDone?.type === 'response.output_text.done' && textDone.text, 'Hello');
    assert.equal(
      partDone?.type === 'response.content_part.done' && partDone.part.text,
      'Hello',
    );
    assert.deepEqual(itemDone?.type === 'response.output_item.done' && itemDone.item, {
      type: 'message',
      id: 'msg_id2',
      role: 'assistant',
      status: 'completed',
      content: [{ type: 'output_text', text: 'Hello', annotations: [], logprobs: [] }],
    });
    assert.ok(completed?.type === 'response.completed');
    assert.equal(completed.response.id, 'resp_id1');
    assert.equal(completed.response.status, 'completed');
    assert.equal(completed.response.completed_at, 1700000000);
    assert.deepEqual(completed.response.output, [
      itemDone?.type === 'response.output_item.done' && itemDone.item,
    ]);
    assert.deepEqual(completed.response.usage, {
      input_tokens: 7,
      input_tokens_details: { cached_tokens: 0, cache_write_tokens: 0 },
      output_tokens: 3,
      output_tokens_details: { reasoning_tokens: 0 },
      total_tokens: 10,
    });
    assert.equal(stream.failure, undefined);
  });

  test('a tool call: the exact event sequence', async () => {
    const events = await collect(
      createResponsesStream(request, options()).convert(from(toolChunks())),
    );
    assertSequenced(events);
    assert.deepEqual(events.map((e) => e.event), [
      'response.created',
      'response.in_progress',
      'response.output_item.added',
      'response.function_call_arguments.delta',
      'response.function_call_arguments.delta',
      'response.function_call_arguments.done',
      'response.output_item.done',
      'response.completed',
    ]);
    const data = events.map((e) => e.data);
    assert.deepEqual(data[2], {
      type: 'response.output_item.added',
      sequence_number: 2,
      output_index: 0,
      item: {
        type: 'function_call',
        id: 'fc_id2',
        call_id: 'call_a',
        name: 'weather',
        arguments: '',
        status: 'in_progress',
      },
    });
    assert.deepEqual(data[3], {
      type: 'response.function_call_arguments.delta',
      sequence_number: 3,
      item_id: 'fc_id2',
      output_index: 0,
      delta: '{"city":',
    });
    assert.deepEqual(data[5], {
      type: 'response.function_call_arguments.done',
      sequence_number: 5,
      item_id: 'fc_id2',
      output_index: 0,
      name: 'weather',
      arguments: '{"city":"Oslo"}',
    });
    const done = data[6];
    assert.equal(done?.type === 'response.output_item.done' && done.item.status, 'completed');
    const completed = data[7];
    assert.ok(completed?.type === 'response.completed');
    assert.deepEqual(completed.response.output, [{
      type: 'function_call',
      id: 'fc_id2',
      call_id: 'call_a',
      name: 'weather',
      arguments: '{"city":"Oslo"}',
      status: 'completed',
    }]);
  });

  test('text then two parallel calls keep their output indices in order', async () => {
    const events = await collect(
      createResponsesStream(request, options()).convert(from([
        chunk({ content: 'Checking both.' }),
        chunk({
          tool_calls: [
            { index: 0, id: 'c0', function: { name: 'a', arguments: '{}' } },
            { index: 1, id: 'c1', function: { name: 'b', arguments: '{}' } },
          ],
        }),
        chunk({}, 'tool_calls'),
      ])),
    );
    assertSequenced(events);
    const done = events.filter((e) => e.event === 'response.output_item.done').map((e) =>
      e.data.type === 'response.output_item.done' ? [e.data.output_index, e.data.item.type] : []
    );
    assert.deepEqual(done, [[0, 'message'], [1, 'function_call'], [2, 'function_call']]);
  });

  test('a mid-stream error ends with response.failed and nothing after it', async () => {
    const stream = createResponsesStream(request, options());
    const events = await collect(
      stream.convert(from([chunk({ content: 'Hel' })], new Error('socket hang up at 10.0.0.7'))),
    );
    assertSequenced(events);
    assert.deepEqual(events.map((e) => e.event), [
      'response.created',
      'response.in_progress',
      'response.output_item.added',
      'response.content_part.added',
      'response.output_text.delta',
      'response.failed',
    ]);
    const failed = events[5]?.data;
    assert.ok(failed?.type === 'response.failed');
    assert.equal(failed.response.status, 'failed');
    assert.equal(failed.response.completed_at, null);
    assert.deepEqual(failed.response.error, {
      code: 'server_error',
      message: 'Internal server error',
    });
    assert.equal(stream.failure?.status, 500);
    assert.deepEqual(stream.finish(), []);
    assert.deepEqual(stream.push(chunk({ content: 'late' })), []);
  });

  test('the failure code follows the status: 4xx invalid_prompt, 429 rate_limit_exceeded', () => {
    const code = (error: Error) => {
      const [failed] = createResponsesStream(request, options()).fail(error).slice(-1);
      return failed?.data.type === 'response.failed' ? failed.data.response.error : undefined;
    };
    assert.deepEqual(code(new ValidationError('Prompt is too long')), {
      code: 'invalid_prompt',
      message: 'Prompt is too long',
    });
    assert.equal(code(new OverloadedError(429))?.code, 'rate_limit_exceeded');
    assert.equal(code(new OverloadedError(529))?.code, 'server_error');
  });

  test('start() runs once; the model can be overridden', () => {
    const stream = createResponsesStream(request, { ...options(), model: 'canonical' });
    const first = stream.start();
    assert.equal(first.length, 2);
    assert.deepEqual(stream.start(), []);
    assert.equal(
      first[0]?.data.type === 'response.created' && first[0].data.response.model,
      'canonical',
    );
  });

  test('reasoning deltas become a reasoning item before the answer', async () => {
    const events = await collect(
      createResponsesStream(request, options()).convert(from(reasoningChunks())),
    );
    assertSequenced(events);
    assert.deepEqual(events.map((e) => e.event).slice(2, 6), [
      'response.output_item.added',
      'response.content_part.added',
      'response.reasoning_text.delta',
      'response.reasoning_text.delta',
    ]);
    const done = events.find((e) => e.event === 'response.reasoning_text.done');
    assert.equal(done?.data.type === 'response.reasoning_text.done' && done.data.text, 'Hmm, ok.');
    const completed = events[events.length - 1]!.data;
    assert.ok(completed.type === 'response.completed');
    assert.deepEqual(completed.response.output.map((o) => o.type), ['reasoning', 'message']);
    assert.deepEqual(completed.response.output[0], {
      type: 'reasoning',
      id: 'rs_id2',
      summary: [],
      content: [{ type: 'reasoning_text', text: 'Hmm, ok.' }],
      status: 'completed',
    });
  });

  test("every event conforms to OpenAI's event schemas", async () => {
    for (const chunks of [textChunks(), toolChunks(), reasoningChunks()]) {
      assertConformsToSpec(
        await collect(createResponsesStream(request, options()).convert(from(chunks))),
      );
    }
    assertConformsToSpec(createResponsesStream(request, options()).fail(new Error('x')));
  });
});

function reasoningChunks(): ChatCompletionChunk[] {
  return [
    chunk({ role: 'assistant', reasoning_content: 'Hmm, ' }),
    chunk({ reasoning_content: 'ok.' }),
    chunk({ content: 'Answer' }),
    chunk({}, 'stop'),
    usageChunk(),
  ];
}
