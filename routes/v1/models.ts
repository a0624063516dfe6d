/** GET /v1/models: the models that have at least one live worker, and their aliases. */
import { createRoute, type RouteHandler } from '@hono/zod-openapi';
import { ModelListSchema, OpenAIErrorSchema } from '../../src/core/api/openai/schemas.ts';
import type { ServedModel } from '../../src/core/discovery/models.ts';
import type { AppEnv, RouteOptions } from '../../src/http/types.ts';

export const route = createRoute({
  method: 'get',
  path: '/v1/models',
  tags: ['OpenAI'],
  summary: 'List models',
  responses: {
    200: {
      description: 'Served models',
      content: { 'application/json': { schema: ModelListSchema } },
    },
    503: {
      description: 'Starting or shutting down',
      content: { 'application/json': { schema: OpenAIErrorSchema } },
    },
  },
});

export const options: RouteOptions = { pathKey: 'models', readinessGate: true };

/** A served model in OpenAI's shape, plus Dynamo's `context_window`. */
export function openAIModel(m: ServedModel) {
  return {
    id: m.name,
    object: 'model' as const,
    created: m.created,
    owned_by: 'switchboard',
    ...(m.contextLength === undefined ? {} : { context_window: m.contextLength }),
  };
}

export const handler: RouteHandler<typeof route, AppEnv> = (c) => {
  const { models } = c.get('core');
  // Aliases (the card's `aliases`) are listed under their own ids, with the primary's details.
  const aliases = models.aliases().map(({ alias, model }) => ({
    ...openAIModel(model),
    id: alias,
  }));
  const data = [...models.list().map(openAIModel), ...aliases].sort((a, b) =>
    a.id.localeCompare(b.id)
  );
  return c.json({ object: 'list' as const, data }, 200);
};
