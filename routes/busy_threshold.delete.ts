/** DELETE /busy_threshold: unset a model's busy thresholds (all, or the ones named). */
import { createRoute, type RouteHandler } from '@hono/zod-openapi';
import {
  AdminErrorSchema,
  BusyThresholdSchema,
  BusyThresholdUnsetSchema,
} from '../src/core/api/admin.ts';
import type { AppEnv, RouteOptions } from '../src/http/types.ts';

const error = (description: string) => ({
  description,
  content: { 'application/json': { schema: AdminErrorSchema } },
});

export const route = createRoute({
  method: 'delete',
  path: '/busy_threshold',
  tags: ['Admin'],
  summary: 'Unset busy thresholds',
  description:
    "Unsets the model's thresholds named in `thresholds` (all when omitted): that model is then " +
    'never shed for them, whatever the CLI defaults say.',
  request: {
    body: {
      required: true,
      content: { 'application/json': { schema: BusyThresholdUnsetSchema } },
    },
  },
  responses: {
    200: {
      description: "The model's thresholds after the call",
      content: { 'application/json': { schema: BusyThresholdSchema } },
    },
    400: error('Invalid value'),
    401: error('Missing or wrong admin key'),
    403: error('Admin API closed'),
    413: error('Body too large'),
    415: error('Not JSON'),
  },
});

export const options: RouteOptions = {
  surface: 'admin',
  enabled: (config) => !config.disableFrontendAdminApi,
};

export const handler: RouteHandler<typeof route, AppEnv> = (c) => {
  const { model, thresholds } = c.req.valid('json');
  return c.json({ model, ...c.get('core').thresholds.unset(model, thresholds) }, 200);
};
