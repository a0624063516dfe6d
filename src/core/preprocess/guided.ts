/**
 * Structured outputs and forced tool calls become the worker's guided-decoding request
 * (`sampling_options.guided_decoding` of Dynamo's `PreprocessedRequest`): `response_format`
 * (`json_object`, `json_schema`; Responses' `text.format` arrives here as `response_format`),
 * the root `guided_json` / `guided_regex` / `guided_grammar` / `guided_choice` extensions, and
 * `tool_choice` `required` or a named function (a JSON schema the tool call must match).
 *
 * A worker says what it can constrain in its card: `runtime_config.runtime_data.guided_decoding`
 * lists the kinds (`json`, `regex`, `grammar`, `choice`, `structural_tag`). A card that lists
 * them and lacks the kind a request needs is refused with a 400 before anything is sent, so a
 * client never gets unconstrained text it asked to be constrained. A card without the list is a
 * real engine worker (vLLM, SGLang and TensorRT-LLM all do guided decoding): forwarded.
 */
import type { ModelCard } from '../discovery/model-card.ts';
import { BadRequestError } from '../errors.ts';
import type { ToolMode } from '../parsers/output.ts';

export const GUIDED_KINDS = ['json', 'regex', 'grammar', 'choice', 'structural_tag'] as const;
export type GuidedKind = typeof GUIDED_KINDS[number];

/** The request cannot be constrained the way it asks by the workers of its model. */
export class GuidedDecodingUnsupportedError extends BadRequestError {
  override readonly code = 'guided_decoding_unsupported';
}

interface ToolDefinition {
  type?: string;
  function?: { name?: string; parameters?: unknown };
}

export interface GuidedRequest {
  guided_json?: unknown;
  guided_regex?: string | null;
  guided_grammar?: string | null;
  guided_choice?: readonly string[] | null;
  guided_decoding_backend?: string | null;
  response_format?: { type: string; json_schema?: { schema?: unknown } | null } | null;
  tools?: readonly unknown[] | null;
  tool_choice?: unknown;
  parallel_tool_calls?: boolean | null;
}

export interface GuidedPlan {
  /** `sampling_options.guided_decoding`, when the request constrains the output. */
  guided?: Record<string, unknown>;
  /** The kind of constraint (for the capability check and the error message). */
  kind?: GuidedKind;
  /** What asked for it, as the client named it. */
  source?: string;
  /** How the answer's tool calls are read. */
  tools: ToolMode;
}

const objectSchema = (parameters: unknown) =>
  parameters && typeof parameters === 'object' ? parameters : { type: 'object' };

/** The tool mode and the guided-decoding request of a chat (or completions) request. */
export function planGuidedDecoding(request: GuidedRequest): GuidedPlan {
  const tools = (request.tools ?? []) as ToolDefinition[];
  const choice = request.tool_choice;
  let toolMode: ToolMode = { kind: 'off' };
  let toolSchema: unknown;
  if (tools.length > 0 && choice !== 'none') {
    if (choice === 'required') {
      toolMode = { kind: 'required' };
      toolSchema = {
        type: 'array',
        minItems: 1,
        ...(request.parallel_tool_calls === false ? { maxItems: 1 } : {}),
        items: {
          anyOf: tools.map((t) => ({
            type: 'object',
            properties: {
              name: { type: 'string', enum: [t.function?.name ?? ''] },
              parameters: objectSchema(t.function?.parameters),
            },
            required: ['name', 'parameters'],
          })),
        },
      };
    } else if (choice && typeof choice === 'object') {
      const name = (choice as { function?: { name?: string } }).function?.name ?? '';
      toolMode = { kind: 'named', name };
      toolSchema = objectSchema(tools.find((t) => t.function?.name === name)?.function?.parameters);
    } else {
      toolMode = { kind: 'auto' };
    }
  }

  const asked: Array<[GuidedKind, string, unknown]> = [];
  const set = (v: unknown) => v !== undefined && v !== null;
  if (set(request.guided_json)) {
    const schema = typeof request.guided_json === 'string'
      ? parseSchema(request.guided_json)
      : request.guided_json;
    asked.push(['json', 'guided_json', schema]);
  }
  if (set(request.guided_regex)) asked.push(['regex', 'guided_regex', request.guided_regex]);
  if (set(request.guided_grammar)) {
    asked.push(['grammar', 'guided_grammar', request.guided_grammar]);
  }
  if (set(request.guided_choice)) asked.push(['choice', 'guided_choice', request.guided_choice]);
  const format = request.response_format;
  if (format?.type === 'json_object') {
    asked.push(['json', 'response_format', { type: 'object' }]);
  } else if (format?.type === 'json_schema') {
    asked.push(['json', 'response_format', format.json_schema?.schema ?? { type: 'object' }]);
  }
  if (toolSchema !== undefined) asked.push(['json', 'tool_choice', toolSchema]);
  if (asked.length > 1) {
    throw new BadRequestError(
      `Only one guided-decoding constraint can be set; received: ${
        asked.map(([, source]) => source).join(', ')
      }`,
      { param: asked[1]?.[1] },
    );
  }
  const [only] = asked;
  if (!only) return { tools: toolMode };
  const [kind, source, value] = only;
  const guided: Record<string, unknown> = { [kind]: value };
  if (set(request.guided_decoding_backend)) guided.backend = request.guided_decoding_backend;
  return { guided, kind, source, tools: toolMode };
}

function parseSchema(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    throw new BadRequestError('guided_json must be a JSON schema (an object or its JSON text)', {
      param: 'guided_json',
    });
  }
}

/** The guided-decoding kinds a card's workers advertise; undefined when they do not say. */
export function guidedKindsOf(card: ModelCard): readonly string[] | undefined {
  const data = (card.runtime_config as { runtime_data?: { guided_decoding?: unknown } })
    .runtime_data;
  const kinds = data?.guided_decoding;
  return Array.isArray(kinds) ? kinds.filter((k): k is string => typeof k === 'string') : undefined;
}

/** Throws `GuidedDecodingUnsupportedError` when the model's workers cannot do `plan`'s kind. */
export function checkGuidedSupport(card: ModelCard, plan: GuidedPlan): void {
  if (!plan.kind) return;
  const kinds = guidedKindsOf(card);
  if (kinds === undefined || kinds.includes(plan.kind)) return;
  const what = plan.source === 'tool_choice'
    ? `tool_choice ${plan.tools.kind === 'named' ? 'naming a function' : '"required"'} (which ` +
      'needs guided decoding with a JSON schema)'
    : plan.source === 'response_format'
    ? 'response_format (which needs guided decoding with a JSON schema)'
    : `${plan.source}`;
  throw new GuidedDecodingUnsupportedError(
    `Model "${card.display_name}" cannot honour ${what}: its workers do not support ` +
      `${plan.kind} guided decoding` +
      (kinds.length > 0 ? ` (they support: ${kinds.join(', ')})` : ' (they support none)'),
    { param: plan.source },
  );
}
