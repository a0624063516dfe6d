/** DELETE /v1/responses/{id}: forgets a stored response. */
import { createRoute, type RouteHandler } from '@hono/zod-openapi';
import { ResponseNotFoundError } from '../../../src/core/errors.ts';
import { requireStore } from '../../../src/core/api/responses/store.ts';
import {
  DeletedResponseSchema,
  ResponseIdParamSchema,
} from '../../../src/core/api/responses/schemas.ts';
import { openAIError } from '../../../src/http/openai-route.ts';
import type { AppEnv, RouteOptions } from '../../../src/http/types.ts';

export const route = createRoute({
  method: 'delete',
  path: '/v1/responses/{id}',
  tags: ['OpenAI'],
  summary: 'Delete a stored response',
  request: { params: ResponseIdParamSchema },
  responses: {
    200: {
      description: 'Deleted',
      content: { 'application/json': { schema: DeletedResponseSchema } },
    },
    404: openAIError('No stored response has this id'),
    501: openAIError('The frontend runs with --responses-store none'),
  },
});

export const options: RouteOptions = {};

export const handler: RouteHandler<typeof route, AppEnv> = async (c) => {
  const { id } = c.req.valid('param');
  if (!await requireStore(c.get('core').responseStore).delete(id)) {
    throw new ResponseNotFoundError(id);
  }
  return c.json({ id, object: 'response' as const, deleted: true as const }, 200);
};
