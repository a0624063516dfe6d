/**
 * Anthropic Messages API wire types as Zod schemas (reference §7): the request validation the
 * route's validator runs, and the OpenAPI document. Content blocks are typed loosely here
 * (`{type, ...}`) because their rules, with Dynamo's messages, live in `anthropic/to-chat.ts`;
 * the response side names every block shape.
 */
import { z } from 'zod';
import { NvExtSchema } from '../openai/nvext.ts';

export const AnthropicErrorSchema = z.object({
  type: z.literal('error'),
  error: z.object({ type: z.string(), message: z.string() }),
}).meta({ id: 'AnthropicErrorResponse', description: 'Anthropic error envelope' });

// ---------------------------------------------------------------------------------------------
// Requests
// ---------------------------------------------------------------------------------------------

const BLOCK_TYPES = 'text, image, document, tool_use, tool_result, thinking, redacted_thinking';

export const AnthropicContentBlockParamSchema = z.looseObject({
  type: z.string(),
}).meta({
  id: 'AnthropicContentBlockParam',
  description: `A content block: ${BLOCK_TYPES}.`,
});

export const AnthropicTextBlockParamSchema = z.looseObject({
  type: z.literal('text'),
  text: z.string(),
});

export const AnthropicMessageParamSchema = z.looseObject({
  role: z.enum(['user', 'assistant']),
  content: z.union([z.string(), z.array(z.unknown())]).describe(
    `A string, or at least one content block (${BLOCK_TYPES}).`,
  ),
}).meta({ id: 'AnthropicMessageParam' });

export const AnthropicToolSchema = z.looseObject({
  type: z.string().nullish().describe('Absent or `custom`; server tools are refused.'),
  name: z.string(),
  description: z.string().nullish(),
  input_schema: z.record(z.string(), z.unknown()).nullish(),
}).meta({ id: 'AnthropicTool' });

export const AnthropicToolChoiceSchema = z.looseObject({
  type: z.enum(['auto', 'any', 'none', 'tool']),
  name: z.string().nullish(),
  disable_parallel_tool_use: z.boolean().nullish(),
}).meta({ id: 'AnthropicToolChoice' });

export const AnthropicThinkingSchema = z.looseObject({
  type: z.enum(['enabled', 'disabled', 'adaptive']),
  budget_tokens: z.number().int().nullish(),
}).meta({ id: 'AnthropicThinkingConfig' });

const system = () =>
  z.union([z.string(), z.array(AnthropicTextBlockParamSchema)]).nullish().describe(
    'A string or text blocks (joined with newlines): the leading system message.',
  );

export const MessagesRequestSchema = z.looseObject({
  model: z.string(),
  messages: z.array(AnthropicMessageParamSchema).describe('At least one message.'),
  max_tokens: z.number().int().describe('Greater than 0.'),
  system: system(),
  stop_sequences: z.array(z.string()).nullish(),
  stream: z.boolean().nullish(),
  temperature: z.number().min(0).max(2).nullish(),
  top_p: z.number().min(0).max(1).nullish(),
  top_k: z.number().int().min(-1).nullish(),
  tools: z.array(AnthropicToolSchema).nullish(),
  tool_choice: AnthropicToolChoiceSchema.nullish(),
  thinking: AnthropicThinkingSchema.nullish(),
  metadata: z.looseObject({ user_id: z.string().nullish() }).nullish(),
  service_tier: z.string().nullish().describe('Accepted without effect.'),
  cache_control: z.looseObject({}).nullish(),
  nvext: NvExtSchema.nullish(),
}).meta({
  id: 'AnthropicMessagesRequest',
  description: 'Anthropic Messages request, translated to a chat completion.',
});

export const CountTokensRequestSchema = z.looseObject({
  model: z.string(),
  messages: z.array(AnthropicMessageParamSchema),
  system: system(),
  tools: z.array(z.unknown()).nullish(),
  tool_choice: z.unknown().optional(),
  thinking: z.unknown().optional(),
}).meta({ id: 'AnthropicCountTokensRequest' });

// ---------------------------------------------------------------------------------------------
// Responses
// ---------------------------------------------------------------------------------------------

export const AnthropicTextBlockSchema = z.object({
  type: z.literal('text'),
  text: z.string(),
});
export const AnthropicThinkingBlockSchema = z.object({
  type: z.literal('thinking'),
  thinking: z.string(),
  signature: z.string(),
});
export const AnthropicToolUseBlockSchema = z.object({
  type: z.literal('tool_use'),
  id: z.string(),
  name: z.string(),
  input: z.record(z.string(), z.unknown()),
});

export const AnthropicContentBlockSchema = z.discriminatedUnion('type', [
  AnthropicTextBlockSchema,
  AnthropicThinkingBlockSchema,
  AnthropicToolUseBlockSchema,
]).meta({ id: 'AnthropicContentBlock' });

export const AnthropicStopReasonSchema = z.enum([
  'end_turn',
  'max_tokens',
  'stop_sequence',
  'tool_use',
  'refusal',
]);

export const AnthropicUsageSchema = z.object({
  input_tokens: z.number().int(),
  output_tokens: z.number().int(),
  cache_creation_input_tokens: z.number().int().nullish(),
  cache_read_input_tokens: z.number().int().nullish(),
}).meta({ id: 'AnthropicUsage' });

export const AnthropicMessageSchema = z.object({
  id: z.string(),
  type: z.literal('message'),
  role: z.literal('assistant'),
  model: z.string(),
  content: z.array(AnthropicContentBlockSchema),
  stop_reason: AnthropicStopReasonSchema.nullable(),
  stop_sequence: z.string().nullable(),
  usage: AnthropicUsageSchema,
}).meta({ id: 'AnthropicMessage' });

export const CountTokensResponseSchema = z.object({
  input_tokens: z.number().int(),
}).meta({ id: 'AnthropicCountTokensResponse' });

export type AnthropicMessageParam = z.output<typeof AnthropicMessageParamSchema>;
export type AnthropicTool = z.output<typeof AnthropicToolSchema>;
export type AnthropicToolChoice = z.output<typeof AnthropicToolChoiceSchema>;
export type MessagesRequest = z.output<typeof MessagesRequestSchema>;
export type CountTokensRequest = z.output<typeof CountTokensRequestSchema>;
export type AnthropicContentBlock = z.output<typeof AnthropicContentBlockSchema>;
export type AnthropicStopReason = z.output<typeof AnthropicStopReasonSchema>;
export type AnthropicUsage = z.output<typeof AnthropicUsageSchema>;
export type AnthropicMessage = z.output<typeof AnthropicMessageSchema>;
