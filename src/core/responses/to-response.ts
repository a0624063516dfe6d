/**
 * Chat completion -> Responses API `response` object (reference §8.2), for non-streaming clients.
 * Reasoning becomes a `reasoning` item, tool calls `function_call` items, text one `message` item. Tool calls and
 * reasoning arrive parsed by the chat pipeline's output parsers (`src/core/parsers/`, chosen by the
 * model card), so the text here is the answer only.
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
  const reasoning = (choice?.message as { reasoning_content?: string | null } | undefined)
    ?.reasoning_content;
  if (reasoning) {
    output.push({
      type: 'reasoning',
      id: prefixedId('rs', newId),
      summary: [],
      content: [{ type: 'reasoning_text', text: reasoning }],
      status: 'completed',
    });
  }
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
  if (text !== '') output.push(message(prefixedId('msg', newId), text));
  if (!output.some((o) => o.type !== 'reasoning')) {
    output.push(message(prefixedId('msg', newId), ''));
  }

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
