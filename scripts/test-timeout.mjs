/**
 * Preloaded into every Node test file by scripts/test.ts (`--import`): gives each `test()` /
 * `it()` that sets no `timeout` of its own a default one (TEST_TIMEOUT_MS), so a hung test fails
 * with its name instead of stalling the run. Node 20 has no flag for that (its --test-timeout
 * bounds a whole file). Works by replacing the named exports of node:test with wrappers
 * (`syncBuiltinESMExports()` makes `import { test } from 'node:test'` see them).
 */
import { createRequire, syncBuiltinESMExports } from 'node:module';
import process from 'node:process';

const ms = Number(process.env.TEST_TIMEOUT_MS);
if (ms > 0) {
  const nodeTest = createRequire(import.meta.url)('node:test');
  const withTimeout = (original) => {
    const wrapped = function (...args) {
      // test([name][, options][, fn])
      const fnAt = args.findIndex((a) => typeof a === 'function');
      const optionsAt = args.findIndex((a) => a !== null && typeof a === 'object');
      if (optionsAt >= 0 && (fnAt < 0 || optionsAt < fnAt)) {
        const options = args[optionsAt];
        if (options.timeout === undefined) args[optionsAt] = { ...options, timeout: ms };
      } else {
        const at = fnAt >= 0 ? fnAt : args.length;
        args.splice(at, 0, { timeout: ms });
      }
      return original.apply(this, args);
    };
    for (const key of ['skip', 'todo', 'only']) {
      if (typeof original[key] === 'function') wrapped[key] = original[key].bind(original);
    }
    return wrapped;
  };
  nodeTest.test = withTimeout(nodeTest.test);
  nodeTest.it = withTimeout(nodeTest.it);
  syncBuiltinESMExports();
}
