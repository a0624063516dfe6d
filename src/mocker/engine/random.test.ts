import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { createRandom, mixSeeds } from './random.ts';

describe('createRandom()', () => {
  test('gives the same sequence for the same seed, in [0, 1)', () => {
    const a = createRandom(42);
    const b = createRandom(42);
    const values = Array.from({ length: 1000 }, () => a());
    assert.deepEqual(values, Array.from({ length: 1000 }, () => b()));
    assert.ok(values.every((v) => v >= 0 && v < 1));
    assert.notDeepEqual(values.slice(0, 5), Array.from({ length: 5 }, createRandom(43)));
  });

  test('is mulberry32 (first value for seed 1)', () => {
    assert.equal(Math.floor(createRandom(1)() * 4294967296), 2693262067);
  });
});

describe('mixSeeds()', () => {
  test('depends on every part, its order and the high bits of large seeds', () => {
    const seen = new Set([
      mixSeeds([0, 0, 1]),
      mixSeeds([0, 1, 0]),
      mixSeeds([1, 0, 0]),
      mixSeeds([0, 0, 2 ** 40]),
      mixSeeds([0, 0, -1]),
    ]);
    assert.equal(seen.size, 5);
    assert.equal(mixSeeds([3, 1, 42]), mixSeeds([3, 1, 42]));
  });
});
