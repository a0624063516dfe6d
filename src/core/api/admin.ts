/** Schemas of the infrastructure endpoints: health, liveness, busy thresholds. */
import { z } from 'zod';

export const HealthSchema = z.object({
  status: z.enum(['healthy', 'not_ready', 'shutting_down']),
  message: z.string(),
  initial_discovery_complete: z.boolean(),
  initial_discovery_error: z.string().nullable(),
  endpoints: z.array(z.string()).describe('dyn://namespace.component.endpoint of live instances'),
  instances: z.array(z.object({
    namespace: z.string(),
    component: z.string(),
    endpoint: z.string(),
    instance_id: z.number().int().describe(
      'A u64, written as its exact digits (parse it as a big integer above 2^53)',
    ),
    instance_id_hex: z.string(),
    transport: z.record(z.string(), z.unknown()),
  })),
}).meta({ id: 'Health' });

export const LiveSchema = z.object({
  status: z.enum(['live', 'shutting_down']),
  message: z.string(),
}).meta({ id: 'Live' });

const fraction = (name: string) =>
  z.number().min(0, { error: `${name} must be between 0 and 1` }).max(1, {
    error: `${name} must be between 0 and 1`,
  }).nullable().optional();

export const BusyThresholdRequestSchema = z.object({
  model: z.string().min(1, { error: 'model must not be empty' }),
  active_decode_blocks_threshold: fraction('active_decode_blocks_threshold'),
  active_prefill_tokens_threshold: z.number().int({
    error: 'active_prefill_tokens_threshold must be a whole number',
  }).min(0, { error: 'active_prefill_tokens_threshold must not be negative' }).nullable()
    .optional(),
  active_prefill_tokens_threshold_frac: fraction('active_prefill_tokens_threshold_frac'),
}).meta({
  id: 'BusyThresholdRequest',
  description: "Sets the thresholds given; with none given, reads the model's thresholds.",
});

export const THRESHOLD_NAMES = [
  'active_decode_blocks_threshold',
  'active_prefill_tokens_threshold',
  'active_prefill_tokens_threshold_frac',
] as const;

export const BusyThresholdUnsetSchema = z.object({
  model: z.string().min(1, { error: 'model must not be empty' }),
  thresholds: z.array(z.enum(THRESHOLD_NAMES)).optional().describe(
    'Thresholds to unset; all of them when omitted.',
  ),
}).meta({
  id: 'BusyThresholdUnset',
  description: "Unsets a model's thresholds (also over the CLI defaults).",
});

export const BusyThresholdSchema = z.object({
  model: z.string(),
  active_decode_blocks_threshold: z.number().nullable(),
  active_prefill_tokens_threshold: z.number().nullable(),
  active_prefill_tokens_threshold_frac: z.number().nullable(),
}).meta({ id: 'BusyThreshold' });

export const BusyThresholdListSchema = z.object({
  thresholds: z.array(BusyThresholdSchema),
}).meta({ id: 'BusyThresholdList' });

export const AdminErrorSchema = z.object({ error: z.string() }).meta({ id: 'AdminError' });
