/** GET /metrics: Prometheus text exposition of the frontend's metrics. */
import { createRoute, type RouteHandler, z } from '@hono/zod-openapi';
import type { AppEnv, RouteOptions } from '../src/http/types.ts';

export const route = createRoute({
  method: 'get',
  path: '/metrics',
  tags: ['Infrastructure'],
  summary: 'Prometheus metrics',
  responses: {
    200: {
      description: 'Prometheus text format',
      content: { 'text/plain': { schema: z.string() } },
    },
  },
});

export const options: RouteOptions = { pathKey: 'metrics' };

export const handler: RouteHandler<typeof route, AppEnv> = async (c) => {
  const { metrics } = c.get('core');
  const text = await metrics.render();
  return c.text(text, 200, { 'content-type': metrics.contentType });
};
