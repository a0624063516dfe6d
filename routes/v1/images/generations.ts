/** POST /v1/images/generations: OpenAI image generation, served by `Images` workers. */
import { createRoute, type RouteHandler } from '@hono/zod-openapi';
import { createImages } from '../../../src/core/generate/media.ts';
import {
  ImageGenerationRequestSchema,
  ImagesResponseSchema,
} from '../../../src/core/api/openai/media.ts';
import { MEDIA_ERRORS, mediaCall } from '../../../src/http/media-route.ts';
import type { AppEnv, RouteOptions } from '../../../src/http/types.ts';

export const route = createRoute({
  method: 'post',
  path: '/v1/images/generations',
  tags: ['OpenAI'],
  summary: 'Create images',
  description: 'Routed to a worker registered with the `Images` model type. Always one JSON body.',
  request: {
    body: {
      required: true,
      content: { 'application/json': { schema: ImageGenerationRequestSchema } },
    },
  },
  responses: {
    200: {
      description: 'The images, as base64 (`b64_json`) or URLs',
      content: { 'application/json': { schema: ImagesResponseSchema } },
    },
    ...MEDIA_ERRORS,
  },
});

export const options: RouteOptions = { readinessGate: true };

export const handler: RouteHandler<typeof route, AppEnv> = async (c) => {
  const request = c.req.valid('json');
  const call = mediaCall(c, request, { stream: false });
  return c.json(await createImages(c.get('core'), request, call), 200);
};
