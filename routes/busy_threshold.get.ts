/** GET /busy_threshold: every model's busy thresholds. */
import { createRoute, type RouteHandler } from '@hono/zod-openapi';
import { BusyThresholdListSchema } from '../src/core/api/admin.ts';
import type { AppEnv, RouteOptions } from '../src/http/types.ts';

export const route = createRoute({
  method: 'get',
  path: '/busy_threshold',
  tags: ['Admin'],
  summary: 'Get busy thresholds',
  responses: {
    200: {
      description: 'Thresholds of every model that has its own',
      content: { 'application/json': { schema: BusyThresholdListSchema } },
    },
  },
});

export const options: RouteOptions = {
  surface: 'admin',
  enabled: (config) => !config.disableFrontendAdminApi,
};

export const handler: RouteHandler<typeof route, AppEnv> = (c) =>
  c.json({ thresholds: c.get('core').thresholds.list() }, 200);
