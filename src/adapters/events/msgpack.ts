/**
 * MessagePack for the ZMQ planes (`@msgpack/msgpack`, pure JS): 64-bit integers decode to
 * `bigint` (smaller ones stay numbers) and a `bigint` encodes as int64/uint64, so u64 hashes and
 * ids stay exact.
 */
import { Decoder, Encoder } from '@msgpack/msgpack';

const encoder = new Encoder({ useBigInt64: true, ignoreUndefined: true });
const decoder = new Decoder({ useBigInt64: true });

export function encodeMsgpack(value: unknown): Uint8Array {
  return encoder.encode(value);
}

/** Throws on malformed input or trailing bytes. */
export function decodeMsgpack(bytes: Uint8Array): unknown {
  return decoder.decode(bytes);
}
