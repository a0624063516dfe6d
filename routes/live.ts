/** GET /live: liveness of the frontend process (503 once shutdown has begun). */
import { createRoute, type RouteHandler } from '@hono/zod-openapi';
import { LiveSchema } from '../src/core/api/admin.ts';
import type { AppEnv, RouteOptions } from '../src/http/types.ts';

export const route = createRoute({
  method: 'get',
  path: '/live',
  tags: ['Infrastructure'],
  summary: 'Liveness check',
  responses: {
    200: { description: 'Live', content: { 'application/json': { schema: LiveSchema } } },
    503: {
      description: 'Shutting down',
      content: { 'application/json': { schema: LiveSchema } },
    },
  },
});

export const options: RouteOptions = { pathKey: 'live' };

export const handler: RouteHandler<typeof route, AppEnv> = (c) =>
  c.get('core').lifecycle.closing
    ? c.json({ status: 'shutting_down', message: 'Service is shutting down' }, 503)
    : c.json({ status: 'live', message: 'Service is live' }, 200);
