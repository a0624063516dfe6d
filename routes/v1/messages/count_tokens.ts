/** POST /v1/messages/count_tokens: a Messages request's prompt tokens, by the model's tokenizer. */
import { createRoute, type RouteHandler } from '@hono/zod-openapi';
import { countMessageTokens } from '../../../src/core/api/anthropic/messages.ts';
import {
  CountTokensRequestSchema,
  CountTokensResponseSchema,
} from '../../../src/core/api/anthropic/schemas.ts';
import { ANTHROPIC_ERRORS } from '../../../src/http/anthropic-route.ts';
import type { AppEnv, RouteOptions } from '../../../src/http/types.ts';

export const route = createRoute({
  method: 'post',
  path: '/v1/messages/count_tokens',
  tags: ['Anthropic'],
  summary: 'Count the tokens of a message request',
  description: 'The system prompt, messages and tools rendered with the chat template and ' +
    "tokenized with the model's tokenizer. Served with `--enable-anthropic-api`; 404 otherwise.",
  request: {
    body: {
      required: true,
      content: { 'application/json': { schema: CountTokensRequestSchema } },
    },
  },
  responses: {
    200: {
      description: 'The prompt token count',
      content: { 'application/json': { schema: CountTokensResponseSchema } },
    },
    ...ANTHROPIC_ERRORS,
  },
});

export const options: RouteOptions = {
  surface: 'anthropic',
  enabled: (config) => config.enableAnthropicApi,
};

export const handler: RouteHandler<typeof route, AppEnv> = async (c) => {
  const inputTokens = await countMessageTokens(c.get('core'), c.req.valid('json'));
  return c.json({ input_tokens: inputTokens }, 200);
};
