/** GET /docs/{asset}: the Swagger UI files (CSS, JS bundle, icon), served without a CDN. */
import { createRoute, type RouteHandler, z } from '@hono/zod-openapi';
import { NotFoundError } from '../../src/core/errors.ts';
import { OpenAIErrorSchema } from '../../src/core/api/openai/schemas.ts';
import type { AppEnv } from '../../src/http/types.ts';

export const route = createRoute({
  method: 'get',
  path: '/docs/{asset}',
  hide: true,
  request: { params: z.object({ asset: z.string() }) },
  responses: {
    200: { description: 'Asset', content: { 'application/octet-stream': { schema: z.string() } } },
    404: {
      description: 'No such asset',
      content: { 'application/json': { schema: OpenAIErrorSchema } },
    },
  },
});

/** The page's own start-up script: point Swagger UI at our document. */
const INITIALIZER = `window.onload = function () {
  window.ui = SwaggerUIBundle({
    url: '/openapi.json',
    dom_id: '#swagger-ui',
    deepLinking: true,
    validatorUrl: null,
  });
};
`;

export const handler: RouteHandler<typeof route, AppEnv> = async (c) => {
  const { asset } = c.req.valid('param');
  if (asset === 'swagger-initializer.js') {
    return c.body(INITIALIZER, 200, { 'content-type': 'text/javascript; charset=utf-8' });
  }
  const found = await c.get('assets')?.get(asset);
  if (!found) throw new NotFoundError(`Documentation asset "${asset}" not found`);
  return c.body(found.body, 200, {
    'content-type': found.contentType,
    'cache-control': 'public, max-age=86400',
  });
};
