/**
 * The simulated engine's embedding mode: a deterministic unit vector per input, derived from its
 * token ids and the engine seed, so equal inputs embed equally and different ones (almost
 * surely) differently. Vectors travel base64-encoded as little-endian float32, as Dynamo's
 * workers send them.
 */
import { createRandom, mixSeeds } from './random.ts';

/** A unit-length vector of `dimensions` floats for `tokenIds`. */
export function embedTokens(
  tokenIds: readonly number[],
  options: { dimensions: number; seed: number },
): Float32Array {
  const random = createRandom(mixSeeds([options.seed, tokenIds.length, ...tokenIds]));
  const vector = new Float32Array(options.dimensions);
  let norm = 0;
  for (let i = 0; i < vector.length; i++) {
    // Box-Muller: normal components give directions spread evenly over the sphere.
    const u = Math.max(random(), Number.EPSILON);
    const value = Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * random());
    vector[i] = value;
    norm += value * value;
  }
  const scale = norm > 0 ? 1 / Math.sqrt(norm) : 0;
  for (let i = 0; i < vector.length; i++) vector[i] = (vector[i] ?? 0) * scale;
  return vector;
}

/** Little-endian float32 bytes as base64. */
export function encodeEmbedding(vector: Float32Array): string {
  const bytes = new Uint8Array(vector.length * 4);
  const view = new DataView(bytes.buffer);
  vector.forEach((v, i) => view.setFloat32(i * 4, v, true));
  let binary = '';
  for (let i = 0; i < bytes.length; i += 0x8000) {
    binary += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  }
  return btoa(binary);
}

/** The inverse of `encodeEmbedding()`. */
export function decodeEmbedding(base64: string): number[] {
  const binary = atob(base64);
  if (binary.length % 4 !== 0) throw new Error('embedding payload is not a float32 array');
  const view = new DataView(new ArrayBuffer(binary.length));
  for (let i = 0; i < binary.length; i++) view.setUint8(i, binary.charCodeAt(i));
  return Array.from({ length: binary.length / 4 }, (_, i) => view.getFloat32(i * 4, true));
}
