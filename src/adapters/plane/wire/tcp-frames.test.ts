import assert from 'node:assert/strict';
import { test } from 'node:test';
import { PlaneError } from '../../../core/plane/errors.ts';
import {
  encodeLengthPrefixed,
  encodeTcpRequest,
  lengthPrefixedDecoder,
  tcpRequestDecoder,
} from './tcp-frames.ts';

const ascii = (text: string) => [...text].map((c) => c.charCodeAt(0));

// path "7/gen", headers {"a":"b"}, payload 01 02 03
const VECTOR = new Uint8Array([
  0,
  5,
  ...ascii('7/gen'),
  0,
  9,
  ...ascii('{"a":"b"}'),
  0,
  0,
  0,
  3,
  1,
  2,
  3,
]);

test('encodeTcpRequest() writes u16 path, u16 headers JSON, u32 payload (big-endian)', () => {
  const bytes = encodeTcpRequest({
    path: '7/gen',
    headers: { a: 'b' },
    payload: new Uint8Array([1, 2, 3]),
  });
  assert.deepEqual(bytes, VECTOR);
});

test('tcpRequestDecoder() reads the hand-built vector and reports its size', () => {
  const result = tcpRequestDecoder().decode(new Uint8Array([...VECTOR, 0xff]));
  assert.ok('frame' in result);
  assert.equal(result.size, VECTOR.length);
  assert.equal(result.frame.path, '7/gen');
  assert.deepEqual(result.frame.headers, { a: 'b' });
  assert.deepEqual(result.frame.payload, new Uint8Array([1, 2, 3]));
});

test('tcpRequestDecoder() asks for more at every section boundary', () => {
  const decoder = tcpRequestDecoder();
  assert.deepEqual(decoder.decode(VECTOR.subarray(0, 1)), { need: 2 });
  assert.deepEqual(decoder.decode(VECTOR.subarray(0, 4)), { need: 9 });
  assert.deepEqual(decoder.decode(VECTOR.subarray(0, 9)), { need: 22 });
  assert.deepEqual(decoder.decode(VECTOR.subarray(0, 22)), { need: 25 });
});

test('tcpRequestDecoder() says "Request too large" past the cap', () => {
  const decoder = tcpRequestDecoder({ maxSize: 2 });
  assert.throws(
    () => decoder.decode(VECTOR),
    (e: unknown) => e instanceof PlaneError && e.message.startsWith('Request too large'),
  );
});

test('tcpRequestDecoder() rejects headers that are not a JSON object of strings', () => {
  const frame = (headers: string) =>
    new Uint8Array([0, 1, 0x70, 0, headers.length, ...ascii(headers), 0, 0, 0, 0]);
  for (const headers of ['{', '[]', '{"a":1}']) {
    assert.throws(
      () => tcpRequestDecoder().decode(frame(headers)),
      (e: unknown) => e instanceof PlaneError && e.message.startsWith('Decode error'),
    );
  }
});

test('encodeLengthPrefixed() and lengthPrefixedDecoder(): ACK is four zero bytes', () => {
  assert.deepEqual(encodeLengthPrefixed(new Uint8Array()), new Uint8Array([0, 0, 0, 0]));
  assert.deepEqual(
    encodeLengthPrefixed(new Uint8Array(ascii('ok'))),
    new Uint8Array([0, 0, 0, 2, 111, 107]),
  );
  const decoder = lengthPrefixedDecoder();
  assert.deepEqual(decoder.decode(new Uint8Array([0, 0, 0])), { need: 4 });
  assert.deepEqual(decoder.decode(new Uint8Array([0, 0, 0, 2, 111])), { need: 6 });
  const result = decoder.decode(new Uint8Array([0, 0, 0, 0, 0, 0, 0, 2, 111, 107]));
  assert.ok('frame' in result);
  assert.equal(result.size, 4);
  assert.equal(result.frame.length, 0);
});
