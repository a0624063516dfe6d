/** GET /v1/responses/{id}: a stored response, as its create call answered it. */
import { createRoute, type RouteHandler } from '@hono/zod-openapi';
import { storedResponse } from '../../../src/core/api/responses/store.ts';
import { ResponseObjectSchema } from '../../../src/core/api/openai/schemas.ts';
import { ResponseIdParamSchema } from '../../../src/core/api/responses/schemas.ts';
import { openAIError } from '../../../src/http/openai-route.ts';
import type { AppEnv, RouteOptions } from '../../../src/http/types.ts';

export const route = createRoute({
  method: 'get',
  path: '/v1/responses/{id}',
  tags: ['OpenAI'],
  summary: 'Retrieve a stored response',
  request: { params: ResponseIdParamSchema },
  responses: {
    200: {
      description: 'The response',
      content: { 'application/json': { schema: ResponseObjectSchema } },
    },
    404: openAIError('No stored response has this id (never stored, expired or deleted)'),
    501: openAIError('The frontend runs with --responses-store none'),
  },
});

export const options: RouteOptions = {};

export const handler: RouteHandler<typeof route, AppEnv> = async (c) => {
  const record = await storedResponse(c.get('core').responseStore, c.req.valid('param').id);
  return c.json(record.response, 200);
};
