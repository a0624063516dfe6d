/**
 * Scripted answers for the simulated engine (`switchboard mocker --script FILE` and
 * `--echo-marked`), so tool calls, reasoning and JSON output can be tested end to end through
 * the real frontend: the worker decodes the prompt, finds what to say, and streams that text's
 * token ids one per step (then EOS) instead of random words.
 *
 * - `--script FILE`: a JSON file `{"rules": [{"match": REGEX, "output": TEXT}, ...]}`; the first
 *   rule whose regular expression (JavaScript syntax, flag `s`) matches the decoded prompt
 *   answers, `$1`...`$9` in `output` replaced by its groups. `{"match": ..., "outputs": [A, B]}`
 *   answers A, then B on the next match, and so on (the last one repeats).
 * - `--echo-marked`: a prompt holding `[[say]]TEXT[[/say]]` answers TEXT (the last marked part
 *   of the prompt, so the newest turn wins).
 * - Guided decoding (`sampling_options.guided_decoding`): with `json`, an answer that is not
 *   scripted is a JSON value built from the schema (the first `enum` / `const` / `anyOf` branch,
 *   every property, `minItems` items, placeholder scalars); with `choice`, the first choice.
 *   Scripted answers are sent as written. Other kinds (regex, grammar, structural tags) are
 *   refused: the mocker cannot honour them and never answers unconstrained. The card lists what
 *   it can do (`runtime_data.guided_decoding`), so the frontend refuses those requests first.
 */
import { z } from 'zod';
import type { PreprocessedRequest } from '../core/plane/worker.ts';

/** Guided-decoding kinds the mocker honours (advertised in its card). */
export const MOCKER_GUIDED_KINDS = ['json', 'choice'] as const;

const RuleSchema = z.strictObject({
  match: z.string(),
  output: z.string().optional(),
  outputs: z.array(z.string()).min(1).optional(),
}).refine((r) => (r.output === undefined) !== (r.outputs === undefined), {
  error: 'a rule needs exactly one of "output" or "outputs"',
});

export const ScriptSchema = z.strictObject({ rules: z.array(RuleSchema) });

export interface Script {
  /** The scripted answer for `prompt`, or undefined when no rule matches. */
  answer(prompt: string): string | undefined;
}

/** A `--script` file that cannot be read or used; the message says why. */
export class ScriptError extends Error {}

/** Parses a script file's text; throws a ScriptError saying what is wrong. */
export function parseScript(text: string, source = 'script'): Script {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (error) {
    throw new ScriptError(`${source} is not JSON: ${(error as Error).message}`);
  }
  const parsed = ScriptSchema.safeParse(json);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new ScriptError(`${source}: ${issue?.path.join('.') || 'root'}: ${issue?.message}`);
  }
  const rules = parsed.data.rules.map((rule, i) => {
    let regex: RegExp;
    try {
      regex = new RegExp(rule.match, 's');
    } catch (error) {
      throw new ScriptError(
        `${source}: rules.${i}.match is not a regular expression: ${(error as Error).message}`,
      );
    }
    return { regex, outputs: rule.outputs ?? [rule.output ?? ''], used: 0 };
  });
  return {
    answer(prompt) {
      for (const rule of rules) {
        const m = rule.regex.exec(prompt);
        if (!m) continue;
        const output = rule.outputs[Math.min(rule.used++, rule.outputs.length - 1)] ?? '';
        return output.replace(/\$(\d)/g, (_, d: string) => m[Number(d)] ?? '');
      }
      return undefined;
    },
  };
}

const SAY = '[[say]]';
const SAY_END = '[[/say]]';

/** The last `[[say]]...[[/say]]` part of `prompt`. */
export function markedAnswer(prompt: string): string | undefined {
  const start = prompt.lastIndexOf(SAY);
  if (start < 0) return undefined;
  const end = prompt.indexOf(SAY_END, start + SAY.length);
  if (end < 0) return undefined;
  return prompt.slice(start + SAY.length, end);
}

