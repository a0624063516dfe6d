/** POST /v1/responses/input_tokens: the prompt tokens a Responses request would use. */
import { createRoute, type RouteHandler } from '@hono/zod-openapi';
import { validateResponsesRequest } from '../../../src/core/api/openai/validate.ts';
import {
  InputTokensRequestSchema,
  InputTokensResponseSchema,
} from '../../../src/core/api/responses/schemas.ts';
import { countInputTokens } from '../../../src/core/api/responses/extras.ts';
import { INFERENCE_ERRORS, openAIError } from '../../../src/http/openai-route.ts';
import type { AppEnv, RouteOptions } from '../../../src/http/types.ts';

export const route = createRoute({
  method: 'post',
  path: '/v1/responses/input_tokens',
  tags: ['OpenAI'],
  summary: 'Count the input tokens of a Responses request',
  description: 'Instructions, input (after any `previous_response_id` context) and tools, ' +
    "rendered with the model's chat template and tokenized with its tokenizer.",
  request: {
    body: {
      required: true,
      content: { 'application/json': { schema: InputTokensRequestSchema } },
    },
  },
  responses: {
    200: {
      description: 'The input token count',
      content: { 'application/json': { schema: InputTokensResponseSchema } },
    },
    ...INFERENCE_ERRORS,
    501: openAIError('A field the frontend does not support'),
  },
});

export const options: RouteOptions = { readinessGate: true };

export const handler: RouteHandler<typeof route, AppEnv> = async (c) => {
  const request = validateResponsesRequest(c.req.valid('json'));
  const inputTokens = await countInputTokens(c.get('core'), request);
  return c.json({ object: 'response.input_tokens' as const, input_tokens: inputTokens }, 200);
};
