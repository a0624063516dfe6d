/** Embedding vectors on the wire: base64 of little-endian float32, as Dynamo's workers send them. */

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
