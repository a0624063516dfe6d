/**
 * Seeded pseudo-randomness for the simulated engine: mulberry32 (32-bit state, period 2^32,
 * plenty for drawing output tokens) and a seed mixer, so the same seeds always give the same
 * sequence on every runtime.
 */

/** A PRNG: each call returns the next float in [0, 1). */
export type Random = () => number;

/** mulberry32 seeded with the low 32 bits of `seed`. */
export function createRandom(seed: number): Random {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** murmur3's 32-bit finalizer. */
function fmix32(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/**
 * Mixes integer seeds (each taken exactly up to 2^53, sign included) into one 32-bit seed; the
 * order of the parts matters.
 */
export function mixSeeds(parts: readonly number[]): number {
  let h = 0x9e3779b9;
  for (const part of parts) {
    const value = Math.trunc(part);
    const low = value >>> 0;
    const high = Math.floor(value / 4294967296) >>> 0;
    h = fmix32((h ^ fmix32(low)) + 0x7f4a7c15);
    h = fmix32((h ^ fmix32(high ^ 0x5bd1e995)) + 0x7f4a7c15);
  }
  return h;
}
