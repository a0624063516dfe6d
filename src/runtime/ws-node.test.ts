import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { acceptKey, createFrameReader, encodeFrame } from './ws-node.ts';

/** A client frame: masked, as RFC 6455 requires of clients. */
function clientFrame(opcode: number, payload: Uint8Array, fin = true): Buffer {
  const mask = Buffer.from([0x37, 0xfa, 0x21, 0x3d]);
  const length = payload.length;
  const head = length < 126 ? 2 : length < 65536 ? 4 : 10;
  const out = Buffer.alloc(head + 4 + length);
  out[0] = (fin ? 0x80 : 0) | opcode;
  if (length < 126) out[1] = 0x80 | length;
  else if (length < 65536) {
    out[1] = 0x80 | 126;
    out.writeUInt16BE(length, 2);
  } else {
    out[1] = 0x80 | 127;
    out.writeBigUInt64BE(BigInt(length), 2);
  }
  mask.copy(out, head);
  for (let i = 0; i < length; i++) out[head + 4 + i] = payload[i]! ^ mask[i & 3]!;
  return out;
}

function reader(max = 1 << 20) {
  const frames: Array<{ fin: boolean; opcode: number; text: string }> = [];
  const errors: number[] = [];
  const read = createFrameReader({
    frame: (fin, opcode, payload) => frames.push({ fin, opcode, text: payload.toString() }),
    error: (code) => errors.push(code),
  }, max);
  return { read, frames, errors };
}

describe('ws-node', () => {
  test('acceptKey() gives the RFC 6455 example answer', () => {
    assert.equal(acceptKey('dGhlIHNhbXBsZSBub25jZQ=='), 's3pPLMBiTxaQ9kYGzzhZRbK+xOo=');
  });

  test('encodeFrame() uses 7-, 16- and 64-bit lengths', () => {
    const small = encodeFrame(1, Buffer.from('hi'));
    assert.deepEqual([...small], [0x81, 2, 0x68, 0x69]);
    const medium = encodeFrame(1, Buffer.alloc(300));
    assert.deepEqual([medium[1], medium.readUInt16BE(2), medium.length], [126, 300, 304]);
    const large = encodeFrame(2, Buffer.alloc(70000));
    assert.deepEqual([large[0], large[1], Number(large.readBigUInt64BE(2))], [0x82, 127, 70000]);
  });

  test('the reader unmasks frames split anywhere across chunks', () => {
    const text = 'x'.repeat(200) + ' ✓';
    const bytes = Buffer.concat([
      clientFrame(1, Buffer.from('hello')),
      clientFrame(1, Buffer.from(text)),
      clientFrame(9, Buffer.from('ping')),
    ]);
    const { read, frames } = reader();
    for (let i = 0; i < bytes.length; i += 3) read(bytes.subarray(i, i + 3));
    assert.deepEqual(frames, [
      { fin: true, opcode: 1, text: 'hello' },
      { fin: true, opcode: 1, text },
      { fin: true, opcode: 9, text: 'ping' },
    ]);
  });

  test('fragments arrive as frames with fin false until the last', () => {
    const { read, frames } = reader();
    read(Buffer.concat([
      clientFrame(1, Buffer.from('ab'), false),
      clientFrame(0, Buffer.from('cd'), true),
    ]));
    assert.deepEqual(frames.map((f) => [f.fin, f.opcode, f.text]), [
      [false, 1, 'ab'],
      [true, 0, 'cd'],
    ]);
  });

  test('an unmasked client frame is a protocol error (1002); an oversized one is 1009', () => {
    const plain = reader();
    plain.read(encodeFrame(1, Buffer.from('hi')));
    assert.deepEqual(plain.errors, [1002]);
    const big = reader(10);
    big.read(clientFrame(1, Buffer.alloc(11)));
    assert.deepEqual(big.errors, [1009]);
    assert.equal(big.frames.length, 0);
  });
});
