/** GET /docs: Swagger UI for /openapi.json, with its assets served by Switchboard itself. */
import { createRoute, type RouteHandler, z } from '@hono/zod-openapi';
import type { AppEnv } from '../src/http/types.ts';

export const route = createRoute({
  method: 'get',
  path: '/docs',
  tags: ['Infrastructure'],
  summary: 'Swagger UI',
  responses: {
    200: { description: 'Swagger UI page', content: { 'text/html': { schema: z.string() } } },
  },
});

const PAGE = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Switchboard API</title>
<link rel="icon" type="image/png" href="/docs/favicon-32x32.png">
<link rel="stylesheet" href="/docs/swagger-ui.css">
</head>
<body>
<div id="swagger-ui"></div>
<script src="/docs/swagger-ui-bundle.js"></script>
<script src="/docs/swagger-initializer.js"></script>
</body>
</html>
`;

export const handler: RouteHandler<typeof route, AppEnv> = (c) => c.html(PAGE, 200);
