import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { NotImplementedError } from '../../errors.ts';
import { refuseUnsupportedHints } from './agent-hints.ts';

describe('refuseUnsupportedHints()', () => {
  test('strict_priority above 0 and speculative_prefill true are refused with a 501 naming them', () => {
    assert.throws(
      () => refuseUnsupportedHints({ agent_hints: { strict_priority: 2 } }),
      (e: unknown) =>
        e instanceof NotImplementedError && e.status === 501 &&
        e.param === 'nvext.agent_hints.strict_priority' && /strict priority tiers/.test(e.message),
    );
    assert.throws(
      () => refuseUnsupportedHints({ agent_hints: { speculative_prefill: true } }),
      (e: unknown) =>
        e instanceof NotImplementedError &&
        e.param === 'nvext.agent_hints.speculative_prefill',
    );
  });

  test('the hints that work, and the no-op values, pass', () => {
    refuseUnsupportedHints(undefined);
    refuseUnsupportedHints({
      agent_hints: { priority: 3, osl: 10, strict_priority: 0, speculative_prefill: false },
    });
  });
});
