/** POST /v1/chat/completions: OpenAI chat completions, streamed (SSE) or not. */
import { createRoute, type RouteHandler, z } from '@hono/zod-openapi';
import { collectChat, startChat } from '../../../src/core/generate/chat.ts';
import {
  ChatCompletionRequestSchema,
  ChatCompletionResponseSchema,
} from '../../../src/core/api/openai/schemas.ts';
import { validateChatCompletionRequest } from '../../../src/core/api/openai/validate.ts';
import { callContext } from '../../../src/http/call.ts';
import { answer, INFERENCE_ERRORS, openAIError } from '../../../src/http/openai-route.ts';
import type { AppEnv, RouteOptions } from '../../../src/http/types.ts';

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
    ...INFERENCE_ERRORS,
    501: openAIError('Deprecated or unsupported field'),
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
  return answer(c, { started, call, stream, collect: collectChat });
};
