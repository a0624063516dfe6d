/** POST /v1/responses: OpenAI's Responses API, translated to a chat completion and back. */
import { createRoute, type RouteHandler, z } from '@hono/zod-openapi';
import { ResponseObjectSchema, ResponsesRequestSchema } from '../../src/core/api/openai/schemas.ts';
import { validateResponsesRequest } from '../../src/core/api/openai/validate.ts';
import { planResponse, runResponse, streamResponse } from '../../src/core/api/responses/run.ts';
import type { ResponsesStreamEvent } from '../../src/core/api/responses/stream.ts';
import { callContext } from '../../src/http/call.ts';
import { openAIError } from '../../src/http/openai-route.ts';
import { sseResponse } from '../../src/http/sse.ts';
import type { AppEnv, RouteOptions } from '../../src/http/types.ts';

export const route = createRoute({
  method: 'post',
  path: '/v1/responses',
  tags: ['OpenAI'],
  summary: 'Create a model response',
  description: 'Also served as a WebSocket on the same path (`response.create` messages); see ' +
    'docs/openai-api.md#websocket-mode.',
  request: {
    body: { required: true, content: { 'application/json': { schema: ResponsesRequestSchema } } },
  },
  responses: {
    200: {
      description: 'The response object, or with `stream: true` its SSE events ending in [DONE]',
      content: {
        'application/json': { schema: ResponseObjectSchema },
        'text/event-stream': { schema: z.string() },
      },
    },
    400: openAIError('Invalid request'),
    404: openAIError('Unknown model, or `previous_response_id` not found'),
    501: openAIError(
      'A field the frontend does not support (background, prompt, ...), or `store` with ' +
        '--responses-store none',
    ),
    503: openAIError('No live worker, or shutting down'),
  },
});

export const options: RouteOptions = { pathKey: 'responses', readinessGate: true };

export const handler: RouteHandler<typeof route, AppEnv> = async (c) => {
  const core = c.get('core');
  const request = validateResponsesRequest(c.req.valid('json'));
  const plan = await planResponse(core, request);
  const stream = request.stream === true;
  const call = callContext(c, plan.chat.nvext, { stream });
  if (!stream) return c.json(await runResponse(core, plan, call), 200);
  const { started, events } = await streamResponse(core, plan, call);
  return sseResponse(c, events, {
    eventOf: (e) => (e as ResponsesStreamEvent).event,
    dataOf: (e) => (e as ResponsesStreamEvent).data,
    onDisconnect: () => {
      started.metrics.disconnected();
      call.cancel();
    },
    onEnd: () => {},
  }) as unknown as Response & { _data: never; _status: 200; _format: 'json' };
};
