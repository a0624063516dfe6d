/** GET /v1/models/{model}: one served model (the id may contain `/`). */
import { createRoute, type RouteHandler, z } from '@hono/zod-openapi';
import { ModelNotFoundError } from '../../../src/core/errors.ts';
import { ModelSchema, OpenAIErrorSchema } from '../../../src/core/api/openai/schemas.ts';
import type { AppEnv, RouteOptions } from '../../../src/http/types.ts';
import { openAIModel } from '../models.ts';

export const route = createRoute({
  method: 'get',
  path: '/v1/models/{model}',
  tags: ['OpenAI'],
  summary: 'Retrieve a model',
  request: { params: z.object({ model: z.string().min(1) }) },
  responses: {
    200: { description: 'The model', content: { 'application/json': { schema: ModelSchema } } },
    404: {
      description: 'Unknown model',
      content: { 'application/json': { schema: OpenAIErrorSchema } },
    },
    503: {
      description: 'Starting or shutting down',
      content: { 'application/json': { schema: OpenAIErrorSchema } },
    },
  },
});

export const options: RouteOptions = { readinessGate: true, paramPatterns: { model: '.+' } };

export const handler: RouteHandler<typeof route, AppEnv> = (c) => {
  const name = c.req.valid('param').model;
  const model = c.get('core').models.get(name);
  if (!model) throw new ModelNotFoundError(name);
  // An alias answers under its own id (the model's details are the primary's).
  return c.json({ ...openAIModel(model), id: name }, 200);
};
