import assert from 'node:assert/strict';
import { test } from 'node:test';
import { PlaneError } from '../../../core/plane/errors.ts';
import { decodeTwoPart, encodeTwoPart, MAX_MESSAGE_SIZE, twoPartDecoder } from './two-part.ts';

const ascii = (text: string) => [...text].map((c) => c.charCodeAt(0));
const u64 = (n: number) => [0, 0, 0, 0, n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255];

// header `{"a":1}` (7 bytes), body `hi` (2 bytes), checksum 0
const VECTOR = new Uint8Array([...u64(7), ...u64(2), ...u64(0), ...ascii('{"a":1}hi')]);

test('encodeTwoPart() writes u64 BE lengths, a zero checksum, then header and body', () => {
  const bytes = encodeTwoPart({
    header: new TextEncoder().encode('{"a":1}'),
    body: new TextEncoder().encode('hi'),
  });
  assert.deepEqual(bytes, VECTOR);
});

test('encodeTwoPart() of a header-only message has a zero body length', () => {
  const bytes = encodeTwoPart({ header: new Uint8Array([0x22, 0x22]) });
  assert.deepEqual(bytes, new Uint8Array([...u64(2), ...u64(0), ...u64(0), 0x22, 0x22]));
});

test('decodeTwoPart() reads the hand-built vector back', () => {
  const message = decodeTwoPart(VECTOR);
  assert.equal(new TextDecoder().decode(message.header), '{"a":1}');
  assert.equal(new TextDecoder().decode(message.body), 'hi');
});

test('decodeTwoPart() ignores a non-zero checksum (debug builds send xxh3)', () => {
  const bytes = VECTOR.slice();
  bytes[23] = 0x5a;
  assert.equal(decodeTwoPart(bytes).body.length, 2);
});

test('twoPartDecoder() asks for the prefix, then for the whole frame', () => {
  const decoder = twoPartDecoder();
  assert.deepEqual(decoder.decode(VECTOR.subarray(0, 10)), { need: 24 });
  assert.deepEqual(decoder.decode(VECTOR.subarray(0, 26)), { need: 33 });
  const result = decoder.decode(new Uint8Array([...VECTOR, 9, 9]));
  assert.ok('frame' in result);
  assert.equal(result.size, 33);
});

test('twoPartDecoder() refuses a frame over the 32 MiB cap before buffering it', () => {
  assert.equal(MAX_MESSAGE_SIZE, 33554432);
  const over = new Uint8Array([...u64(MAX_MESSAGE_SIZE), ...u64(1), ...u64(0)]);
  assert.throws(
    () => twoPartDecoder().decode(over),
    (e: unknown) => e instanceof PlaneError && e.kind === 'protocol' && /too large/.test(e.message),
  );
  const exact = new Uint8Array([...u64(MAX_MESSAGE_SIZE), ...u64(0), ...u64(0)]);
  assert.deepEqual(twoPartDecoder().decode(exact), { need: 24 + MAX_MESSAGE_SIZE });
});

test('twoPartDecoder() handles u64 lengths past 2^32 as too large', () => {
  const huge = new Uint8Array([0, 0, 0, 1, 0, 0, 0, 0, ...u64(0), ...u64(0)]);
  assert.throws(() => twoPartDecoder().decode(huge), PlaneError);
});

test('decodeTwoPart() rejects truncated and trailing bytes', () => {
  assert.throws(() => decodeTwoPart(VECTOR.subarray(0, 30)), /Truncated message/);
  assert.throws(() => decodeTwoPart(new Uint8Array([...VECTOR, 0])), /Trailing bytes/);
});
