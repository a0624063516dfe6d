/** POST /v1/completions: OpenAI text completions (string, strings, token ids or lists of them). */
import { createRoute, type RouteHandler, z } from '@hono/zod-openapi';
import { collectCompletion, startCompletion } from '../../src/core/generate/chat.ts';
import {
  CompletionRequestSchema,
  CompletionResponseSchema,
} from '../../src/core/api/openai/schemas.ts';
import { validateCompletionRequest } from '../../src/core/api/openai/validate.ts';
import { callContext } from '../../src/http/call.ts';
import { answer, INFERENCE_ERRORS } from '../../src/http/openai-route.ts';
import type { AppEnv, RouteOptions } from '../../src/http/types.ts';

export const route = createRoute({
  method: 'post',
  path: '/v1/completions',
  tags: ['OpenAI'],
  summary: 'Create a text completion',
  request: {
    body: { required: true, content: { 'application/json': { schema: CompletionRequestSchema } } },
  },
  responses: {
    200: {
      description:
        'The completion, or with `stream: true` an SSE stream of chunks ending in [DONE]',
      content: {
        'application/json': { schema: CompletionResponseSchema },
        'text/event-stream': { schema: z.string() },
      },
    },
    ...INFERENCE_ERRORS,
  },
});

export const options: RouteOptions = {
  pathKey: 'completions',
  readinessGate: true,
  longTokenField: 'prompt',
};

export const handler: RouteHandler<typeof route, AppEnv> = async (c) => {
  const core = c.get('core');
  const request = validateCompletionRequest(c.req.valid('json'), {
    ignoreUnsupported: core.config.ignoreUnsupportedFields,
  });
  const stream = request.stream === true;
  const call = callContext(c, request.nvext, { stream });
  const started = await startCompletion(core, request, call);
  return answer(c, { started, call, stream, collect: collectCompletion });
};
