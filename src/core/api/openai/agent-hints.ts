/**
 * `nvext.agent_hints` fields Switchboard accepts in the schema (Dynamo's) but does not act on
 * are refused with a 501 that says so, rather than accepted and ignored:
 * - `strict_priority` above 0 (also from `x-dynamo-request-strict-priority`): Dynamo's router
 *   keeps strict pending-queue tiers; ours orders its queue by `priority` only.
 * - `speculative_prefill: true`: Dynamo prefills the predicted next turn after the answer;
 *   Switchboard has no next-turn prediction.
 * `priority`, `latency_sensitivity` and `osl` work (router queue order and output-load tracking).
 */
import { NotImplementedError } from '../../errors.ts';
import type { NvExt } from './nvext.ts';

export function refuseUnsupportedHints(nvext: NvExt | undefined): void {
  const hints = nvext?.agent_hints;
  if (!hints) return;
  if (typeof hints.strict_priority === 'number' && hints.strict_priority > 0) {
    throw new NotImplementedError(
      '"nvext.agent_hints.strict_priority" is not supported: the router has no strict ' +
        'priority tiers (use nvext.agent_hints.priority, which orders its queue)',
      { param: 'nvext.agent_hints.strict_priority' },
    );
  }
  if (hints.speculative_prefill === true) {
    throw new NotImplementedError(
      '"nvext.agent_hints.speculative_prefill" is not supported: the frontend does not predict ' +
        'and prefill the next turn',
      { param: 'nvext.agent_hints.speculative_prefill' },
    );
  }
}
