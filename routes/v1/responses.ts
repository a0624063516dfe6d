/** POST /v1/responses: OpenAI's Responses API, translated to a chat completion and back. */
import { createRoute, type RouteHandler, z } from '@hono/zod-openapi';
import { collectChat, startChat } from '../../src/core/pipeline/chat.ts';
import { ResponseObjectSchema, ResponsesRequestSchema } from '../../src/core/protocols/openai.ts';
import { validateResponsesRequest } from '../../src/core/protocols/validate.ts';
import {
  createResponsesStream,
  type ResponsesStreamEvent,
} from '../../src/core/responses/stream.ts';
import { responsesToChat } from '../../src/core/responses/to-chat.ts';
import { chatToResponse } from '../../src/core/responses/to-response.ts';
import { callContext } from '../../src/http/call.ts';
import { openAIError } from '../../src/http/openai-route.ts';
import { sseResponse } from '../../src/http/sse.ts';
import type { AppEnv, RouteOptions } from '../../src/http/types.ts';

export const route = createRoute({
  method: 'post',
  path: '/v1/responses',
  tags: ['OpenAI'],
  summary: 'Create a model response',
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
    404: openAIError('Unknown model'),
    501: openAIError(
      'A field the frontend does not support (background, previous_response_id, ...)',
    ),
    503: openAIError('No live worker, or shutting down'),
  },
});

export const options: RouteOptions = { pathKey: 'responses', readinessGate: true };

export const handler: RouteHandler<typeof route, AppEnv> = async (c) => {
  const core = c.get('core');
  const request = validateResponsesRequest(c.req.valid('json'));
  const chat = responsesToChat(request);
  const stream = request.stream === true;
  const call = { ...callContext(c, chat.nvext, { stream }), endpoint: 'responses' as const };
  const started = await startChat(core, {
    ...chat,
    stream,
    stream_options: stream ? { include_usage: true } : null,
  }, call);
  const newId = () => core.newId();
  if (!stream) {
    return c.json(chatToResponse(await collectChat(started), { request, newId }), 200);
  }
  const events = createResponsesStream(request, { newId, model: started.model }).convert(
    started.chunks,
  );
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
