/** GET /v1/responses/{id}/input_items: the input items of a stored response, paged. */
import { createRoute, type RouteHandler } from '@hono/zod-openapi';
import { storedResponse } from '../../../../src/core/api/responses/store.ts';
import {
  InputItemListSchema,
  InputItemsQuerySchema,
  ResponseIdParamSchema,
} from '../../../../src/core/api/responses/schemas.ts';
import { pageInputItems } from '../../../../src/core/api/responses/extras.ts';
import { openAIError } from '../../../../src/http/openai-route.ts';
import type { AppEnv, RouteOptions } from '../../../../src/http/types.ts';

export const route = createRoute({
  method: 'get',
  path: '/v1/responses/{id}/input_items',
  tags: ['OpenAI'],
  summary: 'List the input items of a stored response',
  request: { params: ResponseIdParamSchema, query: InputItemsQuerySchema },
  responses: {
    200: {
      description: 'One page of input items',
      content: { 'application/json': { schema: InputItemListSchema } },
    },
    400: openAIError('Invalid query (limit, order, after)'),
    404: openAIError('No stored response has this id'),
    501: openAIError('The frontend runs with --responses-store none'),
  },
});

export const options: RouteOptions = {};

export const handler: RouteHandler<typeof route, AppEnv> = async (c) => {
  const record = await storedResponse(c.get('core').responseStore, c.req.valid('param').id);
  return c.json(pageInputItems(record.input_items, c.req.valid('query')), 200);
};
