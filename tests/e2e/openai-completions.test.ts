/**
 * Text completions (every prompt shape, echo, streaming) and stop strings (chat and completions,
 * unary and streamed) end to end against one simulated worker.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { currentRuntime } from '../helpers/process.ts';
import { MODEL, readSse, type Stack, startStack } from '../helpers/stack.ts';

interface CompletionChoice {
  index: number;
  text: string;
  finish_reason: string | null;
}
interface Completion {
  object: string;
  model: string;
  choices: CompletionChoice[];
  usage?: { prompt_tokens: number; completion_tokens: number; total_tokens: number } | null;
}
interface ChatChunk {
  choices: Array<{ delta: { content?: string }; finish_reason: string | null }>;
}

/** Every token of the mocker is one word: a space and 3 to 9 lower-case letters. */
const WORDS = /^( [a-z]{3,9})*$/;
const words = (text: string) => text.split(' ').length - 1;

describe(`completions and stop strings on ${currentRuntime()}`, () => {
  let stack: Stack;
  before(async () => {
    stack = await startStack();
  });
  after(async () => {
    await stack?.close();
  });

  const complete = async (body: Record<string, unknown>) => {
    const res = await stack.post('/v1/completions', { model: MODEL, ...body });
    const text = await res.text();
    assert.equal(res.status, 200, text);
    return JSON.parse(text) as Completion;
  };

  test('a string prompt', async () => {
    const answer = await complete({ prompt: 'Once upon a time', max_tokens: 7 });
    assert.equal(answer.object, 'text_completion');
    assert.equal(answer.model, MODEL);
    assert.equal(answer.choices.length, 1);
    const choice = answer.choices[0] as CompletionChoice;
    assert.equal(choice.index, 0);
    assert.match(choice.text, WORDS);
    assert.equal(words(choice.text), 7);
    assert.equal(choice.finish_reason, 'length');
    assert.equal(answer.usage?.completion_tokens, 7);
    assert.ok((answer.usage?.prompt_tokens ?? 0) > 0);
  });

  test('a list of strings gives one choice per prompt, indexes 0 and 1', async () => {
    const answer = await complete({ prompt: ['first prompt', 'second prompt'], max_tokens: 4 });
    assert.deepEqual(answer.choices.map((c) => c.index), [0, 1]);
    for (const choice of answer.choices) {
      assert.equal(words(choice.text), 4);
      assert.equal(choice.finish_reason, 'length');
    }
    assert.equal(answer.usage?.completion_tokens, 8);
  });

  test('token-id prompts: one list, and a list of lists', async () => {
    const one = await complete({ prompt: [9707, 11, 1879, 0], max_tokens: 5 });
    assert.equal(one.choices.length, 1);
    assert.equal(words(one.choices[0]?.text ?? ''), 5);
    assert.equal(one.usage?.prompt_tokens, 4);

    const two = await complete({ prompt: [[9707, 11], [1879, 0, 9707]], max_tokens: 3 });
    assert.deepEqual(two.choices.map((c) => c.index), [0, 1]);
    for (const choice of two.choices) assert.equal(words(choice.text), 3);
    assert.equal(two.usage?.prompt_tokens, 5);
  });

  test('long token-id prompts reach the worker whole; a bad id among them is a 400 naming it', async () => {
    const long = Array.from({ length: 3000 }, (_, i) => 1000 + (i % 5000));
    const one = await complete({ prompt: long, max_tokens: 2 });
    assert.equal(one.usage?.prompt_tokens, 3000, 'every token, not the stand-in validated');
    const two = await complete({ prompt: [long, [9707, 11], long.slice(0, 100)], max_tokens: 1 });
    assert.equal(two.usage?.prompt_tokens, 3000 + 2 + 100);
    const bad = await stack.post('/v1/completions', {
      model: MODEL,
      prompt: [...long.slice(0, 2000), -1, ...long.slice(2000)],
      max_tokens: 1,
    });
    assert.equal(bad.status, 400);
    const body = await bad.json() as { error: { param: string; message: string } };
    assert.equal(body.error.param, 'prompt[2000]');
    assert.match(body.error.message, /got -1/);
  });

  test('echo: true prefixes the prompt', async () => {
    const prompt = 'Echo this prompt:';
    const answer = await complete({ prompt, max_tokens: 3, echo: true });
    const text = answer.choices[0]?.text ?? '';
    assert.ok(text.startsWith(prompt), JSON.stringify(text));
    assert.match(text.slice(prompt.length), WORDS);
    assert.equal(words(text.slice(prompt.length)), 3);
  });

  test('streamed completions end with [DONE]', async () => {
    const res = await stack.post('/v1/completions', {
      model: MODEL,
      prompt: 'Stream me',
      max_tokens: 6,
      stream: true,
    });
    assert.equal(res.status, 200);
    const { chunks, done } = await readSse<Completion>(res);
    assert.ok(done);
    assert.ok(chunks.every((c) => c.object === 'text_completion' && c.choices.length === 1));
    const text = chunks.map((c) => c.choices[0]?.text ?? '').join('');
    assert.equal(words(text), 6);
    assert.equal(chunks[chunks.length - 1]?.choices[0]?.finish_reason, 'length');
  });

  test('a stop string ends the chat answer right before it, unary and streamed', async () => {
    const request = {
      model: MODEL,
      messages: [{ role: 'user', content: 'Say many words' }],
      max_tokens: 24,
      seed: 1234,
    };
    const first = await stack.post('/v1/chat/completions', request);
    const full = (await first.json() as { choices: Array<{ message: { content: string } }> })
      .choices[0]?.message.content ?? '';
    assert.equal(words(full), 24);
    // The same seed gives the same text.
    const again = await stack.post('/v1/chat/completions', request);
    assert.equal(
      (await again.json() as { choices: Array<{ message: { content: string } }> }).choices[0]
        ?.message.content,
      full,
    );
    // A stop that straddles two tokens: the end of word 10, the space, the start of word 11.
    const pieces = full.split(' ').slice(1);
    const stop = `${(pieces[9] as string).slice(1)} ${(pieces[10] as string).slice(0, 2)}`;
    const expected = full.slice(0, full.indexOf(stop));
    assert.ok(expected.length > 0);

    const unary = await stack.post('/v1/chat/completions', { ...request, stop });
    const answer = await unary.json() as {
      choices: Array<{ message: { content: string }; finish_reason: string }>;
    };
    assert.equal(answer.choices[0]?.message.content, expected);
    assert.equal(answer.choices[0]?.finish_reason, 'stop');

    const streamed = await stack.post('/v1/chat/completions', {
      ...request,
      stop: [stop],
      stream: true,
    });
    const { chunks, done } = await readSse<ChatChunk>(streamed);
    assert.ok(done);
    const text = chunks.map((c) => c.choices[0]?.delta.content ?? '').join('');
    assert.equal(text, expected);
    assert.ok(!text.includes(stop));
    assert.equal(chunks[chunks.length - 1]?.choices[0]?.finish_reason, 'stop');
  });

  test('a stop string ends a completion right before it', async () => {
    const request = { model: MODEL, prompt: 'Count the words', max_tokens: 16, seed: 99 };
    const full = (await complete(request)).choices[0]?.text ?? '';
    const pieces = full.split(' ').slice(1);
    const stop = ` ${pieces[6]}`;
    const expected = full.slice(0, full.indexOf(stop));
    const answer = await complete({ ...request, stop });
    assert.equal(answer.choices[0]?.text, expected);
    assert.equal(answer.choices[0]?.finish_reason, 'stop');
  });
});
