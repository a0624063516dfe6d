/**
 * Dynamo's TwoPart codec (`pipeline/network/codec/two_part.rs`), the envelope of every request and
 * of every frame on a response stream:
 *
 *     u64 BE header_len | u64 BE body_len | u64 BE checksum | header | body
 *
 * The checksum is 0 (what release builds send); a non-zero one is accepted without verifying it.
 * "Header-only" frames have an empty body, "data-only" frames an empty header.
 */
import { PlaneError } from '../../../core/plane/errors.ts';
import type { DecodeResult, FrameDecoder } from './frame-reader.ts';

export interface TwoPartMessage {
  header: Uint8Array;
  body: Uint8Array;
}

/** `DYN_TCP_MAX_MESSAGE_SIZE`'s default: 32 MiB for header plus body. */
export const MAX_MESSAGE_SIZE = 32 * 1024 * 1024;

const PREFIX = 24;
const EMPTY = new Uint8Array(0);

export function encodeTwoPart(
  message: { header?: Uint8Array; body?: Uint8Array },
): Uint8Array<ArrayBuffer> {
  const header = message.header ?? EMPTY;
  const body = message.body ?? EMPTY;
  const out = new Uint8Array(PREFIX + header.length + body.length);
  const view = new DataView(out.buffer);
  view.setBigUint64(0, BigInt(header.length));
  view.setBigUint64(8, BigInt(body.length));
  view.setBigUint64(16, 0n);
  out.set(header, PREFIX);
  out.set(body, PREFIX + header.length);
  return out;
}

export interface TwoPartDecoderOptions {
  /** Largest header plus body accepted, in bytes. @default MAX_MESSAGE_SIZE (32 MiB) */
  maxSize?: number;
}

/** A `FrameDecoder` for a stream of TwoPart frames (the call-home socket, an HTTP reply body). */
export function twoPartDecoder(options: TwoPartDecoderOptions = {}): FrameDecoder<TwoPartMessage> {
  const maxSize = options.maxSize ?? MAX_MESSAGE_SIZE;
  return {
    decode(bytes: Uint8Array): DecodeResult<TwoPartMessage> {
      if (bytes.length < PREFIX) return { need: PREFIX };
      const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
      const headerLen = view.getBigUint64(0);
      const bodyLen = view.getBigUint64(8);
      const total = headerLen + bodyLen;
      if (total > BigInt(maxSize)) {
        throw new PlaneError(
          'protocol',
          `Message too large: ${total} bytes exceeds the ${maxSize}-byte limit`,
        );
      }
      const h = Number(headerLen);
      const size = PREFIX + h + Number(bodyLen);
      if (bytes.length < size) return { need: size };
      return {
        frame: {
          header: bytes.subarray(PREFIX, PREFIX + h),
          body: bytes.subarray(PREFIX + h, size),
        },
        size,
      };
    },
  };
}

/** Decodes one complete TwoPart message (an HTTP request body, a NATS payload). */
export function decodeTwoPart(
  bytes: Uint8Array,
  options: TwoPartDecoderOptions = {},
): TwoPartMessage {
  const result = twoPartDecoder(options).decode(bytes);
  if ('need' in result) {
    throw new PlaneError(
      'protocol',
      `Truncated message: ${bytes.length} bytes, ${result.need} expected`,
    );
  }
  if (result.size !== bytes.length) {
    throw new PlaneError(
      'protocol',
      `Trailing bytes after message: ${bytes.length - result.size} bytes`,
    );
  }
  return result.frame;
}
