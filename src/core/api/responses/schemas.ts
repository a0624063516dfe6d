/**
 * Schemas of the Responses endpoints beside create: retrieval, deletion, input items, input
 * token counts and compaction (`routes/v1/responses/`).
 */
import { z } from 'zod';
import {
  ResponsesInputItemSchema,
  ResponsesRequestSchema,
  ResponsesUsageSchema,
} from '../openai/schemas.ts';

export const ResponseIdParamSchema = z.object({
  id: z.string().min(1).describe('The response id (`resp_...`).'),
});

export const DeletedResponseSchema = z.object({
  id: z.string(),
  object: z.literal('response'),
  deleted: z.literal(true),
}).meta({ id: 'DeletedResponse' });

export const StoredInputItemSchema = z.looseObject({
  id: z.string(),
  type: z.string(),
}).meta({ id: 'ResponseInputItem', description: 'An input item of a stored response.' });

export const InputItemListSchema = z.object({
  object: z.literal('list'),
  data: z.array(StoredInputItemSchema),
  first_id: z.string().nullable(),
  last_id: z.string().nullable(),
  has_more: z.boolean(),
}).meta({ id: 'ResponseInputItemList' });

export const InputItemsQuerySchema = z.object({
  limit: z.coerce.number({ error: 'must be a number' }).int({ error: 'must be a whole number' })
    .min(1, { error: 'must be from 1 to 100' }).max(100, { error: 'must be from 1 to 100' })
    .optional().describe('Items per page, 1 to 100. Default 20.'),
  order: z.enum(['asc', 'desc'], { error: 'must be asc or desc' }).optional()
    .describe('`desc` (newest first, the default) or `asc`.'),
  after: z.string().min(1).optional().describe('List the items after this item id.'),
  include: z.union([z.string(), z.array(z.string())]).optional().describe(
    'Accepted for compatibility: every item is listed whole, so nothing needs including.',
  ),
});

export const InputTokensRequestSchema = ResponsesRequestSchema.meta({
  id: 'ResponsesInputTokensRequest',
  description: 'A Responses request whose prompt tokens are counted; nothing is generated.',
});

export const InputTokensResponseSchema = z.object({
  object: z.literal('response.input_tokens'),
  input_tokens: z.number().int(),
}).meta({ id: 'ResponsesInputTokens' });

export const CompactRequestSchema = z.object({
  model: z.string(),
  input: z.union([z.string(), z.array(ResponsesInputItemSchema)]).nullish(),
  previous_response_id: z.string().nullish(),
  instructions: z.string().nullish(),
}).meta({ id: 'CompactResponseRequest' });

export const CompactResultSchema = z.object({
  id: z.string(),
  object: z.literal('response.compaction'),
  created_at: z.number().int(),
  output: z.array(z.looseObject({ type: z.string() })),
  usage: ResponsesUsageSchema,
}).meta({ id: 'CompactResource' });
