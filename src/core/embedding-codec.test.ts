import assert from 'node:assert/strict';
import { test } from 'node:test';
import { embedTokens } from '../mocker/engine/embedding.ts';
import { decodeEmbedding, encodeEmbedding } from './embedding-codec.ts';

test('embedTokens() is deterministic, unit length, and differs between inputs', () => {
  const a = embedTokens([1, 2, 3], { dimensions: 64, seed: 0 });
  const again = embedTokens([1, 2, 3], { dimensions: 64, seed: 0 });
  const b = embedTokens([1, 2, 4], { dimensions: 64, seed: 0 });
  assert.deepEqual([...a], [...again]);
  assert.notDeepEqual([...a], [...b]);
  const norm = Math.sqrt([...a].reduce((s, v) => s + v * v, 0));
  assert.ok(Math.abs(norm - 1) < 1e-5, `norm ${norm}`);
});

test('encodeEmbedding() and decodeEmbedding() round-trip float32 values', () => {
  const vector = embedTokens([42], { dimensions: 5, seed: 7 });
  assert.deepEqual(decodeEmbedding(encodeEmbedding(vector)), [...vector]);
  assert.throws(() => decodeEmbedding(btoa('abc')), /float32/);
});
