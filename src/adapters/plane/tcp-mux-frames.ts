/**
 * Framing of the TCP response mux (Dynamo's `tcp_response_mux_v1`, PR #11918): after a TwoPart
 * header-only handshake `{"kind":"response_mux","version":1,"frontend_server_id","connection_id"}`
 * every frame on the connection, both ways, is
 *
 *     u32 BE payload_len | u8 kind | u8 flags (0) | u16 reserved (0) | 16-byte stream UUID | payload
 *
 * so many response streams share a few persistent connections.
 */
import { PlaneError } from '../../core/plane/errors.ts';
import type { DecodeResult, FrameDecoder } from './wire/frame-reader.ts';
import { MAX_MESSAGE_SIZE } from './wire/two-part.ts';

export const MUX_TRANSPORT = 'tcp_response_mux_v1';
export const MUX_VERSION = 1;
export const MUX_HEADER_SIZE = 24;

export const MuxKind = {
  /** Worker -> frontend. Empty payload: the stream is open; else `{"error":...}` (the prologue). */
  Prologue: 1,
  /** Worker -> frontend: one `{"data":...,"complete_final":false}` item. */
  Data: 2,
  /** Worker -> frontend: the stream completed (`complete_final`). */
  End: 3,
  /** Frontend -> worker: stop generating (graceful). */
  Stop: 4,
  /** Frontend -> worker: kill the request. */
  Kill: 5,
  /** Frontend -> worker: u32 BE credits (bytes of payload the stream may send more). */
  WindowUpdate: 6,
  /** Either way: the stream is abandoned without completing (the frontend sees `disconnected`). */
  Reset: 7,
  /** Frontend -> worker, nil stream id: u64 BE per-stream window in bytes. */
  ConnectionAck: 8,
} as const;
export type MuxKind = (typeof MuxKind)[keyof typeof MuxKind];

export interface MuxFrame {
  kind: number;
  /** The stream UUID's 16 bytes as a 16-character string, one char per byte (`streamKey()`). */
  stream: string;
  payload: Uint8Array;
}

/** The connection handshake, a TwoPart header. */
export interface MuxHandshake {
  kind: 'response_mux';
  version: number;
  frontend_server_id: string;
  connection_id: string;
}

/** `connection_info.info` of the `tcp_response_mux_v1` transport. */
export interface MuxConnectionInfo {
  /** `host:port` of the frontend's response listener. */
  address: string;
  frontend_server_id: string;
  stream_id: string;
  /** The request id. */
  context: string;
  version: number;
}

/**
 * A UUID (`xxxxxxxx-xxxx-...`, or 32 hex digits) as the key streams are looked up by: its 16
 * bytes as a 16-character string, so a frame's key is one `String.fromCharCode` call. Throws
 * `RangeError` when it is not a UUID.
 */
export function streamKey(uuid: string): string {
  const hex = uuid.replaceAll('-', '');
  if (!/^[0-9a-fA-F]{32}$/.test(hex)) throw new RangeError(`"${uuid}" is not a UUID`);
  let key = '';
  for (let i = 0; i < 32; i += 2) key += String.fromCharCode(parseInt(hex.slice(i, i + 2), 16));
  return key;
}

/** The bytes of one frame; `stream` is a key from `streamKey()`. */
export function encodeMuxFrame(kind: number, stream: string, payload?: Uint8Array): Uint8Array {
  const size = payload?.length ?? 0;
  const out = new Uint8Array(MUX_HEADER_SIZE + size);
  out[0] = size >>> 24;
  out[1] = (size >>> 16) & 0xff;
  out[2] = (size >>> 8) & 0xff;
  out[3] = size & 0xff;
  out[4] = kind;
  for (let i = 0; i < 16; i++) out[8 + i] = stream.charCodeAt(i);
  if (payload) out.set(payload, MUX_HEADER_SIZE);
  return out;
}

const utf8 = new TextEncoder();

/**
 * One frame whose payload is the UTF-8 of `text`, encoded straight into the frame (no separate
 * payload buffer) when it fits the optimistic one-byte-per-character guess.
 */
export function encodeMuxTextFrame(kind: number, stream: string, text: string): Uint8Array {
  const out = new Uint8Array(MUX_HEADER_SIZE + text.length);
  const { read, written } = utf8.encodeInto(text, out.subarray(MUX_HEADER_SIZE));
  if (read !== text.length) return encodeMuxFrame(kind, stream, utf8.encode(text));
  out[0] = written >>> 24;
  out[1] = (written >>> 16) & 0xff;
  out[2] = (written >>> 8) & 0xff;
  out[3] = written & 0xff;
  out[4] = kind;
  for (let i = 0; i < 16; i++) out[8 + i] = stream.charCodeAt(i);
  return out;
}

export const NIL_STREAM = '\0'.repeat(16);

export function encodeU32(value: number): Uint8Array {
  const out = new Uint8Array(4);
  new DataView(out.buffer).setUint32(0, value);
  return out;
}

export function encodeU64(value: number): Uint8Array {
  const out = new Uint8Array(8);
  new DataView(out.buffer).setBigUint64(0, BigInt(value));
  return out;
}

export function readU32(payload: Uint8Array): number {
  if (payload.length < 4) {
    throw new PlaneError('protocol', 'Mux frame payload shorter than 4 bytes');
  }
  return new DataView(payload.buffer, payload.byteOffset, 4).getUint32(0);
}

/**
 * A decoder that yields every complete frame in the buffer at once (one array per read), so a
 * batch written in one turn is also handled in one turn.
 */
export function muxBatchDecoder(
  options: { maxSize?: number } = {},
): FrameDecoder<MuxFrame[]> {
  const maxSize = options.maxSize ?? MAX_MESSAGE_SIZE;
  return {
    decode(bytes: Uint8Array): DecodeResult<MuxFrame[]> {
      const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
      const frames: MuxFrame[] = [];
      let at = 0;
      while (bytes.length - at >= MUX_HEADER_SIZE) {
        const size = view.getUint32(at);
        if (size > maxSize) {
          throw new PlaneError(
            'protocol',
            `Mux frame too large: ${size} bytes exceeds the ${maxSize}-byte limit`,
          );
        }
        const end = at + MUX_HEADER_SIZE + size;
        if (bytes.length < end) {
          if (frames.length === 0) return { need: end };
          break;
        }
        const stream = String.fromCharCode.apply(null, bytes.subarray(at + 8, at + 24) as never);
        frames.push({ kind: bytes[at + 4]!, stream, payload: bytes.subarray(at + 24, end) });
        at = end;
      }
      if (frames.length === 0) return { need: MUX_HEADER_SIZE };
      return { frame: frames, size: at };
    },
  };
}
