/**
 * The Responses endpoints beside create: input token counts (`POST /v1/responses/input_tokens`),
 * compaction (`POST /v1/responses/compact`), and the input-item list of a stored response
 * (`GET /v1/responses/{id}/input_items`).
 */
import type { Core } from '../../core.ts';
import { modelTypesOf } from '../../discovery/model-card.ts';
import { BadRequestError, ModelNotFoundError, ValidationError } from '../../errors.ts';
import type { CallContext } from '../../generate/call-context.ts';
import { collectChat, startChat } from '../../generate/chat.ts';
import { PromptTooLongError } from '../../preprocess/preprocessor.ts';
import { fileLimitsOf, withInputFileText } from '../../preprocess/file-parts.ts';
import type {
  ChatCompletionRequest,
  ResponsesInputItem,
  ResponsesRequest,
  ResponsesUsage,
} from '../openai/schemas.ts';
import { defaultNow, prefixedId, toResponsesUsage } from './_response.ts';
import {
  contextOf,
  inputItemsOf,
  loadPrevious,
  planResponse,
  type PlanServices,
  type ResponsesServices,
} from './run.ts';
import { encodeCompaction } from './compaction.ts';
import type { StoredInputItem } from './store.ts';
import { responsesToChat } from './to-chat.ts';

/** Dynamo's estimate for models the frontend does not tokenize for: characters / 3. */
function estimate(chat: ChatCompletionRequest): number {
  let chars = 0;
  for (const message of chat.messages) {
    chars += 4 +
      (typeof message.content === 'string'
        ? message.content.length
        : JSON.stringify(message.content ?? '').length);
  }
  for (const tool of chat.tools ?? []) chars += JSON.stringify(tool).length;
  return Math.floor(chars / 3);
}

/**
 * The prompt tokens a Responses request would use: the chat it runs as (previous responses
 * included) rendered with the model's chat template and tokenized by the model's tokenizer.
 */
export async function countInputTokens(
  core: PlanServices & Pick<Core, 'models' | 'preprocessors'>,
  request: ResponsesRequest,
): Promise<number> {
  const { chat } = await planResponse(core, { ...request, store: false });
  const model = core.models.get(chat.model);
  if (!model) throw new ModelNotFoundError(chat.model);
  if (!modelTypesOf(model.card).includes('Chat')) {
    throw new BadRequestError(`Model "${model.name}" does not serve chat`, { param: 'model' });
  }
  if (model.card.model_input === 'Text') return estimate(chat);
  const pre = await core.preprocessors.get(model);
  try {
    const rendered = await pre.renderChat({
      messages: chat.messages as Parameters<typeof pre.renderChat>[0]['messages'],
      tools: chat.tools ?? undefined,
      tool_choice: chat.tool_choice ?? undefined,
    });
    return rendered.tokenIds.length;
  } catch (error) {
    // Counting is what the caller asked for, even past the context window.
    if (error instanceof PromptTooLongError) return error.promptLength;
    throw error;
  }
}

export interface InputItemPage {
  object: 'list';
  data: StoredInputItem[];
  first_id: string | null;
  last_id: string | null;
  has_more: boolean;
}

/** One page of input items: `order` desc (newest first) by default, after the item `after`. */
export function pageInputItems(
  items: readonly StoredInputItem[],
  query: { limit?: number; order?: 'asc' | 'desc'; after?: string },
): InputItemPage {
  const ordered = query.order === 'asc' ? [...items] : [...items].reverse();
  let from = 0;
  if (query.after !== undefined) {
    const at = ordered.findIndex((item) => item.id === query.after);
    if (at < 0) {
      throw new ValidationError(`Invalid value for "after": no input item "${query.after}"`, {
        param: 'after',
      });
    }
    from = at + 1;
  }
  const limit = query.limit ?? 20;
  const data = ordered.slice(from, from + limit);
  return {
    object: 'list',
    data,
    first_id: data[0]?.id ?? null,
    last_id: data.at(-1)?.id ?? null,
    has_more: from + limit < ordered.length,
  };
}

/** What compaction keeps of a conversation besides the summary: the user's own messages. */
function isUserMessage(item: ResponsesInputItem): boolean {
  return (item.type ?? 'message') === 'message' && (item as { role?: string }).role === 'user';
}

/** The longest summary compaction asks for. */
const COMPACT_MAX_TOKENS = 1024;

const SUMMARY_PROMPT = 'Summarize the conversation above for a model that will continue it: ' +
  'the facts, decisions, tool results and open tasks, concisely. Reply with the summary only.';

export interface CompactRequest {
  model: string;
  input?: ResponsesRequest['input'] | null;
  previous_response_id?: string | null;
  instructions?: string | null;
}

export interface CompactResult {
  id: string;
  object: 'response.compaction';
  created_at: number;
  output: Array<StoredInputItem | { type: 'compaction'; id: string; encrypted_content: string }>;
  usage: ResponsesUsage;
}

/**
 * Compaction: the model summarizes the whole conversation (the previous response's context and
 * output, then `input`); the result keeps the user's messages and adds one `compaction` item with
 * the summary, which a later request passes back as input in place of what it replaced.
 */
export async function compactConversation(
  core: ResponsesServices,
  request: CompactRequest,
  call: CallContext,
): Promise<CompactResult> {
  const previous = await loadPrevious(core, request.previous_response_id);
  const inputItems = inputItemsOf(request.input ?? undefined, () => core.newId());
  const context = contextOf(
    previous,
    await withInputFileText(inputItems, fileLimitsOf(core.config)),
  );
  if (context.length === 0) {
    throw new ValidationError('Missing required parameter "input": nothing to compact', {
      param: 'input',
    });
  }
  const chat = responsesToChat({
    model: request.model,
    instructions: request.instructions ?? null,
    input: [...context, { type: 'message', role: 'user', content: SUMMARY_PROMPT }],
  });
  const started = await startChat(core, {
    ...chat,
    max_completion_tokens: COMPACT_MAX_TOKENS,
    stream: false,
    stream_options: null,
  }, {
    ...call,
    endpoint: 'responses',
  });
  const done = await collectChat(started);
  const summary = done.choices[0]?.message.content ?? '';
  const kept = inputItemsOf(context.filter(isUserMessage), () => core.newId());
  return {
    id: prefixedId('resp', () => core.newId()),
    object: 'response.compaction',
    created_at: defaultNow(),
    output: [
      ...kept,
      {
        type: 'compaction',
        id: prefixedId('cmp', () => core.newId()),
        encrypted_content: encodeCompaction(summary),
      },
    ],
    usage: toResponsesUsage(
      done.usage ?? { prompt_tokens: 0, completion_tokens: 0, total_tokens: 0 },
    ),
  };
}
