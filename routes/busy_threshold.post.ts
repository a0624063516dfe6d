/** POST /busy_threshold: set a model's busy thresholds, or read them when none is given. */
import { createRoute, type RouteHandler } from '@hono/zod-openapi';
import { NotFoundError } from '../src/core/errors.ts';
import {
  AdminErrorSchema,
  BusyThresholdRequestSchema,
  BusyThresholdSchema,
} from '../src/core/api/admin.ts';
import type { AppEnv, RouteOptions } from '../src/http/types.ts';

const error = (description: string) => ({
  description,
  content: { 'application/json': { schema: AdminErrorSchema } },
});

export const route = createRoute({
  method: 'post',
  path: '/busy_threshold',
  tags: ['Admin'],
  summary: 'Set or get busy thresholds',
  description:
    'With any threshold given, sets it for the model; with none, returns the current ones.',
  request: {
    body: {
      required: true,
      content: { 'application/json': { schema: BusyThresholdRequestSchema } },
    },
  },
  responses: {
    200: {
      description: "The model's thresholds after the call",
      content: { 'application/json': { schema: BusyThresholdSchema } },
    },
    400: error('Invalid value'),
    404: error('Unknown model'),
    413: error('Body too large'),
    415: error('Not JSON'),
  },
});

export const options: RouteOptions = {
  surface: 'admin',
  enabled: (config) => !config.disableFrontendAdminApi,
};

export const handler: RouteHandler<typeof route, AppEnv> = (c) => {
  const { model: asked, ...update } = c.req.valid('json');
  const { thresholds, models } = c.get('core');
  // An alias names its model: thresholds are kept (and enforced) under the primary name.
  const model = models.get(asked)?.name ?? asked;
  const isSet = Object.values(update).some((v) => v !== undefined && v !== null);
  if (!isSet) return c.json({ model, ...thresholds.get(model) }, 200);
  if (!models.get(model)) {
    throw new NotFoundError(
      `Model '${model}' not found. Thresholds can only be set for discovered models.`,
    );
  }
  return c.json({ model, ...thresholds.set(model, update) }, 200);
};
