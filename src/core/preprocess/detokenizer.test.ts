import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { test } from 'node:test';
import { createDecodeStream } from './detokenizer.ts';
import { loadTokenizer } from './tokenizer.ts';

const dir = new URL('../../../tests/fixtures/model/', import.meta.url);
const tokenizer = await loadTokenizer({
  tokenizerJson: await readFile(new URL('tokenizer.json', dir), 'utf8'),
  tokenizerConfigJson: await readFile(new URL('tokenizer_config.json', dir), 'utf8'),
});

/** Pushes ids in chunks of the given sizes (cycled); returns every delta, flush included. */
function stream(ids: readonly number[], sizes: readonly number[] = [1], promptIds?: number[]) {
  const decoder = createDecodeStream(tokenizer, { promptIds });
  const deltas: string[] = [];
  for (let i = 0, k = 0; i < ids.length; k++) {
    const n = sizes[k % sizes.length]!;
    deltas.push(decoder.push(ids.slice(i, i + n)));
    i += n;
  }
  deltas.push(decoder.flush());
  return deltas;
}

test('an emoji split over several tokens is held back until complete', () => {
  const ids = tokenizer.encode('Go 🚀 now');
  // The emoji takes more than one byte-level token: decoding a piece alone is broken.
  assert.ok(ids.some((id) => tokenizer.decode([id]).includes('\uFFFD')));
  const deltas = stream(ids);
  assert.ok(deltas.includes(''), 'some token completed no character');
  assert.ok(deltas.every((d) => !d.includes('\uFFFD')), JSON.stringify(deltas));
  assert.ok(deltas.includes(' 🚀'), JSON.stringify(deltas));
  assert.equal(deltas.join(''), 'Go 🚀 now');
});

test('CJK, combining marks and ZWJ sequences stream without broken characters', () => {
  const text = '日本語のテキスト、中文文本。한국어 👨‍👩‍👧‍👦 👍🏽 e\u0301 ok';
  const ids = tokenizer.encode(text);
  for (const sizes of [[1], [2], [3, 1], [7]]) {
    const deltas = stream(ids, sizes);
    assert.ok(deltas.every((d) => !d.includes('\uFFFD')), JSON.stringify(deltas));
    assert.equal(deltas.join(''), tokenizer.decode(ids));
  }
});

test('the concatenated deltas equal decode(all) for a long mixed text in random chunks', () => {
  const pieces = [
    'The',
    ' quick',
    ' 狐狸',
    ' 🦊',
    ' jumps',
    '\n\n',
    '1234',
    ' ¿qué?',
    ' <|im_end|>',
  ];
  let seed = 7;
  const rand = () => (seed = (seed * 48271) % 2147483647) / 2147483647;
  const text = Array.from({ length: 400 }, () => pieces[Math.floor(rand() * pieces.length)]).join(
    '',
  );
  const ids = tokenizer.encode(text);
  const sizes = Array.from({ length: 50 }, () => 1 + Math.floor(rand() * 5));
  const deltas = stream(ids, sizes);
  assert.ok(deltas.every((d) => !d.includes('\uFFFD')));
  assert.equal(deltas.join(''), tokenizer.decode(ids));
  assert.equal(deltas.join(''), text);
});

test('prompt ids give the first generated token its context', () => {
  const prompt = tokenizer.encode('<|im_start|>assistant\n');
  const generated = tokenizer.encode('Hello there');
  assert.equal(stream(generated, [1], prompt).join(''), 'Hello there');
});

test('skipSpecialTokens leaves <|im_end|> out of the deltas', () => {
  const ids = tokenizer.encode('done<|im_end|>');
  const decoder = createDecodeStream(tokenizer, { skipSpecialTokens: true });
  const text = ids.map((id) => decoder.push([id])).join('') + decoder.flush();
  assert.equal(text, 'done');
  assert.equal(stream(ids).join(''), 'done<|im_end|>');
});

test('flush() releases an incomplete character as U+FFFD, like decode(all)', () => {
  const ids = tokenizer.encode('x🚀');
  const partial = ids.slice(0, -1);
  const decoder = createDecodeStream(tokenizer);
  const held = partial.map((id) => decoder.push([id])).join('');
  assert.equal(held, 'x');
  assert.equal(decoder.flush(), tokenizer.decode(partial).slice(1));
  assert.equal(decoder.flush(), '');
});

test('ids that never complete a character are released after a bounded window', () => {
  // A lone UTF-8 lead byte (Ġ-style byte token "\xF0") repeated: every decode ends in U+FFFD.
  const lead = tokenizer.tokenToId('ð')!;
  const decoder = createDecodeStream(tokenizer);
  const deltas = Array.from({ length: 40 }, () => decoder.push([lead]));
  assert.ok(deltas.some((d) => d.length > 0), 'held ids were released');
});
