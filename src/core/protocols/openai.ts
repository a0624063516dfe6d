/** OpenAI-surface wire types as Zod schemas (request validation and the OpenAPI document). */
import { z } from 'zod';

export const OpenAIErrorSchema = z.object({
  error: z.object({
    message: z.string(),
    type: z.string(),
    param: z.string().nullable(),
    code: z.string().nullable(),
  }),
}).meta({ id: 'ErrorResponse', description: 'OpenAI error envelope' });

export const ModelSchema = z.object({
  id: z.string(),
  object: z.literal('model'),
  created: z.number().int(),
  owned_by: z.string(),
  context_window: z.number().int().optional(),
}).meta({ id: 'Model' });

export const ModelListSchema = z.object({
  object: z.literal('list'),
  data: z.array(ModelSchema),
}).meta({ id: 'ModelList' });

export type OpenAIModel = z.infer<typeof ModelSchema>;
