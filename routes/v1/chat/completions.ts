/** POST /v1/chat/completions: OpenAI chat completions, streamed (SSE) or not. */
import { createRoute, type RouteHandler, z } from '@hono/zod-openapi';
import { collectChat, startChat } from '../../../src/core/pipeline/chat.ts';
import {
  ChatCompletionRequestSchema,
  ChatCompletionResponseSchema,
  OpenAIErrorSchema,
} from '../../../src/core/protocols/openai.ts';
import { validateChatCompletionRequest } from '../../../src/core/protocols/validate.ts';
import { annotationEvents, callContext } from '../../../src/http/call.ts';
import { sseResponse } from '../../../src/http/sse.ts';
import type { AppEnv, RouteOptions } from '../../../src/http/types.ts';

const error = (description: string) => ({
  description,
  content: { 'application/json': { schema: OpenAIErrorSchema } },
});

export const route = createRoute({
  method: 'post',
  path: '/v1/chat/completions',
  tags: ['OpenAI'],
  summary: 'Create a chat completion',
  request: {
    body: {
      required: true,
      content: { 'application/json': { schema: ChatCompletionRequestSchema } },
    },
  },
  responses: {
    200: {
      description:
        'The completion, or with `stream: true` an SSE stream of chunks ending in [DONE]',
      content: {
        'application/json': { schema: ChatCompletionResponseSchema },
        'text/event-stream': { schema: z.string() },
      },
    },
    400: error('Invalid request'),
    404: error('Unknown model'),
    413: error('Body too large'),
    415: error('Not JSON'),
    501: error('Deprecated or unsupported field'),
    503: error('No live worker, or shutting down'),
  },
});

export const options: RouteOptions = { pathKey: 'chat', readinessGate: true };

export const handler: RouteHandler<typeof route, AppEnv> = async (c) => {
  const core = c.get('core');
  const request = validateChatCompletionRequest(c.req.valid('json'), {
    ignoreUnsupported: core.config.ignoreUnsupportedFields,
  });
  const stream = request.stream === true;
  const call = callContext(c, request.nvext, { stream });
  const started = await startChat(core, request, call);
  if (!stream) return c.json(await collectChat(started), 200);
  return sseResponse(c, started.chunks, {
    onDisconnect: () => {
      started.metrics.disconnected();
      call.cancel();
    },
    onEnd: () => {},
    leading: annotationEvents(call),
  }) as unknown as Response & { _data: never; _status: 200; _format: 'json' };
};
