/**
 * Dynamo's worker flags that name the frontend's output parsers, shared by `switchboard mocker`
 * and `switchboard register`: `--dyn-tool-call-parser NAME` and `--dyn-reasoning-parser NAME`.
 * The names go into the model card's `runtime_config` (`tool_call_parser`, `reasoning_parser`),
 * where the frontend reads them. Only names the frontend implements are accepted.
 */
import { REASONING_PARSERS } from '../core/parsers/reasoning.ts';
import { TOOL_CALL_PARSERS } from '../core/parsers/tool-calls.ts';
import { type createOptionRegistry, values } from '../core/options.ts';

type Names = readonly [string, ...string[]];

export function parserFields(o: ReturnType<typeof createOptionRegistry>, group: string) {
  return {
    dynToolCallParser: o.opt(values.oneOf(TOOL_CALL_PARSERS as unknown as Names).optional(), {
      flag: 'dyn-tool-call-parser',
      env: ['DYN_TOOL_CALL_PARSER'],
      hint: 'name',
      description: `Tool-call format the frontend parses from this model's output (the card's ` +
        `tool_call_parser): ${TOOL_CALL_PARSERS.join(', ')}`,
      group,
    }),
    dynReasoningParser: o.opt(
      values.oneOf(Object.keys(REASONING_PARSERS) as unknown as Names).optional(),
      {
        flag: 'dyn-reasoning-parser',
        env: ['DYN_REASONING_PARSER'],
        hint: 'name',
        description: `Reasoning format the frontend parses from this model's output (the ` +
          `card's reasoning_parser): ${Object.keys(REASONING_PARSERS).join(', ')}`,
        group,
      },
    ),
  };
}

/** The card's `runtime_config` entries for the parser flags that are set. */
export function parserRuntimeConfig(config: {
  dynToolCallParser?: string | undefined;
  dynReasoningParser?: string | undefined;
}): { tool_call_parser?: string; reasoning_parser?: string } {
  return {
    ...(config.dynToolCallParser ? { tool_call_parser: config.dynToolCallParser } : {}),
    ...(config.dynReasoningParser ? { reasoning_parser: config.dynReasoningParser } : {}),
  };
}
