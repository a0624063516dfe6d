/**
 * Embeddings end to end: a simulated worker started with `--embedding` serves deterministic unit
 * vectors, as floats or base64; a chat model refuses embeddings.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { currentRuntime } from '../helpers/process.ts';
import { errorBody, MODEL, type Stack, startStack } from '../helpers/stack.ts';

const EMBED = 'embed-model';
const DIMENSIONS = 48;

interface Embeddings {
  object: string;
  model: string;
  data: Array<{ object: string; index: number; embedding: number[] | string }>;
  usage: { prompt_tokens: number; total_tokens: number };
}

const norm = (v: readonly number[]) => Math.sqrt(v.reduce((s, x) => s + x * x, 0));

/** Little-endian float32 bytes in base64 -> numbers. */
function fromBase64(text: string): number[] {
  const binary = atob(text);
  assert.equal(binary.length % 4, 0);
  const view = new DataView(new ArrayBuffer(binary.length));
  for (let i = 0; i < binary.length; i++) view.setUint8(i, binary.charCodeAt(i));
  return Array.from({ length: binary.length / 4 }, (_, i) => view.getFloat32(i * 4, true));
}

describe(`embeddings on ${currentRuntime()}`, () => {
  let stack: Stack;
  before(async () => {
    stack = await startStack({
      mockers: [{}, {
        name: EMBED,
        args: ['--embedding', '--embedding-dimensions', String(DIMENSIONS)],
      }],
    });
  });
  after(async () => {
    await stack?.close();
  });

  const embed = async (body: Record<string, unknown>) => {
    const res = await stack.post('/v1/embeddings', { model: EMBED, ...body });
    const text = await res.text();
    assert.equal(res.status, 200, text);
    return JSON.parse(text) as Embeddings;
  };

  test('float vectors of the configured dimension, unit length, deterministic', async () => {
    const answer = await embed({ input: ['the quick brown fox', 'jumps over the dog'] });
    assert.equal(answer.object, 'list');
    assert.equal(answer.model, EMBED);
    assert.deepEqual(answer.data.map((d) => [d.object, d.index]), [
      ['embedding', 0],
      ['embedding', 1],
    ]);
    const [a, b] = answer.data.map((d) => d.embedding as number[]) as [number[], number[]];
    for (const v of [a, b]) {
      assert.equal(v.length, DIMENSIONS);
      assert.ok(v.every((x) => typeof x === 'number' && Number.isFinite(x)));
      assert.ok(Math.abs(norm(v) - 1) < 1e-5, `norm ${norm(v)}`);
    }
    assert.notDeepEqual(a, b, 'different inputs embed differently');
    assert.ok(answer.usage.prompt_tokens > 0);
    assert.equal(answer.usage.total_tokens, answer.usage.prompt_tokens);

    const again = await embed({ input: 'the quick brown fox' });
    assert.deepEqual(again.data[0]?.embedding, a, 'the same input gives the same vector');
  });

  test('encoding_format base64 carries the same float32 vector', async () => {
    const floats = await embed({ input: 'base64 please' });
    const packed = await embed({ input: 'base64 please', encoding_format: 'base64' });
    const text = packed.data[0]?.embedding;
    assert.equal(typeof text, 'string');
    const decoded = fromBase64(text as string);
    assert.equal(decoded.length, DIMENSIONS);
    assert.deepEqual(decoded, floats.data[0]?.embedding);
    assert.ok(Math.abs(norm(decoded) - 1) < 1e-5);
  });

  test('token-id input embeds like its text would, per id list', async () => {
    const answer = await embed({ input: [[9707, 11], [1879]] });
    assert.equal(answer.data.length, 2);
    assert.equal(answer.usage.prompt_tokens, 3);
    for (const d of answer.data) assert.equal((d.embedding as number[]).length, DIMENSIONS);
  });

  test('a chat model asked for embeddings answers 400', async () => {
    const res = await stack.post('/v1/embeddings', { model: MODEL, input: 'hello' });
    assert.equal(res.status, 400);
    const { error } = await errorBody(res);
    assert.equal(error.param, 'model');
    assert.match(error.message, /does not serve embeddings/);
  });

  test('an embedding model asked for a chat completion is refused with a 4xx', async () => {
    const res = await stack.post('/v1/chat/completions', {
      model: EMBED,
      messages: [{ role: 'user', content: 'hi' }],
    });
    assert.ok(res.status >= 400 && res.status < 500, `status ${res.status}`);
    await errorBody(res);
  });
});
