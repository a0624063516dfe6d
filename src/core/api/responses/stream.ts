/**
 * Chat completion chunks -> Responses API stream events (reference §8.3). Each event is
 * `{ event, data }` with `event` equal to `data.type` and a `sequence_number` that grows by one
 * from 0. The route writes them as SSE (`event:` + `data:` lines) and then `data: [DONE]` on a
 * natural end.
 *
 *   response.created, response.in_progress
 *   reasoning:      response.output_item.added (reasoning), response.content_part.added
 *                   (reasoning_text), response.reasoning_text.delta per reasoning delta (closed
 *                   at the end by reasoning_text.done, content_part.done, output_item.done)
 *   first text:     response.output_item.added (message), response.content_part.added,
 *                   then response.output_text.delta per text delta
 *   per tool call:  response.output_item.added (function_call) when its name or first argument
 *                   fragment arrives, then response.function_call_arguments.delta per fragment
 *   end:            per item in output order: output_text.done, content_part.done,
 *                   output_item.done (message) or function_call_arguments.done, output_item.done
 *                   (call); then response.completed with the full output and usage, or
 *                   response.incomplete (`incomplete_details.reason: "max_output_tokens"`) when
 *                   the output was cut by the token limit
 *   failure:        response.failed with `response.error`, and nothing after it
 *
 * Every `response` object carries `usage`: `null` until the worker reported it.
 */
import { type ApiError, toApiError } from '../../errors.ts';
import type {
  ChatCompletionChunk,
  ResponseObject,
  ResponsesError,
  ResponsesOutputFunctionCall,
  ResponsesOutputItem,
  ResponsesOutputMessage,
  ResponsesOutputReasoning,
  ResponsesOutputText,
  ResponsesRequest,
  ResponsesUsage,
} from '../openai/schemas.ts';
import {
  buildResponse,
  defaultNow,
  prefixedId,
  type ResponseFields,
  type ResponseIdOptions,
  toResponsesUsage,
} from './_response.ts';

interface Sequenced {
  sequence_number: number;
}

export type ResponsesStreamEventData =
  & Sequenced
  & (
    | {
      type:
        | 'response.created'
        | 'response.in_progress'
        | 'response.completed'
        | 'response.incomplete'
        | 'response.failed';
      response: ResponseObject;
    }
    | {
      type: 'response.output_item.added' | 'response.output_item.done';
      output_index: number;
      item: ResponsesOutputItem;
    }
    | {
      type: 'response.content_part.added' | 'response.content_part.done';
      item_id: string;
      output_index: number;
      content_index: number;
      part: ResponsesOutputText | { type: 'reasoning_text'; text: string };
    }
    | {
      type: 'response.output_text.delta';
      item_id: string;
      output_index: number;
      content_index: number;
      delta: string;
      logprobs: unknown[];
    }
    | {
      type: 'response.output_text.done';
      item_id: string;
      output_index: number;
      content_index: number;
      text: string;
      logprobs: unknown[];
    }
    | {
      type: 'response.reasoning_text.delta';
      item_id: string;
      output_index: number;
      content_index: number;
      delta: string;
    }
    | {
      type: 'response.reasoning_text.done';
      item_id: string;
      output_index: number;
      content_index: number;
      text: string;
    }
    | {
      type: 'response.function_call_arguments.delta';
      item_id: string;
      output_index: number;
      delta: string;
    }
    | {
      type: 'response.function_call_arguments.done';
      item_id: string;
      output_index: number;
      name: string;
      arguments: string;
    }
  );

/** One SSE event: `event` is the SSE event name, `data` its JSON payload. */
export interface ResponsesStreamEvent {
  event: ResponsesStreamEventData['type'];
  data: ResponsesStreamEventData;
}

/** Distributes `Omit` over the union, so each event keeps its own fields. */
type EventBody<T> = T extends unknown ? Omit<T, 'sequence_number'> : never;

export interface ResponsesStreamOptions extends ResponseIdOptions {
  /** The `model` the response reports. @default request.model */
  model?: string;
  /** The response id. @default a fresh `resp_...` */
  responseId?: string;
  /** Fields every snapshot carries (`store`, `previous_response_id`). @default from the request */
  fields?: Pick<ResponseFields, 'store' | 'previousResponseId'>;
}

export interface ResponsesStream {
  /** `resp_...`, fixed for the stream's life. */
  readonly responseId: string;
  /** Set once `fail()` ran: what failed, as the client was told. */
  readonly failure: ApiError | undefined;
  /** The final `response` object, once the stream completed, was cut, or failed. */
  readonly final: ResponseObject | undefined;
  /** `response.created` and `response.in_progress`; the other methods call it when needed. */
  start(): ResponsesStreamEvent[];
  /** The events one chat completion chunk produces (often one, sometimes none). */
  push(chunk: ChatCompletionChunk): ResponsesStreamEvent[];
  /** Closes the open items and ends with `response.completed`. */
  finish(): ResponsesStreamEvent[];
  /** Ends with `response.failed`; later calls produce nothing. */
  fail(error: unknown): ResponsesStreamEvent[];
  /**
   * The whole conversion over a chunk stream: start, chunks, then finish, or `response.failed`
   * if `chunks` throws (the error is kept in `failure`, not rethrown).
   */
  convert(chunks: AsyncIterable<ChatCompletionChunk>): AsyncGenerator<ResponsesStreamEvent>;
}

