/**
 * Incremental frame reading: turns a byte stream (a TCP socket, an HTTP body) into frames, however
 * the bytes were split into chunks. A `FrameDecoder` knows one framing; `readFrames()` buffers.
 */
import { PlaneError } from '../../../core/plane/errors.ts';

/** One decoded frame and its size in bytes, or how many bytes are needed to decode one. */
export type DecodeResult<T> = { frame: T; size: number } | { need: number };

export interface FrameDecoder<T> {
  /**
   * Decodes the frame at the start of `bytes`. When `bytes` holds only part of it, returns the
   * total length needed (larger than `bytes.length`; a lower bound when the header is incomplete).
   * Throws `PlaneError` of kind `protocol` when the bytes cannot be a valid frame.
   */
  decode(bytes: Uint8Array): DecodeResult<T>;
}

/** Joins byte arrays into one (no copy when there is only one). */
export function concatBytes(parts: readonly Uint8Array[]): Uint8Array {
  if (parts.length === 1) return parts[0]!;
  let size = 0;
  for (const part of parts) size += part.length;
  const out = new Uint8Array(size);
  let offset = 0;
  for (const part of parts) {
    out.set(part, offset);
    offset += part.length;
  }
  return out;
}

/**
 * Yields every frame of `stream` in order. Ends when the stream ends at a frame boundary; a stream
 * that ends inside a frame throws `PlaneError` of kind `disconnected`. Breaking out of the loop
 * cancels the stream.
 */
export async function* readFrames<T>(
  stream: ReadableStream<Uint8Array>,
  decoder: FrameDecoder<T>,
): AsyncGenerator<T, void, undefined> {
  const reader = stream.getReader();
  // Bytes not yet decoded: `parts` are joined only once they can hold the next frame, so a large
  // frame arriving in many chunks is copied once, not once per chunk.
  let parts: Uint8Array[] = [];
  let buffered = 0;
  let need = 1;
  let finished = false;
  try {
    while (true) {
      while (buffered >= need) {
        let bytes = concatBytes(parts);
        const result = decoder.decode(bytes);
        if ('need' in result) {
          parts = [bytes];
          need = result.need;
          break;
        }
        bytes = bytes.subarray(result.size);
        parts = bytes.length > 0 ? [bytes] : [];
        buffered = bytes.length;
        need = 1;
        yield result.frame;
      }
      const { done, value } = await reader.read();
      if (done) {
        finished = true;
        if (buffered > 0) {
          throw new PlaneError(
            'disconnected',
            `Connection closed inside a frame (${buffered} bytes of it received)`,
          );
        }
        return;
      }
      if (value.length > 0) {
        parts.push(value);
        buffered += value.length;
      }
    }
  } finally {
    if (finished) reader.releaseLock();
    else reader.cancel().catch(() => {});
  }
}
