/** GET /health: readiness of the frontend process (503 while starting or shutting down). */
import { createRoute, type RouteHandler } from '@hono/zod-openapi';
import { HealthSchema } from '../src/core/api/admin.ts';
import type { AppEnv, RouteOptions } from '../src/http/types.ts';
import { stringifyExactJson } from '../src/core/json.ts';

export const route = createRoute({
  method: 'get',
  path: '/health',
  tags: ['Infrastructure'],
  summary: 'Health check',
  description: 'Healthy once initial discovery is done; 503 while starting or shutting down.',
  responses: {
    200: { description: 'Healthy', content: { 'application/json': { schema: HealthSchema } } },
    503: { description: 'Not ready', content: { 'application/json': { schema: HealthSchema } } },
  },
});

export const options: RouteOptions = { pathKey: 'health' };

export const handler: RouteHandler<typeof route, AppEnv> = (c) => {
  const { lifecycle, models } = c.get('core');
  // Workers' addresses are for operators: with keys configured, only the admin key sees them.
  const detail = c.get('trusted');
  const instances = (detail ? models.allInstances() : []).map((i) => ({
    ...i.endpoint,
    // A u64: written as its exact digits (a double would round 5141444950165349785).
    instance_id: BigInt(`0x${i.instanceId}`),
    instance_id_hex: i.instanceId,
    // An engine's API key (`register --api-key`) is never shown.
    transport: 'api_key' in i.transport ? { ...i.transport, api_key: '<redacted>' } : i.transport,
  }));
  const endpoints = [
    ...new Set(instances.map((i) => `dyn://${i.namespace}.${i.component}.${i.endpoint}`)),
  ]
    .sort();
  const base = {
    initial_discovery_complete: lifecycle.phase !== 'starting',
    initial_discovery_error: lifecycle.discoveryError,
    endpoints,
    instances,
  };
  // c.json() cannot write a bigint: the body is exact JSON text, typed as the schema says.
  const json = (body: Record<string, unknown>, status: 200 | 503) =>
    c.body(stringifyExactJson(body), status, { 'content-type': 'application/json' }) as never;
  if (lifecycle.closing) {
    return json({ status: 'shutting_down', message: 'Service is shutting down', ...base }, 503);
  }
  if (lifecycle.phase === 'starting') {
    const message = lifecycle.discoveryError
      ? `Initial model discovery failed: ${lifecycle.discoveryError}`
      : 'Initial model discovery in progress';
    return json({ status: 'not_ready', message, ...base }, 503);
  }
  return json({ status: 'healthy', message: 'Service is healthy', ...base }, 200);
};
