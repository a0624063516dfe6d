import assert from 'node:assert/strict';
import { test } from 'node:test';
import { jsonText } from '../../json.ts';
import { chunkFramer } from './chunk-frame.ts';

const base = {
  id: 'chatcmpl-"x"\u2028',
  object: 'chat.completion.chunk',
  created: 17,
  model: 'm/é',
};
const frameOf = chunkFramer(base);

test('chunkFramer() writes exactly the generic frame of every chunk shape', () => {
  const chunks: unknown[] = [
    {
      ...base,
      choices: [{
        index: 0,
        delta: { role: 'assistant', content: '' },
        logprobs: null,
        finish_reason: null,
      }],
    },
    {
      ...base,
      choices: [{ index: 0, delta: { content: 'a "q"\n😀' }, logprobs: null, finish_reason: null }],
      usage: null,
    },
    {
      ...base,
      choices: [{ index: 1, delta: {}, logprobs: null, finish_reason: 'stop' }],
      nvext: { worker_id: { decode_worker_id: 18446744073709551615n } },
    },
    { ...base, choices: [], usage: { prompt_tokens: 3, completion_tokens: 2, total_tokens: 5 } },
  ];
  const choice = (extra: Record<string, unknown>, delta: Record<string, unknown>) => ({
    index: 2,
    delta,
    logprobs: null,
    finish_reason: null,
    ...extra,
  });
  chunks.push(
    { ...base, choices: [choice({}, { content: '' })] },
    { ...base, choices: [choice({}, { role: 'assistant', content: 'x' })] },
    { ...base, choices: [choice({}, { role: 'user', content: 'x' })] },
    { ...base, choices: [choice({}, { content: 'x', reasoning_content: 'r' })] },
    // Reasoning parsers' deltas take the direct path too, with or without the role first.
    { ...base, choices: [choice({}, { reasoning_content: 'think "hard"\n' })] },
    { ...base, choices: [choice({}, { role: 'assistant', reasoning_content: 'r' })] },
    { ...base, choices: [choice({}, { reasoning_content: 'r', role: 'assistant' })] },
    { ...base, choices: [choice({}, { reasoning_content: null })] },
    { ...base, choices: [choice({}, { role: 'assistant' })] },
    {
      ...base,
      choices: [choice({}, {
        tool_calls: [{ index: 0, function: { arguments: '{"a"' } }],
      })],
    },
    { ...base, choices: [choice({ stop_reason: 'x' }, { content: 'x' })] },
    { ...base, choices: [choice({ finish_reason: 'stop' }, { content: 'x' })] },
    { ...base, choices: [choice({}, { content: 'a' }), choice({}, { content: 'b' })] },
    {
      ...base,
      choices: [{ delta: { content: 'x' }, index: 0, logprobs: null, finish_reason: null }],
    },
    { ...base, choices: [{ index: 0, text: 'completion', logprobs: null, finish_reason: null }] },
  );
  for (const chunk of chunks) assert.equal(frameOf(chunk), `data: ${jsonText(chunk)}\n\n`);
});

test('chunkFramer() leaves chunks of another shape to the generic path', () => {
  assert.equal(frameOf({ ...base, model: 'other', choices: [] }), undefined);
  assert.equal(frameOf({ choices: [], ...base }), undefined);
  assert.equal(frameOf({ ...base, choices: [], extra: 1 }), undefined);
  assert.equal(frameOf({ ...base, choices: [], nvext: {}, usage: null }), undefined);
  assert.equal(frameOf({ type: 'message_start' }), undefined);
});
