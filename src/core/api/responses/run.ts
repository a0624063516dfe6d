/**
 * One Responses API request end to end, for every transport (`POST /v1/responses` as JSON or SSE,
 * and the WebSocket mode): the stored conversation it continues (`previous_response_id`), the chat
 * request it runs as, and the response stored when it ends (`store`).
 *
 *   const plan = await planResponse(core, request);
 *   const response = await runResponse(core, plan, call);          // unary
 *   const { events } = await streamResponse(core, plan, call);     // stream events
 */
import type { Core } from '../../core.ts';
import { NotImplementedError, PreviousResponseNotFoundError } from '../../errors.ts';
import type { CallContext } from '../../generate/call-context.ts';
import { type ChatServices, collectChat, startChat, type Started } from '../../generate/chat.ts';
import type {
  ChatCompletionChunk,
  ChatCompletionRequest,
  ResponseObject,
  ResponsesInputItem,
  ResponsesRequest,
} from '../openai/schemas.ts';
import { fileLimitsOf, withInputFileText } from '../../preprocess/file-parts.ts';
import { prefixedId } from './_response.ts';
import type { ResponseStore, StoredInputItem, StoredResponse } from './store.ts';
import { createResponsesStream, type ResponsesStreamEvent } from './stream.ts';
import { responsesToChat } from './to-chat.ts';
import { chatToResponse } from './to-response.ts';

/** What a Responses request runs as, once its stored context is loaded. */
export interface ResponsePlan {
  request: ResponsesRequest;
  chat: ChatCompletionRequest;
  responseId: string;
  /** Whether the response is stored when it ends. */
  store: boolean;
  inputItems: StoredInputItem[];
  context: ResponsesInputItem[];
}

/** The request's `input` as items with ids, the way `/input_items` lists them. */
export function inputItemsOf(
  input: ResponsesRequest['input'],
  newId: () => string,
): StoredInputItem[] {
  if (input === undefined) return [];
  const items: ResponsesInputItem[] = typeof input === 'string'
    ? [{ type: 'message', role: 'user', content: input }]
    : input;
  return items.map((item) => {
    const type = item.type ?? 'message';
    if (type !== 'message') {
      const id = typeof item.id === 'string' && item.id !== ''
        ? item.id
        : prefixedId('item', newId);
      return { ...item, id } as StoredInputItem;
    }
    const message = item as Extract<ResponsesInputItem, { role: string }>;
    const textType = message.role === 'assistant' ? 'output_text' : 'input_text';
    const content = typeof message.content === 'string'
      ? [{ type: textType, text: message.content }]
      : message.content;
    return {
      ...message,
      type: 'message',
      id: typeof message.id === 'string' && message.id !== ''
        ? message.id
        : prefixedId('msg', newId),
      status: message.status ?? 'completed',
      content,
    } as StoredInputItem;
  });
}

/** What running a Responses request uses: the chat pipeline and the responses store. */
export type ResponsesServices = ChatServices & Pick<Core, 'responseStore'>;

/** What planning a request reads: the store (`previous_response_id`), fresh ids, file limits. */
export type PlanServices = Pick<Core, 'responseStore' | 'newId' | 'config'>;

function requireStore(
  core: Pick<Core, 'responseStore'>,
  param: string,
  why: string,
): ResponseStore {
  if (!core.responseStore) {
    throw new NotImplementedError(
      `"${param}" is not supported: ${why}, and this frontend runs with --responses-store none`,
      { param },
    );
  }
  return core.responseStore;
}

/** The stored record `previous_response_id` names, or 404 `previous_response_not_found`. */
export async function loadPrevious(
  core: Pick<Core, 'responseStore'>,
  id: string | null | undefined,
  local?: StoredResponse,
): Promise<StoredResponse | undefined> {
  if (id === null || id === undefined) return undefined;
  // WebSocket mode keeps the connection's latest response, stored or not (`store: false`).
  if (local?.response.id === id) return local;
  const store = requireStore(core, 'previous_response_id', 'it needs stored responses');
  const previous = await store.get(id);
  if (!previous) throw new PreviousResponseNotFoundError(id);
  return previous;
}

/**
 * The conversation a request continues: the previous response's context and output, then this
 * request's input (instructions are the request's own; earlier ones are not carried over).
 */
