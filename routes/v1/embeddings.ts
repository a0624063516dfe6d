/** POST /v1/embeddings: OpenAI embeddings (float arrays, or base64 with encoding_format). */
import { createRoute, type RouteHandler } from '@hono/zod-openapi';
import { createEmbeddings } from '../../src/core/generate/embeddings.ts';
import {
  EmbeddingRequestSchema,
  EmbeddingResponseSchema,
} from '../../src/core/api/openai/schemas.ts';
import { callContext } from '../../src/http/call.ts';
import { openAIError } from '../../src/http/openai-route.ts';
import type { AppEnv, RouteOptions } from '../../src/http/types.ts';

export const route = createRoute({
  method: 'post',
  path: '/v1/embeddings',
  tags: ['OpenAI'],
  summary: 'Create embeddings',
  request: {
    body: { required: true, content: { 'application/json': { schema: EmbeddingRequestSchema } } },
  },
  responses: {
    200: {
      description: 'One vector per input',
      content: { 'application/json': { schema: EmbeddingResponseSchema } },
    },
    400: openAIError('Invalid request, or the model does not embed'),
    404: openAIError('Unknown model'),
    503: openAIError('No live worker, or shutting down'),
  },
});

export const options: RouteOptions = { pathKey: 'embeddings', readinessGate: true };

export const handler: RouteHandler<typeof route, AppEnv> = async (c) => {
  const request = c.req.valid('json');
  const call = callContext(c, request.nvext, { stream: false });
  return c.json(await createEmbeddings(c.get('core'), request, call), 200);
};
