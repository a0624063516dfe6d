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
} from '../openai/schemas.ts';
import {
  buildResponse,
  prefixedId,
  type ResponseFields,
  type ResponseIdOptions,
  toResponsesUsage,
} from './_response.ts';

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
      status,
    });
  }
  const text = choice?.message.content ?? '';
  if (text !== '') output.push(message(prefixedId('msg', newId), text, status));
  if (!output.some((o) => o.type !== 'reasoning')) {
    output.push(message(prefixedId('msg', newId), '', status));
  }

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
