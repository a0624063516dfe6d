/**
 * `node:test` for Deno test runs started by scripts/test.ts (mapped in by
 * scripts/deno-test/import-map.json): the same module, except that `test()` and `it()` give each
 * test without its own `timeout` option the default TEST_TIMEOUT_MS, so a hung test fails with
 * its name instead of stalling the run. Deno has no flag for a default test timeout; its
 * `node:test` honours the `timeout` option.
 */
import * as real from 'node:test';
import process from 'node:process';

export const { describe, suite, before, after, beforeEach, afterEach, mock, run } = real;

const ms = Number(process.env.TEST_TIMEOUT_MS);

type TestFn = (...args: unknown[]) => unknown;

function withTimeout(original: TestFn): TestFn {
  if (!(ms > 0)) return original;
  const wrapped = (...args: unknown[]) => {
    // test([name][, options][, fn])
    const fnAt = args.findIndex((a) => typeof a === 'function');
    const optionsAt = args.findIndex((a) => a !== null && typeof a === 'object');
    if (optionsAt >= 0 && (fnAt < 0 || optionsAt < fnAt)) {
      const options = args[optionsAt] as { timeout?: number };
      if (options.timeout === undefined) args[optionsAt] = { ...options, timeout: ms };
    } else {
      args.splice(fnAt >= 0 ? fnAt : args.length, 0, { timeout: ms });
    }
    return original(...args);
  };
  return Object.assign(wrapped, original);
}

export const test = withTimeout(real.test as unknown as TestFn) as unknown as typeof real.test;
export const it = withTimeout(real.it as unknown as TestFn) as unknown as typeof real.it;
export default test;
