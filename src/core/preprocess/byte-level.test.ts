import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { test } from 'node:test';
import { buildByteLevelTable, createByteLevelDecodeStream } from './byte-level.ts';
import { createDecodeStream } from './detokenizer.ts';
import { loadTokenizer, type Tokenizer } from './tokenizer.ts';

const dir = new URL('../../../tests/fixtures/model/', import.meta.url);
const tokenizer = await loadTokenizer({
  tokenizerJson: await readFile(new URL('tokenizer.json', dir), 'utf8'),
  tokenizerConfigJson: await readFile(new URL('tokenizer_config.json', dir), 'utf8'),
});
const vocabSize = tokenizer.vocabSize;

/** Deterministic pseudo-random numbers (Lehmer). */
function random(seed: number) {
  return () => (seed = (seed * 48271) % 2147483647) / 2147483647;
}

/** Pushes `ids` in chunks of the given sizes (cycled); every delta, flush included. */
function deltas(
  ids: readonly number[],
  options: { library: boolean; skipSpecialTokens?: boolean; sizes?: readonly number[] },
): string[] {
  const decoder = createDecodeStream(tokenizer, options);
  const sizes = options.sizes ?? [1];
  const out: string[] = [];
  for (let i = 0, k = 0; i < ids.length; k++) {
    const n = sizes[k % sizes.length]!;
    out.push(decoder.push(ids.slice(i, i + n)));
    i += n;
  }
  out.push(decoder.flush());
  return out;
}

/**
 * The table path against the library: the concatenated text equals the library's `decode()` of
 * all ids, and each delta equals the library stream's (same chunk boundaries).
 */
function assertSame(
  ids: readonly number[],
  options: { skipSpecial?: boolean; sizes?: number[] } = {},
) {
  const common = { skipSpecialTokens: options.skipSpecial ?? false, sizes: options.sizes };
  const table = deltas(ids, { ...common, library: false });
  const whole = tokenizer.decode(ids, { skipSpecialTokens: options.skipSpecial ?? false });
  assert.equal(table.join(''), whole, `ids ${JSON.stringify(ids)}`);
  assert.deepEqual(table, deltas(ids, { ...common, library: true }), `ids ${JSON.stringify(ids)}`);
}

test('the fixture tokenizer (byte-level BPE) offers a table decode stream', () => {
  assert.ok(tokenizer.decodeStream?.({}));
});

test('table decoding equals the library over realistic text, in chunks of 1 to 4 ids', () => {
  const texts = [
    'Hello, world! The quick brown fox jumps over the lazy dog.',
    '日本語のテキスト、中文文本。한국어 👨‍👩‍👧‍👦 👍🏽 e\u0301 ok 🚀🦊',
    'def f(x):\n    return x ** 2  # ¿qué? «ça» — “quotes” ∑∫√ \t\r\n',
    'tool call: <tool_call>{"name": "get", "arguments": {"x": 1}}</tool_call><|im_end|>',
    '<|im_start|>assistant\n<think>hmm</think>Answer: 42<|endoftext|>',
    '\uFEFFBOM first, then \u0000 NUL and \uFFFD itself',
  ];
  for (const text of texts) {
    const ids = tokenizer.encode(text);
    for (const sizes of [[1], [2], [3, 1], [4]]) {
      assertSame(ids, { sizes });
      assertSame(ids, { sizes, skipSpecial: true });
    }
  }
});

test('table decoding equals the library over random id sequences', () => {
  const rand = random(20261207);
  const special = [151643, 151644, 151645];
  for (let run = 0; run < 300; run++) {
    const length = 1 + Math.floor(rand() * 40);
    const ids = Array.from({ length }, () => {
      const r = rand();
      // Mostly ordinary ids, some single-byte tokens (split characters), some added tokens.
      if (r < 0.7) return Math.floor(rand() * vocabSize);
      if (r < 0.95) return Math.floor(rand() * 256);
      return special[Math.floor(rand() * special.length)]!;
    });
    assertSame(ids, { skipSpecial: run % 2 === 0, sizes: [1 + (run % 3)] });
  }
});

test('multi-byte characters split over byte tokens, and invalid byte sequences', () => {
  // GPT-2's alphabet: printable bytes stand for themselves, the others for 256 + n.
  const alphabet: number[] = [];
  for (let b = 0, next = 256; b < 256; b++) {
    alphabet.push((b >= 33 && b <= 126) || (b >= 161 && b <= 172) || b >= 174 ? b : next++);
  }
  const byte = (b: number) => {
    const id = tokenizer.tokenToId(String.fromCodePoint(alphabet[b]!));
    assert.ok(id !== undefined, `byte ${b}`);
    return id;
  };
  const cases = [
    [0xe4, 0xb8, 0xad], // 中, one byte per token
    [0xf0, 0x9f, 0x9a, 0x80], // 🚀
    [0xf0, 0x9f], // truncated: flushed as U+FFFD
    [0xa1, 0xa2], // lone continuation bytes
    [0xf0, 0xf0, 0xf0, 0xf0, 0xf0, 0xf0], // lead bytes that never complete
    [0xc3, 0xa9, 0xff, 0xc3], // é, an invalid byte, a dangling lead
  ];
  for (const bytes of cases) {
    const ids = bytes.map(byte);
    assertSame(ids);
    // An added token between the bytes ends the byte run: the library decodes runs apart.
    const split = [...ids.slice(0, 1), 151645, ...ids.slice(1)];
    assertSame(split);
    assertSame(split, { skipSpecial: true });
  }
  assert.equal(deltas([byte(0xe4), byte(0xb8), byte(0xad)], { library: false }).join(''), '中');
});

test('ids outside the vocabulary are skipped, as decode() skips them', () => {
  const ids = [...tokenizer.encode('ok'), -1, 1.5, vocabSize + 1000, ...tokenizer.encode(' go')];
  const stream = createDecodeStream(tokenizer);
  assert.equal(ids.map((id) => stream.push([id])).join('') + stream.flush(), 'ok go');
});

test('a token text outside the byte alphabet decodes as byte 0, as the library does', () => {
  const table = buildByteLevelTable({
    tokens: ['a', '\u4e2d', '<x>'],
    addedTokens: new Set(['<x>']),
    specialTokens: new Set(['<x>']),
  });
  const stream = createByteLevelDecodeStream(table);
  assert.equal(stream.push([0, 1, 2]), 'a\u0000<x>');
  const skipping = createByteLevelDecodeStream(table, { skipSpecialTokens: true });
  assert.equal(skipping.push([2, 0]) + skipping.flush(), 'a');
});

test('a tokenizer whose decoder is not byte-level keeps the library path', async () => {
  const json = JSON.parse(await readFile(new URL('tokenizer.json', dir), 'utf8'));
  json.decoder = {
    type: 'Sequence',
    decoders: [{ type: 'Replace', pattern: { String: '\u2581' }, content: ' ' }],
  };
  const other: Tokenizer = await loadTokenizer({ tokenizerJson: JSON.stringify(json) });
  assert.equal(other.decodeStream?.({}), undefined);
});
