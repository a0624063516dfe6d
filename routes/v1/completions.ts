/** POST /v1/completions: OpenAI text completions (string, strings, token ids or lists of them). */
import { createRoute, type RouteHandler, z } from '@hono/zod-openapi';
import { collectCompletion, startCompletion } from '../../src/core/pipeline/chat.ts';
import {
  CompletionRequestSchema,
  CompletionResponseSchema,
  OpenAIErrorSchema,
} from '../../src/core/protocols/openai.ts';
import { validateCompletionRequest } from '../../src/core/protocols/validate.ts';
import { annotationEvents, callContext } from '../../src/http/call.ts';
import { sseResponse } from '../../src/http/sse.ts';
import type { AppEnv, RouteOptions } from '../../src/http/types.ts';

const error = (description: string) => ({
  description,
  content: { 'application/json': { schema: OpenAIErrorSchema } },
});

export const route = createRoute({
  method: 'post',
  path: '/v1/completions',
  tags: ['OpenAI'],
  summary: 'Create a text completion',
  request: {
    body: { required: true, content: { 'application/json': { schema: CompletionRequestSchema } } },
  },
  responses: {
    200: {
      description:
        'The completion, or with `stream: true` an SSE stream of chunks ending in [DONE]',
      content: {
        'application/json': { schema: CompletionResponseSchema },
        'text/event-stream': { schema: z.string() },
      },
    },
    400: error('Invalid request'),
    404: error('Unknown model'),
    413: error('Body too large'),
    415: error('Not JSON'),
    503: error('No live worker, or shutting down'),
  },
});

export const options: RouteOptions = { pathKey: 'completions', readinessGate: true };

export const handler: RouteHandler<typeof route, AppEnv> = async (c) => {
  const core = c.get('core');
  const request = validateCompletionRequest(c.req.valid('json'), {
    ignoreUnsupported: core.config.ignoreUnsupportedFields,
  });
  const stream = request.stream === true;
  const call = callContext(c, request.nvext, { stream });
  const started = await startCompletion(core, request, call);
  if (!stream) return c.json(await collectCompletion(started), 200);
  return sseResponse(c, started.chunks, {
    onDisconnect: () => {
      started.metrics.disconnected();
      call.cancel();
    },
    onEnd: () => {},
    leading: annotationEvents(call),
  }) as unknown as Response & { _data: never; _status: 200; _format: 'json' };
};
