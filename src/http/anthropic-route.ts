/** What the Anthropic route modules share: their error responses, and answering a request. */
import type { Context } from 'hono';
import { foldMessage, type MessagesStreamEvent } from '../core/api/anthropic/stream.ts';
import type { StartedMessages } from '../core/api/anthropic/messages.ts';
import { AnthropicErrorSchema } from '../core/api/anthropic/schemas.ts';
import { annotationEvents, type callContext } from './call.ts';
import { sseResponse } from './sse.ts';
import type { AppEnv } from './types.ts';

/** An error response in Anthropic's envelope, for `createRoute({ responses })`. */
export const anthropicError = (description: string) => ({
  description,
  content: { 'application/json': { schema: AnthropicErrorSchema } },
});

export const ANTHROPIC_ERRORS = {
  400: anthropicError('Invalid request (invalid_request_error)'),
  404: anthropicError('Unknown model (not_found_error)'),
  413: anthropicError('Body too large (request_too_large)'),
  415: anthropicError('Not JSON (invalid_request_error)'),
} as const;

/**
 * Streams the events as SSE, each `event:` named after its `type` and the stream ended by
 * `data: [DONE]` as Dynamo does (clients skip the unnamed frame), or folds them into one message.
 */
export async function answerMessages(
  c: Context<AppEnv>,
  request: { messages: StartedMessages; call: ReturnType<typeof callContext>; stream: boolean },
) {
  const { messages: { started, events }, call } = request;
  if (!request.stream) return c.json(await foldMessage(events), 200);
  return sseResponse(c, events, {
    eventOf: (e) => (e as MessagesStreamEvent).type,
    onDisconnect: () => {
      started.metrics.disconnected();
      call.cancel();
    },
    onEnd: () => {},
    leading: annotationEvents(call),
  }) as unknown as ReturnType<typeof c.json<Awaited<ReturnType<typeof foldMessage>>, 200>>;
}
