/**
 * The simulated engine's embedding mode: a deterministic unit vector per input, derived from its
 * token ids and the engine seed, so equal inputs embed equally and different ones (almost
 * surely) differently.
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
