import assert from 'node:assert/strict';
import { test } from 'node:test';
import { PlaneError } from '../../../core/plane/errors.ts';
import { concatBytes, readFrames } from './frame-reader.ts';
import { encodeLengthPrefixed, lengthPrefixedDecoder } from './tcp-frames.ts';
import { encodeTwoPart, twoPartDecoder } from './two-part.ts';

const bytes = (text: string) => new TextEncoder().encode(text);
const text = (b: Uint8Array) => new TextDecoder().decode(b);

function streamOf(chunks: Uint8Array[], onCancel?: () => void): ReadableStream<Uint8Array> {
  let i = 0;
  return new ReadableStream<Uint8Array>({
    pull(controller) {
      if (i < chunks.length) controller.enqueue(chunks[i++]!);
      else controller.close();
    },
    cancel() {
      onCancel?.();
    },
  });
}

async function collect<T>(frames: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const frame of frames) out.push(frame);
  return out;
}

const WIRE = concatBytes(
  ['a', '', 'hello', 'x'.repeat(300)].map((t) => encodeLengthPrefixed(bytes(t))),
);

test('readFrames() decodes frames split into one-byte chunks', async () => {
  const chunks = [...WIRE].map((b) => new Uint8Array([b]));
  const frames = await collect(readFrames(streamOf(chunks), lengthPrefixedDecoder()));
  assert.deepEqual(frames.map(text), ['a', '', 'hello', 'x'.repeat(300)]);
});

test('readFrames() decodes several frames from one chunk', async () => {
  const frames = await collect(readFrames(streamOf([WIRE]), lengthPrefixedDecoder()));
  assert.equal(frames.length, 4);
});

test('readFrames() decodes frames whose boundaries straddle chunks', async () => {
  const wire = concatBytes(
    [1, 2, 3].map((n) =>
      encodeTwoPart({ header: bytes(`{"n":${n}}`), body: bytes('b'.repeat(n * 100)) })
    ),
  );
  for (const size of [5, 23, 24, 25, 97]) {
    const chunks: Uint8Array[] = [];
    for (let at = 0; at < wire.length; at += size) chunks.push(wire.subarray(at, at + size));
    const frames = await collect(readFrames(streamOf(chunks), twoPartDecoder()));
    assert.deepEqual(frames.map((f) => text(f.header)), ['{"n":1}', '{"n":2}', '{"n":3}']);
    assert.deepEqual(frames.map((f) => f.body.length), [100, 200, 300]);
  }
});

test('readFrames() throws kind disconnected when the stream ends inside a frame', async () => {
  await assert.rejects(
    collect(readFrames(streamOf([WIRE.subarray(0, 7)]), lengthPrefixedDecoder())),
    (e: unknown) => e instanceof PlaneError && e.kind === 'disconnected',
  );
});

test('readFrames() passes on decoder errors', async () => {
  const tooBig = encodeLengthPrefixed(bytes('abcdef'));
  await assert.rejects(
    collect(readFrames(streamOf([tooBig]), lengthPrefixedDecoder({ maxSize: 4 }))),
    (e: unknown) => e instanceof PlaneError && e.kind === 'protocol',
  );
});

test('readFrames() cancels the stream when the consumer stops early', async () => {
  let cancelled = false;
  const stream = streamOf([WIRE, WIRE], () => {
    cancelled = true;
  });
  for await (const _ of readFrames(stream, lengthPrefixedDecoder())) break;
  assert.equal(cancelled, true);
});
