import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { test } from 'node:test';
import { eosTokenIdsOf, maxContextOf, modelCardFor, wordTokenIdsOf } from './model-dir.ts';

const dir = new URL('../../../tests/fixtures/model/', import.meta.url);
const load = async (name: string) => ({
  path: `tests/fixtures/model/${name}`,
  text: await readFile(new URL(name, dir), 'utf8'),
});

test('the bundled Qwen3 directory yields a Tokens card with checksummed artifacts', async () => {
  const files = {
    dir: 'tests/fixtures/model',
    config: await load('config.json'),
    tokenizer: await load('tokenizer.json'),
    tokenizerConfig: await load('tokenizer_config.json'),
    generationConfig: await load('generation_config.json'),
  };
  assert.equal(maxContextOf(files), 40960);
  assert.deepEqual(eosTokenIdsOf(files), [151645, 151643]);
  const card = await modelCardFor(files, {
    name: 'Qwen/Qwen3-0.6B',
    kvCacheBlockSize: 64,
    runtimeConfig: { total_kv_blocks: 16384, max_num_seqs: 256, max_num_batched_tokens: 8192 },
  });
  assert.equal(card.display_name, 'Qwen/Qwen3-0.6B');
  assert.equal(card.slug, 'qwen--qwen3-0_6b');
  assert.equal(card.model_type, 'Chat | Completions');
  assert.equal(card.model_input, 'Tokens');
  assert.equal(card.kv_cache_block_size, 64);
  assert.equal(card.runtime_config.context_length, 40960);
  assert.equal(card.runtime_config.total_kv_blocks, 16384);
  assert.match(card.tokenizer?.hf_tokenizer_json?.checksum ?? '', /^sha256:[0-9a-f]{64}$/);
  assert.equal(
    card.prompt_formatter?.hf_tokenizer_config_json?.path,
    'tests/fixtures/model/tokenizer_config.json',
  );
});

test('wordTokenIdsOf() keeps whole lower-case words with a leading space', () => {
  const tokenizer = JSON.stringify({
    model: {
      vocab: { 'Ġthe': 5, 'Ġcat': 9, 'ĠCat': 10, 'ing': 11, 'Ġa': 12, 'Ġhouse': 3, '<|x|>': 4 },
    },
  });
  assert.deepEqual(wordTokenIdsOf(tokenizer), [3, 5, 9]);
});

test("eosTokenIdsOf() falls back to the tokenizer's eos_token", () => {
  const files = {
    dir: 'x',
    tokenizerConfig: { path: 'a', text: JSON.stringify({ eos_token: '</s>' }) },
    tokenizer: { path: 'b', text: JSON.stringify({ added_tokens: [{ id: 2, content: '</s>' }] }) },
  };
  assert.deepEqual(eosTokenIdsOf(files), [2]);
});
