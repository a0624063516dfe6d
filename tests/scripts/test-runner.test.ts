/**
 * scripts/test.ts on a fixture file with a skipped test: the skip is listed with its reason, and
 * under CI=true a skip that ALLOWED_SKIPS does not name fails the run.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import process from 'node:process';
import { describe, test } from 'node:test';
import { ROOT } from '../helpers/process.ts';

const FIXTURE = 'tests/fixtures/runner/skip.fixture.ts';

/** Runs the runner (always on Node, whatever runs this file) on a fixture, Node only by default. */
function runner(
  env: Record<string, string>,
  options: { fixture?: string; runtimes?: string[] } = {},
): Promise<{ code: number | null; out: string }> {
  const runtimes = options.runtimes ?? ['node'];
  const args = [
    '--import',
    'tsx',
    'scripts/test.ts',
    ...runtimes,
    '--',
    options.fixture ?? FIXTURE,
  ];
  return new Promise((resolve, reject) => {
    const child = spawn('node', args, {
      cwd: ROOT,
      env: { ...process.env, CI: '', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout.on('data', (d: Buffer) => void (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => void (out += d.toString()));
    child.once('error', reject);
    child.once('close', (code) => resolve({ code, out }));
  });
}

describe('scripts/test.ts and skipped tests', () => {
  test('lists a skip with its reason; the run passes outside CI', async () => {
    const { code, out } = await runner({});
    assert.equal(code, 0, out);
    assert.match(
      out,
      /node tests\/fixtures\/runner\/skip\.fixture\.ts > needs a tool this machine lacks: no frobnicator installed/,
    );
    assert.match(out, /node: 1 passed, 0 failed, 1 skipped/);
    assert.match(out, /\n1 passed, 0 failed\n?$/);
  });

  test('under CI=true an unexpected skip fails the run', async () => {
    const { code, out } = await runner({ CI: 'true' });
    assert.equal(code, 1, out);
    assert.match(out, /CI=true: 1 skip\(s\) not in ALLOWED_SKIPS/);
  });

  test('a describe skipped as a whole is listed for bun too, which neither runs nor reports it', async () => {
    const fixture = 'tests/fixtures/runner/skip-describe.fixture.ts';
    const { code, out } = await runner({}, { fixture, runtimes: ['node', 'bun'] });
    assert.equal(code, 0, out);
    assert.match(
      out,
      /node tests\/fixtures\/runner\/skip-describe\.fixture\.ts > a group that needs a tool/,
    );
    assert.match(
      out,
      /bun tests\/fixtures\/runner\/skip-describe\.fixture\.ts > a group that needs a tool this machine lacks: not run and not reported by bun \(a skipped describe\); node: no frobnicator installed/,
    );
    assert.match(out, /bun: 1 passed, 0 failed, 1 skipped/);
  });

  test('the summary at the end repeats what failed, on every runtime, for logs cut to their tail', async () => {
    const fixture = 'tests/fixtures/runner/fail.fixture.ts';
    const { code, out } = await runner({}, { fixture, runtimes: ['node', 'bun', 'deno'] });
    assert.equal(code, 1, out);
    const summary = out.slice(out.lastIndexOf('Failed files'));
    for (const runtime of ['node', 'bun', 'deno']) {
      const at = summary.indexOf(`  ${runtime} ${fixture}: `);
      assert.ok(at >= 0, `${runtime} listed: ${summary}`);
      // The block ends at the next file's line (two spaces, then a name) or the counts.
      const rest = summary.slice(at + 1);
      const end = rest.search(/\n {2}\S|\n\n/);
      const block = summary.slice(at, end < 0 ? undefined : at + 1 + end);
      assert.match(block, /widget count off by one/, `${runtime}: ${block}`);
    }
  });
});
