/**
 * Framing of the TCP request plane (`pipeline/network/codec.rs`, `TcpRequestMessage`):
 *
 * - client -> worker, one per request:
 *   `u16 BE path_len | path | u16 BE headers_len | headers (JSON object) | u32 BE payload_len | payload`
 *   where the payload is a TwoPart message;
 * - worker -> client, one per request in request order: `u32 BE len | bytes`; empty is the ACK,
 *   text is an error ("Unknown endpoint: ...", "Server overloaded: ...").
 */
import { PlaneError } from '../../../core/plane/errors.ts';
import type { DecodeResult, FrameDecoder } from './frame-reader.ts';
import { MAX_MESSAGE_SIZE } from './two-part.ts';

export interface TcpRequestFrame {
  /** The routing key: `{instance_id:x}/{endpoint}`. */
  path: string;
  headers: Record<string, string>;
  /** A TwoPart message. */
  payload: Uint8Array;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder('utf-8', { fatal: true });

export function encodeTcpRequest(frame: TcpRequestFrame): Uint8Array<ArrayBuffer> {
  const path = encoder.encode(frame.path);
  const headers = encoder.encode(JSON.stringify(frame.headers));
  if (path.length > 0xffff) throw new RangeError(`Path of ${path.length} bytes is too long`);
  if (headers.length > 0xffff) {
    throw new RangeError(`Headers of ${headers.length} bytes are too long`);
  }
  const out = new Uint8Array(2 + path.length + 2 + headers.length + 4 + frame.payload.length);
  const view = new DataView(out.buffer);
  view.setUint16(0, path.length);
  out.set(path, 2);
  const headersAt = 2 + path.length;
  view.setUint16(headersAt, headers.length);
  out.set(headers, headersAt + 2);
  const payloadAt = headersAt + 2 + headers.length;
  view.setUint32(payloadAt, frame.payload.length);
  out.set(frame.payload, payloadAt + 4);
  return out;
}

export interface TcpRequestDecoderOptions {
  /** Largest payload accepted, in bytes; a larger one throws "Request too large". @default MAX_MESSAGE_SIZE (32 MiB) */
  maxSize?: number;
}

function text(bytes: Uint8Array, what: string): string {
  try {
    return decoder.decode(bytes);
  } catch (cause) {
    throw new PlaneError('protocol', `Decode error: ${what} is not valid UTF-8`, { cause });
  }
}

function parseHeaders(json: string): Record<string, string> {
  let value: unknown;
  try {
    value = JSON.parse(json);
  } catch (cause) {
    throw new PlaneError('protocol', 'Decode error: headers are not valid JSON', { cause });
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new PlaneError('protocol', 'Decode error: headers are not a JSON object');
  }
  const out: Record<string, string> = {};
  for (const [key, v] of Object.entries(value)) {
    if (typeof v !== 'string') {
      throw new PlaneError('protocol', `Decode error: header "${key}" is not a string`);
    }
    out[key] = v;
  }
  return out;
}

export function tcpRequestDecoder(
  options: TcpRequestDecoderOptions = {},
): FrameDecoder<TcpRequestFrame> {
  const maxSize = options.maxSize ?? MAX_MESSAGE_SIZE;
  return {
    decode(bytes: Uint8Array): DecodeResult<TcpRequestFrame> {
      const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
      if (bytes.length < 2) return { need: 2 };
      const pathLen = view.getUint16(0);
      let offset = 2 + pathLen;
      if (bytes.length < offset + 2) return { need: offset + 2 };
      const headersLen = view.getUint16(offset);
      const headersAt = offset + 2;
      offset = headersAt + headersLen;
      if (bytes.length < offset + 4) return { need: offset + 4 };
      const payloadLen = view.getUint32(offset);
      if (payloadLen > maxSize) {
        throw new PlaneError(
          'protocol',
          `Request too large: ${payloadLen} bytes exceeds the ${maxSize}-byte limit`,
        );
      }
      const size = offset + 4 + payloadLen;
      if (bytes.length < size) return { need: size };
      return {
        frame: {
          path: text(bytes.subarray(2, 2 + pathLen), 'path'),
          headers: parseHeaders(text(bytes.subarray(headersAt, headersAt + headersLen), 'headers')),
          payload: bytes.subarray(offset + 4, size),
        },
        size,
      };
    },
  };
}

/** `u32 BE len | bytes`: the worker's ACK (or error) for one request. */
export function encodeLengthPrefixed(bytes: Uint8Array): Uint8Array<ArrayBuffer> {
  const out = new Uint8Array(4 + bytes.length);
  new DataView(out.buffer).setUint32(0, bytes.length);
  out.set(bytes, 4);
  return out;
}

export interface LengthPrefixedDecoderOptions {
  /** Largest frame accepted, in bytes. @default MAX_MESSAGE_SIZE (32 MiB) */
  maxSize?: number;
}

export function lengthPrefixedDecoder(
  options: LengthPrefixedDecoderOptions = {},
): FrameDecoder<Uint8Array> {
  const maxSize = options.maxSize ?? MAX_MESSAGE_SIZE;
  return {
    decode(bytes: Uint8Array): DecodeResult<Uint8Array> {
      if (bytes.length < 4) return { need: 4 };
      const len = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength).getUint32(0);
      if (len > maxSize) {
        throw new PlaneError(
          'protocol',
          `Frame too large: ${len} bytes exceeds the ${maxSize}-byte limit`,
        );
      }
      if (bytes.length < 4 + len) return { need: 4 + len };
      return { frame: bytes.subarray(4, 4 + len), size: 4 + len };
    },
  };
}
