import assert from 'node:assert/strict';
import { before, describe, test } from 'node:test';
import { type BlockHasher, createBlockHasher, KV_HASH_SEED } from './hash.ts';

const range = (from: number, to: number) => Array.from({ length: to - from }, (_, i) => from + i);

describe('createBlockHasher()', () => {
  let hasher: BlockHasher;
  before(async () => {
    hasher = await createBlockHasher();
  });

  test('hashes tokens 1..4 (block size 4) to the reference local hash', () => {
    assert.deepEqual(hasher.localHashes(range(1, 5), { blockSize: 4 }), [14643705804678351452n]);
  });

  test('chains tokens 1..12 (block size 4) to the reference sequence hashes', () => {
    const { local, sequence } = hasher.blockHashes(range(1, 13), { blockSize: 4 });
    assert.deepEqual(local, [14643705804678351452n, 16777012769546811212n, 483935686894639516n]);
    assert.deepEqual(sequence, [
      14643705804678351452n,
      4945711292740353085n,
      12583592247330656132n,
    ]);
  });

  test('hashes tokens 0..7 to the reference local and sequence hashes', () => {
    const { local, sequence } = hasher.blockHashes(range(0, 8), { blockSize: 4 });
    assert.deepEqual(local, [9143094415614847814n, 12124091508212882195n]);
    assert.equal(sequence[1], 9510318385840434533n);
  });

  test('salts the seed with the LoRA name', async () => {
    const salt = { loraName: 'my-adapter' };
    assert.equal(hasher.seedFor(salt), 2360313164392603308n);
    assert.equal(hasher.isReady(salt), false);
    assert.throws(() => hasher.localHashes(range(0, 8), { blockSize: 4, ...salt }), /prepare\(\)/);
    const seed = await hasher.prepare(salt);
    assert.equal(seed.seed, 2360313164392603308n);
    assert.equal(hasher.isReady(salt), true);
    const { local, sequence } = hasher.blockHashes(range(0, 8), { blockSize: 4, ...salt });
    assert.deepEqual(local, [13692202469334984872n, 14659540909498545450n]);
    assert.equal(sequence[1], 5788450113554728336n);
  });

  test('salts the seed with the cache namespace, and a prepared seed can be passed directly', async () => {
    const salt = { cacheSalt: 'tenant-a' };
    assert.equal(hasher.seedFor(salt), 1948188790972764086n);
    const seed = await hasher.prepare(salt);
    const { local, sequence } = hasher.blockHashes(range(0, 8), { blockSize: 4, seed });
    assert.deepEqual(local, [17009624042690211646n, 10000672136415158886n]);
    assert.equal(sequence[1], 18279821067719767880n);
  });

  test('treats empty salts as absent', () => {
    assert.equal(hasher.seedFor({ loraName: '', cacheSalt: null }), KV_HASH_SEED);
  });

  test('appends sorted multimodal hashes to the block bytes', () => {
    const { local, sequence } = hasher.blockHashes(range(0, 8), {
      blockSize: 4,
      mmHashes: [[7n, 3n]],
    });
    assert.deepEqual(local, [12534961123884847936n, 12124091508212882195n]);
    assert.equal(sequence[1], 9278883479402201811n);
  });

  test('hashes only full blocks, and a window of them with start/end', () => {
    assert.equal(hasher.localHashes(range(1, 12), { blockSize: 4 }).length, 2);
    assert.deepEqual(hasher.localHashes(range(1, 13), { blockSize: 4, start: 1, end: 2 }), [
      16777012769546811212n,
    ]);
    assert.deepEqual(hasher.localHashes(range(1, 13), { blockSize: 0 }), []);
  });

  test('sequenceHashes() continues a chain from a parent', () => {
    const { local, sequence } = hasher.blockHashes(range(1, 13), { blockSize: 4 });
    assert.deepEqual(hasher.sequenceHashes(local.slice(1), sequence[0]!), sequence.slice(1));
  });

  test('localHashes64() and sequenceHashes64() match the BigInt API', async () => {
    const tokens = Uint32Array.from({ length: 1000 }, (_, i) => (i * 2654435761) >>> 12);
    for (const blockSize of [4, 16, 64]) {
      const { local, sequence } = hasher.blockHashes(tokens, { blockSize });
      const local64 = hasher.localHashes64(tokens, { blockSize });
      assert.deepEqual([...local64], local);
      assert.deepEqual([...hasher.sequenceHashes64(local64)], sequence);
      assert.deepEqual(
        [...hasher.sequenceHashes64(local64.subarray(2), sequence[1]!)],
        sequence.slice(2),
      );
    }
    assert.deepEqual([...hasher.localHashes64(range(1, 13), { blockSize: 4, start: 1, end: 2 })], [
      16777012769546811212n,
    ]);
    const seed = await hasher.prepare({ loraName: 'my-adapter' });
    assert.deepEqual([...hasher.localHashes64(range(0, 8), { blockSize: 4, seed })], [
      13692202469334984872n,
      14659540909498545450n,
    ]);
    const mmHashes = [[7n, 3n]];
    assert.deepEqual(
      [...hasher.localHashes64(range(0, 8), { blockSize: 4, mmHashes })],
      hasher.localHashes(range(0, 8), { blockSize: 4, mmHashes }),
    );
    assert.equal(hasher.localHashes64(range(0, 3), { blockSize: 4 }).length, 0);
  });

  // How fast: `npm run bench:indexer` (docs/benchmarks.md), not a test on a shared machine.
  test('hashes a 16k-token prompt in blocks of 64: 256 blocks, the same every time', () => {
    const tokens = Uint32Array.from({ length: 16384 }, (_, i) => (i * 2654435761) >>> 16);
    const first = hasher.blockHashes(tokens, { blockSize: 64 });
    assert.equal(first.local.length, 256);
    assert.equal(first.sequence.length, 256);
    assert.deepEqual(first.sequence, hasher.sequenceHashes(first.local));
    assert.deepEqual(hasher.blockHashes(tokens, { blockSize: 64 }), first);
  });
});
