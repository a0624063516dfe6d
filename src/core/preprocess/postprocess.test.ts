import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { test } from 'node:test';
import type { LLMEngineOutput } from '../plane/worker.ts';
import {
  createPostprocessor,
  mapFinishReason,
  type PostprocessedChunk,
  type PostprocessorOptions,
} from './postprocess.ts';
import { loadTokenizer } from './tokenizer.ts';

const dir = new URL('../../../tests/fixtures/model/', import.meta.url);
const tokenizer = await loadTokenizer({
  tokenizerJson: await readFile(new URL('tokenizer.json', dir), 'utf8'),
  tokenizerConfigJson: await readFile(new URL('tokenizer_config.json', dir), 'utf8'),
});
const EOS = 151645;
const ids = (text: string) => tokenizer.encode(text, { addSpecialTokens: false });

/** Feeds one engine output per token (the last may carry a finish reason); collects chunks. */
function run(
  tokenIds: number[],
  options: Partial<PostprocessorOptions> = {},
  last: Partial<LLMEngineOutput> = {},
): { chunks: PostprocessedChunk[]; text: string; final: PostprocessedChunk } {
  const post = createPostprocessor({ tokenizer, ...options });
  const chunks = tokenIds.map((id, i) =>
    post.push({ token_ids: [id], ...(i === tokenIds.length - 1 ? last : {}) })
  );
  const tail = post.finish().text;
  const final = chunks.find((c) => c.finishReason) ?? chunks.at(-1)!;
  return { chunks, text: chunks.map((c) => c.text).join('') + tail, final };
}

test('engine finish reasons map to OpenAI finish_reason (reference §9.5)', () => {
  assert.deepEqual(mapFinishReason('eos'), { finishReason: 'stop' });
  assert.deepEqual(mapFinishReason('stop'), { finishReason: 'stop' });
  assert.deepEqual(mapFinishReason('cancelled'), { finishReason: 'stop' });
  assert.deepEqual(mapFinishReason('abort'), { finishReason: 'stop' });
  assert.deepEqual(mapFinishReason('length'), { finishReason: 'length' });
  assert.deepEqual(mapFinishReason('content_filter'), { finishReason: 'content_filter' });
  assert.deepEqual(mapFinishReason({ error: 'boom' }), { finishReason: 'error', error: 'boom' });
});

test('token ids become text deltas; the engine finish reason ends the choice', () => {
  const r = run(ids('Hi 🚀 there'), {}, { finish_reason: 'length' });
  assert.equal(r.text, 'Hi 🚀 there');
  assert.equal(r.final.finishReason, 'length');
  assert.equal(r.final.stopped, undefined);
  assert.ok(r.chunks.every((c) => !c.text.includes('\uFFFD')));
  assert.deepEqual(r.chunks.flatMap((c) => c.tokenIds), ids('Hi 🚀 there'));
});

test('a hidden stop id (EOS) ends with stop, its text not shown, the upstream told to stop', () => {
  const r = run([...ids('Done.'), EOS, ...ids(' extra')], { hiddenStopTokenIds: [EOS] });
  assert.equal(r.text, 'Done.');
  assert.deepEqual(
    {
      finishReason: r.final.finishReason,
      stopReason: r.final.stopReason,
      stopped: r.final.stopped,
    },
    { finishReason: 'stop', stopReason: EOS, stopped: true },
  );
  assert.deepEqual(r.final.tokenIds, [EOS]);
  const after = r.chunks.slice(r.chunks.indexOf(r.final) + 1);
  assert.ok(after.length > 0 && after.every((c) => c.text === '' && c.tokenIds.length === 0));
});

test('a visible stop id ends with stop and its text is shown', () => {
  const r = run([...ids('Done.'), EOS, ...ids(' extra')], { stopTokenIds: [EOS] });
  assert.equal(r.text, 'Done.<|im_end|>');
  assert.equal(r.final.stopReason, EOS);
  const both = run([...ids('Done.'), EOS], { stopTokenIds: [EOS], hiddenStopTokenIds: [EOS] });
  assert.equal(both.text, 'Done.<|im_end|>', 'an id in both lists is visible');
});

