/**
 * The Responses API `response` object as this server fills it (reference §8.2): request values
 * echoed back and every field OpenAI's spec requires defaulted, so strict SDK schemas accept it.
 */
import type {
  ResponseObject,
  ResponsesError,
  ResponsesOutputItem,
  ResponsesRequest,
  ResponsesUsage,
  Usage,
} from '../openai/schemas.ts';

/** How a converter gets ids and the time. */
export interface ResponseIdOptions {
  /** A fresh unique id; dashes are removed, so `crypto.randomUUID` fits. */
  newId: () => string;
  /** Unix time in seconds. @default Math.floor(Date.now() / 1000) */
  now?: () => number;
}

export const defaultNow = () => Math.floor(Date.now() / 1000);

/** `prefix_<id>` with the id's dashes removed (`resp_0f3c...`). */
export function prefixedId(prefix: string, newId: () => string): string {
  return `${prefix}_${newId().replaceAll('-', '')}`;
}

export function toResponsesUsage(usage: Usage): ResponsesUsage {
  return {
    input_tokens: usage.prompt_tokens,
    input_tokens_details: {
      cached_tokens: usage.prompt_tokens_details?.cached_tokens ?? 0,
      cache_write_tokens: 0,
    },
    output_tokens: usage.completion_tokens,
    output_tokens_details: {
      reasoning_tokens: usage.completion_tokens_details?.reasoning_tokens ?? 0,
    },
    total_tokens: usage.total_tokens,
  };
}

/** Echoed tools: function tools get `strict` (default true), `parameters` and `description`. */
function normalizeTools(tools: ResponsesRequest['tools']): ResponseObject['tools'] {
  return (tools ?? []).map((tool) => {
    if (tool.type !== 'function') return tool;
    return {
      ...tool,
      description: tool.description ?? null,
      parameters: tool.parameters ?? null,
      strict: tool.strict ?? true,
    };
  });
}

export interface ResponseFields {
  id: string;
  model: string;
  status: ResponseObject['status'];
  createdAt: number;
  completedAt: number | null;
  output: ResponsesOutputItem[];
  /** `null` (sent as such) until the worker reported it. */
  usage?: ResponsesUsage | null;
  error?: ResponsesError;
  /** Why an `incomplete` response stopped early (`max_output_tokens`). */
  incompleteReason?: string;
  /** The `previous_response_id` the response continued. @default request.previous_response_id */
  previousResponseId?: string | null;
  /** Whether the response is stored for retrieval. @default request.store ?? false */
  store?: boolean;
}

export function buildResponse(request: ResponsesRequest, fields: ResponseFields): ResponseObject {
  const format = request.text?.format;
  return {
    id: fields.id,
    object: 'response',
    created_at: fields.createdAt,
    completed_at: fields.completedAt,
    status: fields.status,
    model: fields.model,
    output: fields.output,
    usage: fields.usage ?? null,
    error: fields.error ?? null,
    incomplete_details: fields.incompleteReason ? { reason: fields.incompleteReason } : null,
    instructions: request.instructions ?? null,
    max_output_tokens: request.max_output_tokens ?? null,
    max_tool_calls: null,
    background: false,
    frequency_penalty: 0,
    presence_penalty: 0,
    metadata: request.metadata ?? {},
    parallel_tool_calls: request.parallel_tool_calls ?? true,
    store: fields.store ?? request.store ?? false,
    temperature: request.temperature ?? 1,
    top_p: request.top_p ?? 1,
    top_logprobs: request.top_logprobs ?? 0,
    text: {
      format: format ?? { type: 'text' },
      ...(request.text?.verbosity ? { verbosity: request.text.verbosity } : {}),
    },
    tool_choice: request.tool_choice ?? 'auto',
    tools: normalizeTools(request.tools),
    truncation: 'disabled',
    service_tier: 'auto',
    billing: null,
    conversation: null,
    previous_response_id: fields.previousResponseId ?? request.previous_response_id ?? null,
    prompt: null,
    reasoning: null,
    prompt_cache_key: request.prompt_cache_key ?? null,
    prompt_cache_retention: request.prompt_cache_retention ?? null,
    safety_identifier: request.safety_identifier ?? null,
    // OpenResponses requires the key (null when unset); OpenAI's document types it string only.
    user: typeof request.user === 'string' ? request.user : null,
  };
}
