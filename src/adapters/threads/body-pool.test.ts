import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { InvalidJsonError, ServiceUnavailableError, ValidationError } from '../../core/errors.ts';
import { RequestLimitError, type RequestLimits } from '../../core/request-limits.ts';
import { parseJsonBody } from '../../http/intake.ts';
import { createBodyPool } from './body-pool.ts';

const limits: RequestLimits = { maxChars: 1000, maxMessages: 3, maxPrompts: 4, maxDepth: 8 };
const bytes = (text: string) => new TextEncoder().encode(text);
/** A body in chunks of at most 7 bytes, as a slow network would hand it over. */
const chunks = (text: string) => {
  const all = bytes(text);
  const out: Uint8Array[] = [];
  for (let i = 0; i < all.byteLength; i += 7) out.push(all.slice(i, i + 7));
  return out;
};

/** What `parseJsonBody` does inline with `text`: the body, or the error's class and fields. */
function inline(text: string): unknown {
  try {
    return { body: parseJsonBody(bytes(text), limits) };
  } catch (error) {
    return describe_(error);
  }
}
function describe_(error: unknown) {
  const e = error as RequestLimitError;
  return { error: e.constructor.name, message: e.message, code: e.code, param: e.param };
}

describe('createBodyPool()', () => {
  test('the thread answers as the inline path does: bodies, refusals, bad JSON, 1e400', async () => {
    const pool = createBodyPool();
    try {
      assert.equal(pool.started, false, 'no thread before the first body');
      const cases = [
        '{"model":"m","messages":[{"role":"user","content":"hé \u{1F600}"}]}',
        // Raw control characters inside strings are escaped and parsed, leniently.
        '{"a":"line\nbreak"}',
        '{"messages":[{},{},{},{}]}',
        '{"prompt":["a","b","c","d","e"]}',
        `{"x":${'['.repeat(20)}1${']'.repeat(20)}}`,
        '{"max_tokens":1e400}',
        `{"content":"${'x'.repeat(2000)}"}`,
        '{"model": ',
        '',
      ];
      for (const text of cases) {
        const got = await pool.parse(chunks(text), limits).then(
          (body) => ({ body }),
          describe_,
        );
        assert.deepEqual(got, inline(text), text.slice(0, 40));
      }
      assert.equal(pool.started, true);
      // The errors are the classes the app maps to 400s.
      await assert.rejects(
        pool.parse(chunks('{"messages":[{},{},{},{}]}'), limits),
        RequestLimitError,
      );
      await assert.rejects(pool.parse(chunks('{'), limits), InvalidJsonError);
      await assert.rejects(pool.parse(chunks('{"t":1e999}'), limits), ValidationError);
      // Invalid UTF-8 becomes U+FFFD, as inline.
      const invalid = new Uint8Array([...bytes('{"a":"'), 0xff, 0xfe, ...bytes('"}')]);
      assert.deepEqual(await pool.parse([invalid], limits), { a: '\uFFFD\uFFFD' });
    } finally {
      await pool.close();
    }
  });

  test('a view into a larger buffer is copied, not taken from its owner', async () => {
    const pool = createBodyPool();
    try {
      const whole = bytes('xx{"a":1}yy');
      const view = whole.subarray(2, 9);
      assert.deepEqual(await pool.parse([view], limits), { a: 1 });
      assert.equal(whole.byteLength, 11, 'the owner still has its bytes');
      assert.equal(new TextDecoder().decode(whole), 'xx{"a":1}yy');
    } finally {
      await pool.close();
    }
  });

  test('bodies in flight at once each get their own answer', async () => {
    const pool = createBodyPool();
    try {
      const texts = Array.from({ length: 20 }, (_, i) => `{"i":${i},"s":"${'y'.repeat(i * 40)}"}`);
      const answers = await Promise.all(texts.map((t) => pool.parse(chunks(t), limits)));
      assert.deepEqual(answers, texts.map((t) => JSON.parse(t)));
    } finally {
      await pool.close();
    }
  });

  test('after close() bodies are parsed inline, with the same answers', async () => {
    const pool = createBodyPool();
    await pool.parse(chunks('{}'), limits);
    await pool.close();
    assert.equal(pool.started, false);
    assert.deepEqual(await pool.parse(chunks('{"a":[1,2]}'), limits), { a: [1, 2] });
    await assert.rejects(
      pool.parse(chunks('{"messages":[{},{},{},{}]}'), limits),
      RequestLimitError,
    );
  });
});

test('a thread that fails on a body answers it with a 503, and later bodies are parsed inline', async () => {
  const pool = createBodyPool({
    entry: new URL('../../../tests/fixtures/threads/body-worker-failing.ts', import.meta.url),
  });
  try {
    // An error that is not a refusal: the bytes went to the thread, so the answer is a retry.
    await assert.rejects(pool.parse(chunks('{"a":1}'), limits), (error: unknown) => {
      assert.ok(error instanceof ServiceUnavailableError, String(error));
      assert.equal(error.status, 503);
      return true;
    });
    // The thread dies holding the next body: that one gets a 503 too...
    await assert.rejects(pool.parse(chunks('{"b":2}'), limits), ServiceUnavailableError);
    // ...and from then on bodies are parsed on this thread, with the usual answers.
    assert.deepEqual(await pool.parse(chunks('{"c":3}'), limits), { c: 3 });
    await assert.rejects(pool.parse(chunks('{'), limits), InvalidJsonError);
  } finally {
    await pool.close();
  }
});