test('a stop id inside a multi-token chunk cuts the chunk there', () => {
  const post = createPostprocessor({ tokenizer, hiddenStopTokenIds: [EOS] });
  const chunk = post.push({ token_ids: [...ids('One two'), EOS, ...ids(' three')] });
  assert.equal(chunk.text, 'One two');
  assert.deepEqual(chunk.tokenIds, [...ids('One two'), EOS]);
  assert.equal(chunk.finishReason, 'stop');
  assert.equal(post.finished, true);
});

test('a stop string across tokens ends with stop, hidden, and stops the upstream', () => {
  const r = run(ids('The answer is 42. STOP here and more'), { stop: ['STOP'] });
  assert.equal(r.text, 'The answer is 42. ');
  assert.deepEqual(
    {
      finishReason: r.final.finishReason,
      stopReason: r.final.stopReason,
      stopped: r.final.stopped,
    },
    { finishReason: 'stop', stopReason: 'STOP', stopped: true },
  );
  const visible = run(ids('The answer is 42. STOP here'), { stop: ['STOP'], includeStopStr: true });
  assert.equal(visible.text, 'The answer is 42. STOP');
});

test('held-back text is released by finish() or by the engine finish reason', () => {
  assert.equal(run(ids('ends with ST'), { stop: ['STOP'] }).text, 'ends with ST');
  const r = run(ids('ends with ST'), { stop: ['STOP'] }, { finish_reason: 'eos' });
  assert.equal(r.final.text.endsWith('ST'), true);
  assert.equal(r.final.finishReason, 'stop');
});

test('min_tokens suppresses stop ids and stop strings until reached', () => {
  const tokens = [...ids('a STOP b'), EOS, ...ids(' c'), EOS];
  const n = ids('a STOP b').length;
  // The first EOS is token n + 1: allowed with min_tokens n + 1, suppressed with n + 2.
  const below = run(tokens, { stop: ['STOP'], hiddenStopTokenIds: [EOS], minTokens: n + 1 });
  assert.equal(below.text, 'a STOP b');
  assert.equal(below.final.stopReason, EOS);
  const more = run(tokens, { stop: ['STOP'], hiddenStopTokenIds: [EOS], minTokens: n + 2 });
  assert.equal(more.text, 'a STOP b<|im_end|> c');
  assert.equal(more.final.stopReason, EOS);
  const none = run(tokens, { stop: ['STOP'], hiddenStopTokenIds: [EOS] });
  assert.equal(none.text, 'a ');
  assert.equal(none.final.stopReason, 'STOP');
});

test('a text-input engine sends text; it passes through the stop matcher', () => {
  const post = createPostprocessor({ tokenizer, stop: ['</answer>'] });
  assert.deepEqual(post.push({ token_ids: [], text: 'The answer: 4</ans' }), {
    text: 'The answer: 4',
    tokenIds: [],
  });
  const end = post.push({ token_ids: [], text: 'wer> trailing' });
  assert.equal(end.text, '');
  assert.equal(end.stopReason, '</answer>');
  assert.equal(end.stopped, true);
});

test('an engine error finishes with error and its message; stop_reason passes through', () => {
  const post = createPostprocessor({ tokenizer });
  const r = post.push({ token_ids: ids('x'), finish_reason: { error: 'worker died' } });
  assert.deepEqual(r, {
    text: 'x',
    tokenIds: ids('x'),
    finishReason: 'error',
    error: 'worker died',
  });
  const s = createPostprocessor({ tokenizer }).push({
    token_ids: ids('y'),
    finish_reason: 'stop',
    stop_reason: 'END',
  });
  assert.deepEqual(s, { text: 'y', tokenIds: ids('y'), finishReason: 'stop', stopReason: 'END' });
});
