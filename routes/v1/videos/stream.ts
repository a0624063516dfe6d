/** POST /v1/videos/stream: stream a video as motion JPEG (multipart/x-mixed-replace). */
import { createRoute, type RouteHandler } from '@hono/zod-openapi';
import {
  answerVideoFrames,
  VIDEO_FRAMES_RESPONSES,
  VIDEO_REQUEST,
} from '../../../src/http/media-route.ts';
import type { AppEnv, RouteOptions } from '../../../src/http/types.ts';

export const route = createRoute({
  method: 'post',
  path: '/v1/videos/stream',
  tags: ['Videos'],
  summary: 'Stream a video as motion JPEG',
  description:
    'Routed to a worker registered with the `Videos` model type. Same as `POST /v1/videos/generations/stream`.',
  request: VIDEO_REQUEST,
  responses: VIDEO_FRAMES_RESPONSES,
});

export const options: RouteOptions = { readinessGate: true };

export const handler: RouteHandler<typeof route, AppEnv> = (c) =>
  answerVideoFrames(c, c.req.valid('json'));
