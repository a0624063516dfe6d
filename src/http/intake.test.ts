import assert from 'node:assert/strict';
import { test } from 'node:test';
import { InvalidJsonError, PayloadTooLargeError, RequestTimeoutError } from '../core/errors.ts';
import {
  concatChunks,
  isJsonContentType,
  parseJsonLenient,
  readBodyChunks,
  readBodyText,
  sizeOf,
} from './intake.ts';

test('isJsonContentType() accepts application/json and application/*+json with parameters', () => {
  assert.equal(isJsonContentType('application/json'), true);
  assert.equal(isJsonContentType('Application/JSON; charset=utf-8'), true);
  assert.equal(isJsonContentType('application/vnd.api+json'), true);
  assert.equal(isJsonContentType('text/plain'), false);
  assert.equal(isJsonContentType('application/jsonp'), false);
  assert.equal(isJsonContentType(undefined), false);
});

test('parseJsonLenient() escapes raw control characters inside strings', () => {
  assert.deepEqual(parseJsonLenient('{"a":"line\nbreak\tand tab"}'), { a: 'line\nbreak\tand tab' });
  assert.throws(() => parseJsonLenient('{"a":'), InvalidJsonError);
  assert.throws(() => parseJsonLenient('{"a":1}\n{'), /Failed to parse the request body as JSON/);
});

function streamOf(
  chunks: number,
  size: number,
  pulled: { count: number },
): ReadableStream<Uint8Array> {
  return new ReadableStream({
    pull(controller) {
      if (pulled.count >= chunks) return controller.close();
      pulled.count++;
      controller.enqueue(new Uint8Array(size).fill(0x20));
    },
  }, { highWaterMark: 0 });
}

test('readBodyText() stops reading a chunked body as soon as it passes the limit', async () => {
  const pulled = { count: 0 };
  // 1000 chunks of 64 KiB = 62.5 MiB offered; the limit is 1 MiB.
  const request = new Request('http://x/', {
    method: 'POST',
    body: streamOf(1000, 64 * 1024, pulled),
    duplex: 'half',
  } as RequestInit);
  await assert.rejects(readBodyText(request, 1), PayloadTooLargeError);
  assert.ok(pulled.count < 40, `read ${pulled.count} chunks`);
});

test('readBodyText() refuses a declared Content-Length over the limit without reading', async () => {
  const pulled = { count: 0 };
  const request = new Request('http://x/', {
    method: 'POST',
    body: streamOf(10, 1024, pulled),
    headers: { 'content-length': String(3 * 1024 * 1024) },
    duplex: 'half',
  } as RequestInit);
  await assert.rejects(
    readBodyText(request, 2),
    /exceeds the limit of 2 MB set by DYN_HTTP_BODY_LIMIT_MB/,
  );
  assert.equal(pulled.count, 0);
});

test('readBodyText() decodes invalid UTF-8 as U+FFFD', async () => {
  const request = new Request('http://x/', {
    method: 'POST',
    body: new Uint8Array([0x22, 0xff, 0x22]),
  });
  assert.equal(await readBodyText(request, 1), '"\uFFFD"');
});

test('readBodyText() answers 408 when the body has not all arrived by the deadline', async () => {
  let cancelled = false;
  // One byte, then nothing: a client trickling its body.
  const body = new ReadableStream<Uint8Array>({
    start(controller) {
      controller.enqueue(new Uint8Array([0x7b]));
    },
    cancel() {
      cancelled = true;
    },
  });
  const request = new Request('http://x/', { method: 'POST', body, duplex: 'half' } as RequestInit);
  await assert.rejects(readBodyText(request, 1, { timeoutMs: 20 }), (error: unknown) => {
    assert.ok(error instanceof RequestTimeoutError);
    assert.equal(error.status, 408);
    assert.match(error.message, /--http-body-timeout-secs/);
    return true;
  });
  assert.equal(cancelled, true);
  // A body that arrives in time is read as usual.
  const quick = new Request('http://x/', { method: 'POST', body: '{"a":1}' });
  assert.equal(await readBodyText(quick, 1, { timeoutMs: 1000 }), '{"a":1}');
});

test('readBodyChunks() gives each chunk a buffer of its own, copying views into larger buffers', async () => {
  const shared = new TextEncoder().encode('xx{"a":[1,2,3]}yy');
  const own = new TextEncoder().encode('  ');
  const request = new Request('http://x/', {
    method: 'POST',
    body: new ReadableStream<Uint8Array>({
      start(controller) {
        controller.enqueue(shared.subarray(2, 9));
        controller.enqueue(shared.subarray(9, 15));
        controller.enqueue(own);
        controller.close();
      },
    }),
    duplex: 'half',
  } as RequestInit);
  const chunks = await readBodyChunks(request, 1);
  for (const chunk of chunks) {
    assert.equal(chunk.byteOffset, 0);
    assert.equal(chunk.byteLength, chunk.buffer.byteLength, 'the whole of its buffer');
    assert.notEqual(chunk.buffer, shared.buffer);
  }
  assert.equal(sizeOf(chunks), 15);
  assert.equal(new TextDecoder().decode(concatChunks(chunks)), '{"a":[1,2,3]}  ');
});
