/** scripts/test-output.ts reads each runner's counts and skipped tests. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseOutput } from '../../scripts/test-output.ts';

test('node: counts, cancelled tests as failures, skips with their reasons', () => {
  const output = [
    '﹣ plain skip (0.748074ms) # because reason one',
    '✔ runs (0.135752ms)',
    '﹣ bool skip (0.150364ms) # SKIP',
    '▶ outer',
    '  ﹣ inner (0.1ms) # inner reason',
    '✔ todo (0.095762ms) # later',
    'ℹ tests 5',
    'ℹ pass 2',
    'ℹ fail 1',
    'ℹ cancelled 1',
    'ℹ skipped 3',
  ].join('\n');
  assert.deepEqual(parseOutput('node', output), {
    passed: 2,
    failed: 2,
    skips: [
      { name: 'plain skip', reason: 'because reason one' },
      { name: 'bool skip', reason: undefined },
      { name: 'inner', reason: 'inner reason' },
    ],
  });
});

test('bun: counts and skipped names (bun prints no reason)', () => {
  const output = [
    'bun test v1.4.5 (a7733435c)',
    '',
    'a.test.ts:',
    '(skip) plain skip',
    '(pass) runs [1.86ms]',
    '(skip) suite > ctx skip [0.08ms]',
    '(todo) todo',
    '',
    ' 1 pass',
    ' 2 skip',
    ' 1 todo',
    ' 3 fail',
  ].join('\n');
  assert.deepEqual(parseOutput('bun', output), {
    passed: 1,
    failed: 3,
    skips: [{ name: 'plain skip' }, { name: 'suite > ctx skip' }],
  });
});

test('deno: counts with steps, ignored tests, colours stripped', () => {
  const output = [
    'running 3 tests from ./a.test.ts',
    'plain skip ... \x1b[33mignored\x1b[0m (0ms)',
    'a suite ...',
    '  inner ... ignored (0ms)',
    'a suite ... ok (3ms)',
    'runs ... ok (1ms)',
    '',
    'ok | 2 passed (1 step) | 0 failed | 2 ignored (9ms)',
  ].join('\n');
  assert.deepEqual(parseOutput('deno', output), {
    passed: 2,
    failed: 0,
    skips: [{ name: 'plain skip' }, { name: 'inner' }],
  });
});

test('no summary at all reads as zero tests', () => {
  for (const runtime of ['node', 'bun', 'deno'] as const) {
    assert.deepEqual(parseOutput(runtime, 'Segmentation fault'), {
      passed: 0,
      failed: 0,
      skips: [],
    });
  }
});
