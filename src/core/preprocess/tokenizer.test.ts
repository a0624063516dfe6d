import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { test } from 'node:test';
import { loadTokenizer, TokenizerLoadError } from './tokenizer.ts';

const dir = new URL('../../../tests/fixtures/model/', import.meta.url);
const qwen = await loadTokenizer({
  tokenizerJson: await readFile(new URL('tokenizer.json', dir), 'utf8'),
  tokenizerConfigJson: await readFile(new URL('tokenizer_config.json', dir), 'utf8'),
});

/** A four-word WordPiece tokenizer whose post-processor adds a BOS, like Llama's. */
const tiny = JSON.stringify({
  version: '1.0',
  added_tokens: [{
    id: 0,
    content: '[BOS]',
    single_word: false,
    lstrip: false,
    rstrip: false,
    normalized: false,
    special: true,
  }],
  normalizer: null,
  pre_tokenizer: { type: 'Whitespace' },
  post_processor: {
    type: 'TemplateProcessing',
    single: [{ SpecialToken: { id: '[BOS]', type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }],
    pair: [{ Sequence: { id: 'A', type_id: 0 } }, { Sequence: { id: 'B', type_id: 1 } }],
    special_tokens: { '[BOS]': { id: '[BOS]', ids: [0], tokens: ['[BOS]'] } },
  },
  decoder: null,
  model: {
    type: 'WordPiece',
    vocab: { '[BOS]': 0, hello: 1, world: 2, '[UNK]': 3 },
    unk_token: '[UNK]',
    continuing_subword_prefix: '##',
    max_input_chars_per_word: 100,
  },
});

test('Tokenizer.encode() gives Qwen3 its known ids, special tokens as one id', () => {
  assert.deepEqual(qwen.encode('Hello world'), [9707, 1879]);
  assert.deepEqual(qwen.encode('<|im_start|>'), [151644]);
  assert.deepEqual(qwen.encode('<|im_start|>user\nhi<|im_end|>').slice(0, 1), [151644]);
  assert.equal(qwen.encode('<|im_start|>user\nhi<|im_end|>').at(-1), 151645);
});

test('Tokenizer.decode(encode(text)) is the text for unicode, emoji, CJK and whitespace', () => {
  for (
    const text of [
      'naïve café — “quoted”',
      'emoji 🚀🔥👍🏽 family 👨‍👩‍👧‍👦',
      '日本語のテキスト、中文文本、한국어',
      '  leading spaces and\ttabs\n\nnewlines  ',
      '<|im_start|>assistant\n<think>\n\n</think>\n\nok<|im_end|>',
    ]
  ) {
    assert.equal(qwen.decode(qwen.encode(text)), text);
  }
});

test('Tokenizer.decode() drops special tokens on request, unknown ids always, and [] is ""', () => {
  const ids = qwen.encode('hi<|im_end|>');
  assert.equal(qwen.decode(ids), 'hi<|im_end|>');
  assert.equal(qwen.decode(ids, { skipSpecialTokens: true }), 'hi');
  assert.equal(qwen.decode([...ids.slice(0, 1), 999_999]), 'hi');
  assert.equal(qwen.decode([]), '');
});

test('Tokenizer.tokenToId() and vocabSize describe the vocabulary with added tokens', () => {
  assert.equal(qwen.tokenToId('<|im_end|>'), 151645);
  assert.equal(qwen.tokenToId('Hello'), 9707);
  assert.equal(qwen.tokenToId('no-such-token-here'), undefined);
  assert.equal(qwen.vocabSize, 151669);
});

test('Tokenizer.encode() adds post-processor tokens unless addSpecialTokens is false', async () => {
  const t = await loadTokenizer({ tokenizerJson: tiny });
  assert.deepEqual(t.encode('hello world'), [0, 1, 2]);
  assert.deepEqual(t.encode('hello world', { addSpecialTokens: false }), [1, 2]);
  assert.deepEqual(t.encode('hello moon', { addSpecialTokens: false }), [1, 3]);
});

test('loadTokenizer() rejects malformed files with TokenizerLoadError', async () => {
  await assert.rejects(loadTokenizer({ tokenizerJson: '{' }), TokenizerLoadError);
  await assert.rejects(loadTokenizer({ tokenizerJson: '[]' }), /not a JSON object/);
  await assert.rejects(
    loadTokenizer({ tokenizerJson: tiny, tokenizerConfigJson: 'nope' }),
    /tokenizer_config\.json is not valid JSON/,
  );
  await assert.rejects(loadTokenizer({ tokenizerJson: '{"model":{}}' }), TokenizerLoadError);
});
