/** POST /v1/messages: Anthropic's Messages API, translated to a chat completion and back. */
import { createRoute, type RouteHandler, z } from '@hono/zod-openapi';
import { startMessages } from '../../src/core/api/anthropic/messages.ts';
import { validateMessagesRequest } from '../../src/core/api/anthropic/to-chat.ts';
import {
  AnthropicMessageSchema,
  MessagesRequestSchema,
} from '../../src/core/api/anthropic/schemas.ts';
import { callContext } from '../../src/http/call.ts';
import {
  answerMessages,
  ANTHROPIC_ERRORS,
  anthropicError,
} from '../../src/http/anthropic-route.ts';
import type { AppEnv, RouteOptions } from '../../src/http/types.ts';

export const route = createRoute({
  method: 'post',
  path: '/v1/messages',
  tags: ['Anthropic'],
  summary: 'Create a message',
  description: 'Served with `--enable-anthropic-api`; 404 otherwise.',
  request: {
    body: { required: true, content: { 'application/json': { schema: MessagesRequestSchema } } },
  },
  responses: {
    200: {
      description:
        'The message, or with `stream: true` its SSE events (message_start ... message_stop)',
      content: {
        'application/json': { schema: AnthropicMessageSchema },
        'text/event-stream': { schema: z.string() },
      },
    },
    ...ANTHROPIC_ERRORS,
    503: anthropicError('No live worker, or shutting down (overloaded_error)'),
  },
});

export const options: RouteOptions = {
  surface: 'anthropic',
  pathKey: 'anthropic',
  readinessGate: true,
  enabled: (config) => config.enableAnthropicApi,
};

export const handler: RouteHandler<typeof route, AppEnv> = async (c) => {
  const request = validateMessagesRequest(c.req.valid('json'));
  const stream = request.stream === true;
  const call = callContext(c, request.nvext, { stream });
  const messages = await startMessages(c.get('core'), request, call);
  return answerMessages(c, { messages, call, stream });
};
