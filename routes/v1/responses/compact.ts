/** POST /v1/responses/compact: the model summarizes a conversation into a compaction item. */
import { createRoute, type RouteHandler } from '@hono/zod-openapi';
import {
  CompactRequestSchema,
  CompactResultSchema,
} from '../../../src/core/api/responses/schemas.ts';
import { compactConversation } from '../../../src/core/api/responses/extras.ts';
import { callContext } from '../../../src/http/call.ts';
import { INFERENCE_ERRORS, openAIError } from '../../../src/http/openai-route.ts';
import type { AppEnv, RouteOptions } from '../../../src/http/types.ts';

export const route = createRoute({
  method: 'post',
  path: '/v1/responses/compact',
  tags: ['OpenAI'],
  summary: 'Compact a conversation',
  description: 'The model summarizes the conversation (`previous_response_id` context, then ' +
    "`input`). The output keeps the user's messages and adds one `compaction` item, whose " +
    '`encrypted_content` is base64 of the summary (opaque, not encrypted). Pass the output as ' +
    'the next input.',
  request: {
    body: { required: true, content: { 'application/json': { schema: CompactRequestSchema } } },
  },
  responses: {
    200: {
      description: 'The compacted conversation',
      content: { 'application/json': { schema: CompactResultSchema } },
    },
    ...INFERENCE_ERRORS,
    501: openAIError('`previous_response_id` with --responses-store none'),
  },
});

export const options: RouteOptions = { readinessGate: true };

export const handler: RouteHandler<typeof route, AppEnv> = async (c) => {
  const core = c.get('core');
  const call = callContext(c, undefined, { stream: false });
  return c.json(await compactConversation(core, c.req.valid('json'), call), 200);
};