/** The `response.error.code` for an error: by its HTTP status (§3.3). */
export function responsesErrorCode(error: ApiError): ResponsesError['code'] {
  if (error.status === 429) return 'rate_limit_exceeded';
  if (error.status >= 400 && error.status < 500) return 'invalid_prompt';
  return 'server_error';
}

interface CallState {
  item: ResponsesOutputFunctionCall;
  outputIndex: number;
}

export function createResponsesStream(
  request: ResponsesRequest,
  options: ResponsesStreamOptions,
): ResponsesStream {
  const { newId } = options;
  const now = options.now ?? defaultNow;
  const model = options.model ?? request.model;
  const responseId = options.responseId ?? prefixedId('resp', newId);
  const createdAt = now();
  let finishReason: string | null = null;
  let final: ResponseObject | undefined;

  let sequence = 0;
  let phase: 'new' | 'open' | 'done' = 'new';
  let failure: ApiError | undefined;
  let usage: ResponsesUsage | undefined;
  let nextOutputIndex = 0;
  let message: { item: ResponsesOutputMessage; outputIndex: number; text: string } | undefined;
  let reasoning: { item: ResponsesOutputReasoning; outputIndex: number; text: string } | undefined;
  const calls = new Map<number, CallState>();

  const emit = (out: ResponsesStreamEvent[], body: EventBody<ResponsesStreamEventData>) => {
    const data = { ...body, sequence_number: sequence++ } as ResponsesStreamEventData;
    out.push({ event: data.type, data });
  };

  const snapshot = (
    status: ResponseObject['status'],
    output: ResponsesOutputItem[],
    error?: ResponsesError,
  ): ResponseObject =>
    buildResponse(request, {
      ...options.fields,
      id: responseId,
      model,
      status,
      createdAt,
      completedAt: status === 'completed' ? now() : null,
      output,
      usage: status === 'completed' || status === 'incomplete' ? usage ?? null : null,
      ...(status === 'incomplete' ? { incompleteReason: 'max_output_tokens' } : {}),
      ...(error ? { error } : {}),
    });

  const textPart = (text: string): ResponsesOutputText => ({
    type: 'output_text',
    text,
    annotations: [],
    logprobs: [],
  });

  function start(): ResponsesStreamEvent[] {
    if (phase !== 'new') return [];
    phase = 'open';
    const out: ResponsesStreamEvent[] = [];
    emit(out, { type: 'response.created', response: snapshot('in_progress', []) });
    emit(out, { type: 'response.in_progress', response: snapshot('in_progress', []) });
    return out;
  }

  function pushText(out: ResponsesStreamEvent[], delta: string) {
    if (!message) {
      const item: ResponsesOutputMessage = {
        type: 'message',
        id: prefixedId('msg', newId),
        role: 'assistant',
        status: 'in_progress',
        content: [],
      };
      message = { item, outputIndex: nextOutputIndex++, text: '' };
      emit(out, {
        type: 'response.output_item.added',
        output_index: message.outputIndex,
        item: { ...item, content: [] },
      });
      emit(out, {
        type: 'response.content_part.added',
        item_id: item.id,
        output_index: message.outputIndex,
        content_index: 0,
        part: textPart(''),
      });
    }
    message.text += delta;
    emit(out, {
      type: 'response.output_text.delta',
      item_id: message.item.id,
      output_index: message.outputIndex,
      content_index: 0,
      delta,
      logprobs: [],
    });
  }

  function pushReasoning(out: ResponsesStreamEvent[], delta: string) {
    if (!reasoning) {
      const item: ResponsesOutputReasoning = {
        type: 'reasoning',
        id: prefixedId('rs', newId),
        summary: [],
        content: [],
        status: 'in_progress',
      };
      reasoning = { item, outputIndex: nextOutputIndex++, text: '' };
      emit(out, {
        type: 'response.output_item.added',
        output_index: reasoning.outputIndex,
        item: { ...item, content: [] },
      });
      emit(out, {
        type: 'response.content_part.added',
        item_id: item.id,
        output_index: reasoning.outputIndex,
        content_index: 0,
        part: { type: 'reasoning_text', text: '' },
      });
    }
    reasoning.text += delta;
    emit(out, {
      type: 'response.reasoning_text.delta',
      item_id: reasoning.item.id,
      output_index: reasoning.outputIndex,
      content_index: 0,
      delta,
    });
  }

  type ToolCallDelta = NonNullable<
    ChatCompletionChunk['choices'][number]['delta']['tool_calls']
  >[number];

  function pushToolCall(out: ResponsesStreamEvent[], delta: ToolCallDelta) {
    let state = calls.get(delta.index);
    const pending = state ?? {
      item: {
        type: 'function_call' as const,
        id: prefixedId('fc', newId),
        call_id: '',
        name: '',
        arguments: '',
        status: 'in_progress' as const,
      },
      outputIndex: -1,
    };
    if (delta.id) pending.item.call_id = delta.id;
    if (delta.function?.name) pending.item.name = delta.function.name;
    const args = delta.function?.arguments;
    if (!state) {
      calls.set(delta.index, pending);
      state = pending;
    }
    if (state.outputIndex < 0 && (state.item.name !== '' || args !== undefined)) {
      state.outputIndex = nextOutputIndex++;
      if (state.item.call_id === '') state.item.call_id = prefixedId('call', newId);
      emit(out, {
        type: 'response.output_item.added',
        output_index: state.outputIndex,
        item: { ...state.item, arguments: '' },
      });
    }
    if (args) {
      state.item.arguments += args;
      emit(out, {
        type: 'response.function_call_arguments.delta',
        item_id: state.item.id,
        output_index: state.outputIndex,
        delta: args,
      });
    }
  }

  function push(chunk: ChatCompletionChunk): ResponsesStreamEvent[] {
    if (phase === 'done') return [];
    const out = start();
    if (chunk.usage) usage = toResponsesUsage(chunk.usage);
    for (const choice of chunk.choices) {
      if (choice.index !== 0) continue;
      if (choice.finish_reason) finishReason = choice.finish_reason;
      const thought = (choice.delta as { reasoning_content?: string | null }).reasoning_content;
      if (typeof thought === 'string' && thought !== '') pushReasoning(out, thought);
      const content = choice.delta.content;
      if (typeof content === 'string' && content !== '') pushText(out, content);
      for (const call of choice.delta.tool_calls ?? []) pushToolCall(out, call);
    }
    return out;
  }

  function finalItems(
    status: 'completed' | 'incomplete',
  ): { outputIndex: number; item: ResponsesOutputItem }[] {
    const items: { outputIndex: number; item: ResponsesOutputItem }[] = [];
    if (reasoning) {
      items.push({
        outputIndex: reasoning.outputIndex,
        item: {
          ...reasoning.item,
          status: 'completed',
          content: [{ type: 'reasoning_text', text: reasoning.text }],
        },
      });
    }
    if (message) {
      items.push({
        outputIndex: message.outputIndex,
        item: { ...message.item, status, content: [textPart(message.text)] },
      });
    }
    for (const call of calls.values()) {
      if (call.outputIndex < 0) continue;
      items.push({ outputIndex: call.outputIndex, item: { ...call.item, status } });
    }
    return items.sort((a, b) => a.outputIndex - b.outputIndex);
  }

  function finish(): ResponsesStreamEvent[] {
    if (phase === 'done') return [];
    const out = start();
    phase = 'done';
    const status = finishReason === 'length' ? 'incomplete' : 'completed';
    const items = finalItems(status);
    for (const { outputIndex, item } of items) {
      if (item.type === 'message') {
        const text = item.content[0]?.text ?? '';
        emit(out, {
          type: 'response.output_text.done',
          item_id: item.id,
          output_index: outputIndex,
          content_index: 0,
          text,
          logprobs: [],
        });
        emit(out, {
          type: 'response.content_part.done',
          item_id: item.id,
          output_index: outputIndex,
          content_index: 0,
          part: textPart(text),
        });
      } else if (item.type === 'reasoning') {
        const text = item.content[0]?.text ?? '';
        emit(out, {
          type: 'response.reasoning_text.done',
          item_id: item.id,
          output_index: outputIndex,
          content_index: 0,
          text,
        });
        emit(out, {
          type: 'response.content_part.done',
          item_id: item.id,
          output_index: outputIndex,
          content_index: 0,
          part: { type: 'reasoning_text', text },
        });
      } else {
        emit(out, {
          type: 'response.function_call_arguments.done',
          item_id: item.id,
          output_index: outputIndex,
          name: item.name,
          arguments: item.arguments,
        });
      }
      emit(out, { type: 'response.output_item.done', output_index: outputIndex, item });
    }
    final = snapshot(status, items.map((i) => i.item));
    emit(out, {
      type: status === 'incomplete' ? 'response.incomplete' : 'response.completed',
      response: final,
    });
    return out;
  }

  function fail(error: unknown): ResponsesStreamEvent[] {
    if (phase === 'done') return [];
    const out = start();
    phase = 'done';
    failure = toApiError(error);
    const detail: ResponsesError = { code: responsesErrorCode(failure), message: failure.message };
    final = snapshot('failed', [], detail);
    emit(out, { type: 'response.failed', response: final });
    return out;
  }

  async function* convert(
    chunks: AsyncIterable<ChatCompletionChunk>,
  ): AsyncGenerator<ResponsesStreamEvent> {
    yield* start();
    try {
      for await (const chunk of chunks) yield* push(chunk);
    } catch (error) {
      yield* fail(error);
      return;
    }
    yield* finish();
  }

  return {
    responseId,
    get failure() {
      return failure;
    },
    get final() {
      return final;
    },
    start,
    push,
    finish,
    fail,
    convert,
  };
}
