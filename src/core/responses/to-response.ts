/**
 * Chat completion -> Responses API `response` object (reference §8.2), for non-streaming clients.
 * Tool calls become `function_call` items; text becomes one `message` item. Text that carries
 * `<tool_call>{json}</tool_call>` blocks (models served without a tool-call parser, such as Qwen3)
 * is parsed into function calls, and reasoning between `<think>` tags is dropped from the message.
 */
import type {
  ChatCompletionResponse,
  ResponseObject,
  ResponsesOutputItem,
  ResponsesRequest,
} from '../protocols/openai.ts';
import {
  buildResponse,
  prefixedId,
  type ResponseFields,
  type ResponseIdOptions,
  toResponsesUsage,
} from './_response.ts';

export interface ParsedToolCall {
  name: string;
  arguments: string;
}

const OPEN = '<tool_call>';
const CLOSE = '</tool_call>';

/** The `<tool_call>{"name":...,"arguments":...}</tool_call>` blocks of `text` that parse. */
export function parseToolCallText(text: string): ParsedToolCall[] {
  const calls: ParsedToolCall[] = [];
  let from = 0;
  for (;;) {
    const start = text.indexOf(OPEN, from);
    if (start < 0) break;
    const body = start + OPEN.length;
    const end = text.indexOf(CLOSE, body);
    if (end < 0) break;
    from = end + CLOSE.length;
    let parsed: unknown;
    try {
      parsed = JSON.parse(text.slice(body, end).trim());
    } catch {
      continue;
    }
    if (parsed === null || typeof parsed !== 'object') continue;
    const { name, arguments: args, parameters } = parsed as Record<string, unknown>;
    if (typeof name !== 'string' || name === '') continue;
    const raw = args ?? parameters;
    calls.push({
      name,
      arguments: typeof raw === 'string' ? raw : raw === undefined ? '{}' : JSON.stringify(raw),
    });
  }
  return calls;
}

function stripBlocks(text: string, open: string, close: string): string {
  let out = text;
  for (;;) {
    const start = out.indexOf(open);
    if (start < 0) return out;
    const end = out.indexOf(close, start);
    if (end < 0) return out.slice(0, start);
    out = out.slice(0, start) + out.slice(end + close.length);
  }
}

/**
 * `text` without `<tool_call>` blocks and `<think>` blocks. A `</think>` with no opening tag (the
 * chat template opened it in the prompt) drops everything before it; an unclosed opening tag drops
 * everything after it. Leading whitespace left by a removed block is trimmed.
 */
export function stripToolCallText(text: string): string {
  if (!text.includes('<tool_call>') && !text.includes('think>')) return text;
  let out = text;
  const close = out.indexOf('</think>');
  const open = out.indexOf('<think>');
  if (close >= 0 && (open < 0 || open > close)) out = out.slice(close + '</think>'.length);
  out = stripBlocks(out, OPEN, CLOSE);
  out = stripBlocks(out, '<think>', '</think>');
  return out.trimStart();
}

export interface ChatToResponseOptions extends Pick<ResponseIdOptions, 'newId'> {
  /** The Responses request, whose values the response echoes. */
  request: ResponsesRequest;
  /** The response id. @default a fresh `resp_...` */
  responseId?: string;
  /** `store` and `previous_response_id` as served. @default from the request */
  fields?: Pick<ResponseFields, 'store' | 'previousResponseId'>;
}

type ItemStatus = 'completed' | 'incomplete';

function message(id: string, text: string, status: ItemStatus): ResponsesOutputItem {
  return {
    type: 'message',
    id,
    role: 'assistant',
    status,
    content: [{ type: 'output_text', text, annotations: [], logprobs: [] }],
  };
}

/** The unary `response` object for a folded chat completion. */
export function chatToResponse(
  chat: ChatCompletionResponse,
  options: ChatToResponseOptions,
): ResponseObject {
  const { request, newId } = options;
  const id = options.responseId ?? prefixedId('resp', newId);
  const output: ResponsesOutputItem[] = [];
  const choice = chat.choices[0];
  // Cut by the token limit: `incomplete`, with the reason (OpenAI's `max_output_tokens`).
  const status: ItemStatus = choice?.finish_reason === 'length' ? 'incomplete' : 'completed';
  for (const call of choice?.message.tool_calls ?? []) {
    output.push({
      type: 'function_call',
      id: prefixedId('fc', newId),
      call_id: call.id,
      name: call.function.name,
      arguments: call.function.arguments,
      status,
    });
  }
  const text = choice?.message.content ?? '';
  if (text !== '') {
    const calls = parseToolCallText(text);
    for (const call of calls) {
      output.push({
        type: 'function_call',
        id: prefixedId('fc', newId),
        call_id: prefixedId('call', newId),
        name: call.name,
        arguments: call.arguments,
        status,
      });
    }
    const rest = stripToolCallText(text);
    if (calls.length === 0 || rest.trim() !== '') {
      output.push(message(prefixedId('msg', newId), rest, status));
    }
  }
  if (output.length === 0) output.push(message(prefixedId('msg', newId), '', status));

  return buildResponse(request, {
    ...options.fields,
    id,
    model: chat.model,
    status,
    createdAt: chat.created,
    completedAt: status === 'completed' ? chat.created : null,
    output,
    usage: chat.usage ? toResponsesUsage(chat.usage) : null,
    ...(status === 'incomplete' ? { incompleteReason: 'max_output_tokens' } : {}),
  });
}
