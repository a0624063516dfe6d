/** GET /openapi.json: the OpenAPI 3.1 document generated from the mounted route modules. */
import { createRoute, type RouteHandler, z } from '@hono/zod-openapi';
import type { AppEnv } from '../src/http/types.ts';

export const route = createRoute({
  method: 'get',
  path: '/openapi.json',
  tags: ['Infrastructure'],
  summary: 'OpenAPI document',
  responses: {
    200: {
      description: 'OpenAPI 3.1 document',
      content: { 'application/json': { schema: z.record(z.string(), z.unknown()) } },
    },
  },
});

export const handler: RouteHandler<typeof route, AppEnv> = (c) =>
  c.json(c.get('openapi')() as Record<string, unknown>, 200);
