import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import type { ModelDirFiles } from '../../core/discovery/model-dir.ts';
import { PromptTooLongError } from '../../core/preprocess/preprocessor.ts';
import { ChatTemplateError } from '../../core/preprocess/template.ts';
import { TokenizerLoadError } from '../../core/preprocess/tokenizer.ts';
import { readModelDir } from '../../runtime/model-dir.ts';
import {
  createPreprocessPool,
  PreprocessPoolClosedError,
  PreprocessWorkerError,
} from './preprocess-pool.ts';

const fixture = await readModelDir(
  new URL('../../../tests/fixtures/model/', import.meta.url).pathname,
);
/** The bundled model with a 150k context, so a 100k-token prompt fits. */
const files: ModelDirFiles = {
  ...fixture,
  config: { path: 'config.json', text: JSON.stringify({ max_position_embeddings: 150_000 }) },
};
const pool = await createPreprocessPool({ workers: 2, files });
const inline = await createPreprocessPool({ workers: 0, files });
after(() => Promise.all([pool.close(), inline.close()]));

/** ~100k tokens of varied text (numbers defeat the BPE word cache). */
const longPrompt = Array.from({ length: 8_600 }, (_, i) => `item ${i * 7919} ok`).join(', ');

const requests = [
  { messages: [{ role: 'user', content: 'Hello 🚀 世界' }] },
  {
    messages: [
      { role: 'system', content: 'Be brief.' },
      { role: 'user', content: [{ type: 'text', text: 'Weather?' }] },
    ],
    tools: [{ type: 'function', function: { name: 'get_weather', parameters: {} } }],
    chat_template_args: { enable_thinking: false },
  },
  { messages: [{ role: 'user', content: 'raw text' }], use_raw_prompt: true },
];

test('the pool renders and tokenizes exactly like the inline preprocessor', async () => {
  assert.equal(pool.workers, 2);
  assert.equal(inline.workers, 0);
  assert.deepEqual([pool.eosTokenIds, pool.contextLength], [[151645, 151643], 150_000]);
  assert.equal(pool.tokenizer.vocabSize, inline.tokenizer.vocabSize);
  const pooled = await Promise.all(requests.map((r) => pool.renderChat(r)));
  const local = await Promise.all(requests.map((r) => inline.renderChat(r)));
  // Timings (for --dyn-debug-perf) differ run to run; everything else is identical.
  const untimed = ({ timings: _timings, ...rest }: (typeof local)[number]) => rest;
  assert.deepEqual(pooled.map(untimed), local.map(untimed));
  for (const r of [...pooled, ...local]) {
    assert.ok(r.timings && r.timings.templateMs >= 0 && r.timings.tokenizeMs >= 0);
  }
  assert.ok(pooled[1]!.prompt.includes('<tools>'));
  assert.deepEqual(
    await pool.tokenizePrompt('Hello world'),
    await inline.tokenizePrompt('Hello world'),
  );
});

test('tokenizing a 100k-token prompt in the pool leaves the event loop free', async () => {
  let ticks = 0;
  const ticker = setInterval(() => ticks++, 1);
  try {
    const ids = await pool.tokenizePrompt(longPrompt);
    assert.ok(ids.length >= 100_000, `${ids.length} tokens`);
    assert.ok(ticks > 0, 'the main thread kept ticking while the worker tokenized');
    // The same work inline holds the thread: no tick can run until it is done.
    ticks = 0;
    assert.deepEqual(await inline.tokenizePrompt(longPrompt), ids);
    assert.equal(ticks, 0);
  } finally {
    clearInterval(ticker);
  }
});

test('typed errors cross the thread: PromptTooLongError and ChatTemplateError', async () => {
  await assert.rejects(
    pool.tokenizePrompt(`${longPrompt}, ${longPrompt}`),
    (error: unknown) =>
      error instanceof PromptTooLongError && error.contextLength === 150_000 &&
      error.promptLength > 150_000,
  );
  const noTemplate = await createPreprocessPool({
    workers: 1,
    files: { ...files, tokenizerConfig: { path: 'tokenizer_config.json', text: '{}' } },
  });
  try {
    await assert.rejects(
      noTemplate.renderChat({ messages: [{ role: 'user', content: 'x' }] }),
      ChatTemplateError,
    );
  } finally {
    await noTemplate.close();
  }
});

test('a worker that cannot load the model fails createPreprocessPool()', async () => {
  const broken = { ...files, tokenizer: { path: 'tokenizer.json', text: '{' } };
  await assert.rejects(
    createPreprocessPool({ workers: 1, files: broken, preprocessor: inline.preprocessor }),
    (error: unknown) =>
      error instanceof PreprocessWorkerError &&
      /tokenizer\.json is not valid JSON/.test(error.message),
  );
  await assert.rejects(createPreprocessPool({ workers: 1, files: broken }), TokenizerLoadError);
});

test('close() ends the threads; later calls reject', async () => {
  const p = await createPreprocessPool({ workers: 2, files, preprocessor: inline.preprocessor });
  assert.equal(p.preprocessor, inline.preprocessor);
  assert.equal(p.workers, 2);
  await p.close();
  assert.equal(p.workers, 0);
  await assert.rejects(p.tokenizePrompt('x'), PreprocessPoolClosedError);
  await assert.rejects(p.renderChat(requests[0]!), PreprocessPoolClosedError);
  await p.close();
});
