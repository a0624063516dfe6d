/**
 * `POST /v1/messages` and `POST /v1/messages/count_tokens` behind the route modules: a Messages
 * request runs as a streamed chat completion whose chunks become Anthropic events (folded into
 * one message for `stream: false`); count_tokens renders the same chat with the model's template
 * and counts its tokens with the model's tokenizer.
 */
import type { Core } from '../../core.ts';
import { modelTypesOf } from '../../discovery/model-card.ts';
import { BadRequestError, ModelNotFoundError } from '../../errors.ts';
import type { CallContext } from '../../generate/call-context.ts';
import { type ChatServices, startChat, type Started } from '../../generate/chat.ts';
import { PromptTooLongError } from '../../preprocess/preprocessor.ts';
import type { CountTokensRequest, MessagesRequest } from './schemas.ts';
import type { ChatCompletionChunk } from '../openai/schemas.ts';
import { type MessagesStreamEvent, toMessagesEvents } from './stream.ts';
import { countTokensToChat, estimateTokens, messagesToChat } from './to-chat.ts';

export interface StartedMessages {
  /** The underlying chat request (its metrics guard; the route reports a disconnect on it). */
  started: Started<ChatCompletionChunk>;
  events: AsyncIterable<MessagesStreamEvent>;
}

/** Starts `request` (already validated) on the chat pipeline; 404 / 503 as chat does. */
export async function startMessages(
  core: ChatServices,
  request: MessagesRequest,
  call: CallContext,
): Promise<StartedMessages> {
  const chat = messagesToChat(request);
  // As Dynamo: a model with a reasoning parser thinks unless the client disabled thinking.
  const card = core.models.get(request.model)?.card;
  if (card?.runtime_config.reasoning_parser && request.thinking?.type !== 'disabled') {
    chat.chat_template_args = {
      enable_thinking: true,
      truncate_history_thinking: false,
      ...chat.chat_template_args,
    };
  }
  const started = await startChat(core, chat, {
    ...call,
    endpoint: 'anthropic_messages',
    stopReasons: true,
  });
  const events = toMessagesEvents(started.chunks, {
    id: `msg_${call.requestId.replaceAll('-', '')}`,
    model: started.model,
    inputTokens: started.usage().promptTokens,
    newId: () => core.newId(),
    stopSequences: request.stop_sequences ?? [],
    parseThinking: request.thinking?.type !== 'disabled',
  });
  return { started, events };
}

/**
 * The prompt tokens `request` would use: its chat rendered with the model's chat template and
 * tokenized. A model the frontend does not tokenize for (text input) gets Dynamo's estimate.
 */
export async function countMessageTokens(
  core: Pick<Core, 'models' | 'preprocessors'>,
  request: CountTokensRequest,
): Promise<number> {
  const chat = countTokensToChat(request);
  const model = core.models.get(request.model);
  if (!model) throw new ModelNotFoundError(request.model);
  if (!modelTypesOf(model.card).includes('Chat')) {
    throw new BadRequestError(`Model "${model.name}" does not serve chat`, { param: 'model' });
  }
  if (model.card.model_input === 'Text') return estimateTokens(request);
  const pre = await core.preprocessors.get(model);
  try {
    const rendered = await pre.renderChat({
      messages: chat.messages as Parameters<typeof pre.renderChat>[0]['messages'],
      tools: chat.tools.length > 0 ? chat.tools : undefined,
      chat_template_args: chat.chatTemplateArgs,
    });
    return rendered.tokenIds.length;
  } catch (error) {
    // Counting is what the caller asked for, even past the context window.
    if (error instanceof PromptTooLongError) return error.promptLength;
    throw error;
  }
}
