import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { ceiling, missAttribution, promptOf, readTraceWindow } from '../../bench/_trace.ts';

const row = (timestamp: number, hash_ids: number[], input_length = hash_ids.length * 512) => ({
  timestamp,
  input_length,
  output_length: 10,
  hash_ids,
});

describe('bench/_trace.ts (the replay benches)', () => {
  const rows = [row(0, [1, 2]), row(10, [1, 2, 3]), row(20, [1, 5])];

  test('the ceiling counts the leading blocks any earlier request had', () => {
    // r1 reuses 2 blocks of r0, r2 reuses 1; 6 of the 7 blocks' tokens are prompts.
    assert.equal(ceiling(rows), (2 + 1) * 512 / ((2 + 3 + 2) * 512));
  });

  test('a shared hash id gives the same tokens; a different one does not', () => {
    const [a, b, c] = rows.map(promptOf);
    assert.deepEqual(b!.slice(0, 1024), a);
    assert.notDeepEqual(c!.slice(512, 1024), a!.slice(512, 1024));
    assert.equal(promptOf(row(0, [7], 600)).length, 600, 'padded to input_length');
  });

  test('misses are split between the routing and the worker', () => {
    const sent = (sentAtMs: number, worker: string, cachedTokens: number) => ({
      ok: true,
      sentAtMs,
      worker,
      cachedTokens,
    });
    // r2 goes to B, which never saw block 1: that block is lost to routing.
    const routed = missAttribution(rows, [sent(0, 'A', 0), sent(1, 'A', 1024), sent(2, 'B', 0)]);
    assert.deepEqual(routed, { hit: 2 / 3, routing: 1 / 3, worker: 0 });
    // r1 on the right worker but half its prefix gone: lost in the worker.
    const evicted = missAttribution(rows, [sent(0, 'A', 0), sent(1, 'A', 512), sent(2, 'A', 512)]);
    assert.deepEqual(evicted, { hit: 2 / 3, routing: 0, worker: 1 / 3 });
    // Order is the sending order, not the row order: r1 sent first reuses nothing.
    const reordered = missAttribution(rows, [sent(5, 'A', 0), sent(1, 'A', 0), sent(6, 'A', 512)]);
    assert.equal(reordered.hit + reordered.routing + reordered.worker, 1);
    assert.equal(reordered.routing, 0);
  });

  test('a window drops requests longer than the context and starts at 0', () => {
    const dir = mkdtempSync(join(tmpdir(), 'trace-test-'));
    try {
      const file = join(dir, 't.jsonl');
      writeFileSync(
        file,
        [row(100, [1]), row(150, [1, 2], 5000), row(300, [3])].map((r) => JSON.stringify(r))
          .join('\n'),
      );
      const window = readTraceWindow({ trace: file, start: 0, count: 3, contextLength: 2048 });
      assert.deepEqual(window.map((r) => r.timestamp), [0, 200]);
      assert.throws(
        () => readTraceWindow({ trace: file, start: 5, count: 3, contextLength: 2048 }),
        /empty/,
      );
      writeFileSync(file, '{"timestamp": 1}\n');
      assert.throws(
        () => readTraceWindow({ trace: file, start: 0, count: 3, contextLength: 2048 }),
        /not a Mooncake request/,
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
