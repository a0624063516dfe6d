/** POST /v1/videos/generations: create a video (JSON, or SSE with `stream: true`). */
import { createRoute, type RouteHandler } from '@hono/zod-openapi';
import { answerVideos, VIDEO_REQUEST, VIDEO_RESPONSES } from '../../../src/http/media-route.ts';
import type { AppEnv, RouteOptions } from '../../../src/http/types.ts';

export const route = createRoute({
  method: 'post',
  path: '/v1/videos/generations',
  tags: ['Videos'],
  summary: 'Create a video',
  description:
    'Routed to a worker registered with the `Videos` model type. Same as `POST /v1/videos`.',
  request: VIDEO_REQUEST,
  responses: VIDEO_RESPONSES,
});

export const options: RouteOptions = { readinessGate: true };

export const handler: RouteHandler<typeof route, AppEnv> = (c) =>
  answerVideos(c, c.req.valid('json'));
