import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { currentRuntime } from '../helpers/process.ts';
import { MODEL, readSse, type Stack, startStack } from '../helpers/stack.ts';

const chat = (stream: boolean) => ({
  model: MODEL,
  messages: [{ role: 'user', content: 'Time me' }],
  max_tokens: 8,
  stream,
});

const timings = (stack: Stack) => stack.logs.filter((l) => l.msg === 'request timings');

describe(`--dyn-debug-perf on ${currentRuntime()}`, () => {
  let on: Stack;
  let threaded: Stack;
  let off: Stack;
  before(async () => {
    on = await startStack({ frontendArgs: ['--dyn-debug-perf'] });
    threaded = await startStack({
      frontendArgs: ['--dyn-preprocess-workers', '1'],
      env: { DYN_DEBUG_PERF: 'true' },
    });
    off = await startStack();
  });
  after(async () => {
    await Promise.allSettled([on?.close(), threaded?.close(), off?.close()]);
  });

  test('logs one line per chat request with every preprocessing stage', async () => {
    for (const stream of [true, false]) {
      const res = await on.post('/v1/chat/completions', chat(stream), {
        'x-request-id': `p-${stream}`,
      });
      assert.equal(res.status, 200);
      if (stream) await readSse(res);
      else await res.json();
    }
    const lines = timings(on);
    assert.equal(lines.length, 2);
    for (const line of lines) {
      assert.equal(line.level, 'info');
      assert.equal(line.model, MODEL);
      assert.equal(line.endpoint, 'chat_completions');
      assert.equal(line.outcome, 'done');
      assert.equal(line.completion_tokens, 8);
      assert.ok((line.prompt_tokens as number) > 0);
      for (
        const key of [
          'load_ms',
          'template_ms',
          'tokenize_ms',
          'preprocess_ms',
          'dispatch_ms',
          'first_token_ms',
          'detokenize_ms',
          'total_ms',
        ]
      ) {
        assert.equal(typeof line[key], 'number', `${key} in ${JSON.stringify(line)}`);
        assert.ok((line[key] as number) >= 0, key);
      }
      assert.ok((line.detokenize_calls as number) >= 8);
      assert.ok((line.first_token_ms as number) <= (line.total_ms as number));
    }
    assert.deepEqual(lines.map((l) => l.request_id).sort(), ['p-false', 'p-true']);
  });

  test('covers completions, and template timings from a preprocessing thread', async () => {
    const res = await threaded.post('/v1/completions', {
      model: MODEL,
      prompt: 'Time me too',
      max_tokens: 4,
    });
    assert.equal(res.status, 200);
    await res.json();
    const chatRes = await threaded.post('/v1/chat/completions', chat(false));
    await chatRes.json();
    const [completion, chatLine] = timings(threaded);
    assert.equal(completion?.endpoint, 'completions');
    assert.equal(typeof completion?.preprocess_ms, 'number');
    assert.equal(completion?.completion_tokens, 4);
    assert.equal(chatLine?.endpoint, 'chat_completions');
    assert.equal(typeof chatLine?.template_ms, 'number');
    assert.equal(typeof chatLine?.tokenize_ms, 'number');
  });

  test('logs nothing when the flag is off', async () => {
    const res = await off.post('/v1/chat/completions', chat(true));
    assert.equal(res.status, 200);
    await readSse(res);
    assert.equal(timings(off).length, 0);
  });
});
