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
}

function message(id: string, text: string): ResponsesOutputItem {
  return {
    type: 'message',
    id,
    role: 'assistant',
    status: 'completed',
    content: [{ type: 'output_text', text, annotations: [], logprobs: [] }],
  };
}

/** The unary `response` object for a folded chat completion. */
export function chatToResponse(
  chat: ChatCompletionResponse,
  options: ChatToResponseOptions,
): ResponseObject {
  const { request, newId } = options;
  const id = prefixedId('resp', newId);
  const output: ResponsesOutputItem[] = [];
  const choice = chat.choices[0];
  for (const call of choice?.message.tool_calls ?? []) {
    output.push({
      type: 'function_call',
      id: prefixedId('fc', newId),
      call_id: call.id,
      name: call.function.name,
      arguments: call.function.arguments,
      status: 'completed',
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
        status: 'completed',
      });
    }
    const rest = stripToolCallText(text);
    if (calls.length === 0 || rest.trim() !== '') {
      output.push(message(prefixedId('msg', newId), rest));
    }
  }
  if (output.length === 0) output.push(message(prefixedId('msg', newId), ''));

  return buildResponse(request, {
    id,
    model: chat.model,
    status: 'completed',
    createdAt: chat.created,
    completedAt: chat.created,
    output,
    ...(chat.usage ? { usage: toResponsesUsage(chat.usage) } : {}),
  });
}
