/**
 * scripts/check-cycles.ts on fixture trees (tests/fixtures/cycles/): a tree with a cycle fails
 * and names it, one without passes, and what is not a static import (comments, strings, dynamic
 * `import()`, test files) never counts.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { cpSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import process from 'node:process';
import { describe, test } from 'node:test';
import { findCycles, relativeImports } from '../../scripts/check-cycles.ts';
import { ROOT } from '../helpers/process.ts';

const FIXTURES = `${ROOT}/tests/fixtures/cycles`;

/** Runs the checker (always on Node, whatever runs this file) on a folder. */
function check(dir: string): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn('node', ['--import', 'tsx', 'scripts/check-cycles.ts', dir], {
      cwd: ROOT,
      env: process.env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout.on('data', (d: Buffer) => void (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => void (out += d.toString()));
    child.once('error', reject);
    child.once('close', (code) => resolve({ code, out }));
  });
}

describe('scripts/check-cycles.ts', () => {
  test('relativeImports() reads imports, type imports, re-exports and side-effect imports', () => {
    const text = [
      "import { a } from './a.ts';",
      "import type {\n  B, // a comment\n  C,\n} from '../b.ts';",
      "export * from './c.ts';",
      "export { d as e } from './d.ts';",
      "import './e.ts';",
      "import { f } from 'pkg';",
      "import process from 'node:process';",
      "// import { g } from './g.ts';",
      "/* import { h } from './h.ts'; */",
      'const s = "import { i } from \'./i.ts\'";',
      "const j = await import('./j.ts');",
    ].join('\n');
    assert.deepEqual(relativeImports(text), ['./a.ts', '../b.ts', './c.ts', './d.ts', './e.ts']);
  });

  test('findCycles() finds the cycle through a type import, a re-export and a side effect', () => {
    assert.deepEqual(findCycles(`${FIXTURES}/cyclic`), [
      { files: ['self.ts'], path: ['self.ts', 'self.ts'] },
      { files: ['sub/z.ts', 'x.ts', 'y.ts'], path: ['sub/z.ts', 'x.ts', 'y.ts', 'sub/z.ts'] },
    ]);
  });

  test('findCycles() finds none where only comments, strings, import() and tests close one', () => {
    // The test file is written here, not kept in the fixture: the test runner would run it.
    const dir = mkdtempSync(`${tmpdir()}/check-cycles-`);
    try {
      cpSync(`${FIXTURES}/acyclic`, dir, { recursive: true });
      writeFileSync(
        `${dir}/sub/c.test.ts`,
        "import { a } from '../a.ts';\nimport { c } from './c.ts';\n\nexport const both = [a, c];\n",
      );
      assert.deepEqual(findCycles(dir), []);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('the script exits 1 and prints each cycle with its files when there is one', async () => {
    const { code, out } = await check(`${FIXTURES}/cyclic`);
    assert.equal(code, 1, out);
    assert.match(out, /import cycle among 3 files:\n {2}sub\/z\.ts\n {2}x\.ts\n {2}y\.ts\n/);
    assert.match(out, /sub\/z\.ts -> x\.ts -> y\.ts -> sub\/z\.ts/);
    assert.match(out, /2 import cycle\(s\)/);
  });

  test('the script exits 0 on a tree without a cycle', async () => {
    const { code, out } = await check(`${FIXTURES}/acyclic`);
    assert.equal(code, 0, out);
    assert.match(out, /no import cycle/);
  });
});