type Schema = Record<string, unknown>;

/** A JSON value that satisfies simple schemas (no `$ref`, patterns or numeric ranges). */
export function sampleJson(schema: unknown, depth = 0): unknown {
  if (schema === true || schema === undefined || schema === null) return {};
  if (typeof schema !== 'object' || depth > 16) return null;
  const s = schema as Schema;
  if ('const' in s) return s.const;
  if (Array.isArray(s.enum) && s.enum.length > 0) return s.enum[0];
  for (const key of ['anyOf', 'oneOf', 'allOf'] as const) {
    const list = s[key];
    if (Array.isArray(list) && list.length > 0) {
      const base = sampleJson(list[0], depth + 1);
      return key === 'allOf' && base && typeof base === 'object'
        ? Object.assign({}, ...list.map((x) => sampleJson(x, depth + 1)))
        : base;
    }
  }
  const types = Array.isArray(s.type) ? s.type : [s.type];
  const type = types.find((t) => t !== 'null') ?? types[0] ??
    (s.properties ? 'object' : s.items ? 'array' : 'object');
  switch (type) {
    case 'object': {
      const out: Record<string, unknown> = {};
      const props = (s.properties ?? {}) as Record<string, unknown>;
      for (const [key, sub] of Object.entries(props)) out[key] = sampleJson(sub, depth + 1);
      return out;
    }
    case 'array': {
      const n = Math.max(typeof s.minItems === 'number' ? s.minItems : 1, 1);
      const max = typeof s.maxItems === 'number' ? s.maxItems : n;
      return Array.from({ length: Math.min(n, max) }, () => sampleJson(s.items, depth + 1));
    }
    case 'string':
      return typeof s.minLength === 'number' && s.minLength > 4 ? 'x'.repeat(s.minLength) : 'text';
    case 'integer':
    case 'number':
      return typeof s.minimum === 'number' ? s.minimum : 1;
    case 'boolean':
      return true;
    case 'null':
      return null;
    default:
      return {};
  }
}

/** The guided-decoding request refused by the mocker (a kind it cannot do). */
export class MockerGuidedDecodingError extends Error {}

export interface ScriptedAnswerOptions {
  script?: Script;
  echoMarked?: boolean;
}

/**
 * The text the mocker answers `request` with (undefined: random words). `decode` turns the
 * prompt ids into text; it is called only when something needs the prompt.
 */
export function scriptedAnswer(
  request: PreprocessedRequest,
  decode: (ids: readonly number[]) => string,
  options: ScriptedAnswerOptions,
): string | undefined {
  const guided = request.sampling_options?.guided_decoding as Record<string, unknown> | null;
  const kinds = guided
    ? Object.keys(guided).filter((k) =>
      k !== 'backend' && k !== 'whitespace_pattern' &&
      guided[k] !== null && guided[k] !== undefined
    )
    : [];
  const unsupported = kinds.find((k) => !(MOCKER_GUIDED_KINDS as readonly string[]).includes(k));
  if (unsupported) {
    throw new MockerGuidedDecodingError(
      `The mocker cannot do ${unsupported} guided decoding (it does: ${
        MOCKER_GUIDED_KINDS.join(', ')
      })`,
    );
  }
  let prompt: string | undefined;
  if (options.script || options.echoMarked) {
    prompt = decode(request.token_ids);
    const said = options.script?.answer(prompt) ??
      (options.echoMarked ? markedAnswer(prompt) : undefined);
    if (said !== undefined) return said;
  }
  if (guided?.json !== undefined && guided.json !== null) {
    const schema = typeof guided.json === 'string' ? JSON.parse(guided.json) : guided.json;
    return JSON.stringify(sampleJson(schema));
  }
  if (Array.isArray(guided?.choice) && guided.choice.length > 0) return String(guided.choice[0]);
  return undefined;
}