export function contextOf(
  previous: StoredResponse | undefined,
  inputItems: readonly ResponsesInputItem[],
): ResponsesInputItem[] {
  const before = previous
    ? [...previous.context, ...previous.response.output as ResponsesInputItem[]]
    : [];
  return [...before, ...inputItems];
}

export interface PlanOptions {
  /** A response this connection holds (WebSocket mode), found before the store is asked. */
  local?: StoredResponse;
  /**
   * A warm-up (`generate: false`): nothing runs, so no input is needed and no chat request is
   * built when there is none. @default false
   */
  warmup?: boolean;
}

/** Loads what the request continues and translates it to the chat request it runs as. */
export async function planResponse(
  core: PlanServices,
  request: ResponsesRequest,
  options: PlanOptions = {},
): Promise<ResponsePlan> {
  const store = request.store === true
    ? (requireStore(core, 'store', 'responses are not kept'), true)
    : request.store ?? core.responseStore !== undefined;
  const previous = await loadPrevious(core, request.previous_response_id, options.local);
  const inputItems = inputItemsOf(request.input, () => core.newId());
  // Files become text once, here: the stored context carries the text, not the file.
  const withText = await withInputFileText(inputItems, fileLimitsOf(core.config));
  const context = contextOf(previous, withText);
  // Without anything to continue, the request's own input rules apply (missing, empty).
  const chat = options.warmup && context.length === 0
    ? { model: request.model, messages: [] }
    : responsesToChat(
      previous || withText !== inputItems ? { ...request, input: context } : request,
    );
  return {
    request,
    chat,
    responseId: prefixedId('resp', () => core.newId()),
    store,
    inputItems,
    context,
  };
}

export function fieldsOf(plan: ResponsePlan) {
  return { store: plan.store, previousResponseId: plan.request.previous_response_id ?? null };
}

export interface RunOptions {
  /** Told of every finished response's record, stored or not (WebSocket mode keeps the latest). */
  onRecord?: (record: StoredResponse) => void;
}

/** The record of a finished response, handed to `onRecord` and stored when `store` holds. */
export async function keep(
  core: Pick<Core, 'responseStore' | 'logger'>,
  plan: ResponsePlan,
  response: ResponseObject,
  options: RunOptions = {},
): Promise<void> {
  const record = { response, input_items: plan.inputItems, context: plan.context };
  options.onRecord?.(record);
  if (!plan.store || !core.responseStore) return;
  try {
    await core.responseStore.put(record);
  } catch (error) {
    // The answer still reaches the client; a later retrieval answers 404.
    core.logger.warn('could not store the response', { id: response.id, error });
  }
}

function start(core: ChatServices, plan: ResponsePlan, call: CallContext, stream: boolean) {
  return startChat(core, {
    ...plan.chat,
    stream,
    stream_options: stream ? { include_usage: true } : null,
  }, { ...call, endpoint: 'responses' });
}

/** Runs the request to its end and returns (and stores) the response object. */
export async function runResponse(
  core: ResponsesServices,
  plan: ResponsePlan,
  call: CallContext,
  options: RunOptions = {},
): Promise<ResponseObject> {
  const started = await start(core, plan, call, false);
  const response = chatToResponse(await collectChat(started), {
    request: plan.request,
    newId: () => core.newId(),
    responseId: plan.responseId,
    fields: fieldsOf(plan),
  });
  await keep(core, plan, response, options);
  return response;
}

/**
 * Starts the request and returns its stream events. The final response is stored before the
 * terminal event (`response.completed`, `.incomplete`, `.failed`) is handed on, so a client that
 * saw it can retrieve or continue the response at once.
 */
export async function streamResponse(
  core: ResponsesServices,
  plan: ResponsePlan,
  call: CallContext,
  options: RunOptions = {},
): Promise<
  { started: Started<ChatCompletionChunk>; events: AsyncGenerator<ResponsesStreamEvent> }
> {
  const started = await start(core, plan, call, true);
  const converter = createResponsesStream(plan.request, {
    newId: () => core.newId(),
    model: started.model,
    responseId: plan.responseId,
    fields: fieldsOf(plan),
  });
  async function* events(): AsyncGenerator<ResponsesStreamEvent> {
    for await (const event of converter.convert(started.chunks)) {
      if (converter.final && 'response' in event.data && event.data.response === converter.final) {
        await keep(core, plan, converter.final, options);
      }
      yield event;
    }
  }
  return { started, events: events() };
}
