/**
 * The Model Deployment Card (MDC): what a worker publishes under `v1/mdc/...` about the model it
 * serves. Field names follow Dynamo's `ModelDeploymentCard` so cards written by Dynamo workers
 * parse here and ours parse there. Unknown fields are kept.
 */
import { z } from 'zod';

/** A file the card refers to: a path on the worker's host (or a URL) and its checksum. */
export const CheckedFileSchema = z.looseObject({
  path: z.string(),
  checksum: z.string().optional(),
});
export type CheckedFile = z.infer<typeof CheckedFileSchema>;

export const RuntimeConfigSchema = z.looseObject({
  context_length: z.number().int().positive().nullish(),
  total_kv_blocks: z.number().int().nonnegative().nullish(),
  max_num_seqs: z.number().int().nonnegative().nullish(),
  max_num_batched_tokens: z.number().int().nonnegative().nullish(),
  tool_call_parser: z.string().nullish(),
  reasoning_parser: z.string().nullish(),
  data_parallel_size: z.number().int().positive().nullish(),
  enable_local_indexer: z.boolean().nullish(),
});
export type RuntimeConfig = z.infer<typeof RuntimeConfigSchema>;

export const MODEL_TYPES = [
  'Chat',
  'Completions',
  'Embedding',
  'TensorBased',
  'Prefill',
  'Images',
  'Audios',
  'Videos',
] as const;
export type ModelType = typeof MODEL_TYPES[number];

export const ModelCardSchema = z.looseObject({
  display_name: z.string().min(1),
  slug: z.string().optional(),
  source_path: z.string().nullish(),
  model_info: z.looseObject({ hf_config_json: CheckedFileSchema.optional() }).nullish(),
  tokenizer: z.looseObject({
    hf_tokenizer_json: CheckedFileSchema.optional(),
    tik_token_model: CheckedFileSchema.optional(),
  }).nullish(),
  prompt_formatter: z.looseObject({
    hf_tokenizer_config_json: CheckedFileSchema.optional(),
    hf_chat_template: z.looseObject({ is_custom: z.boolean().optional(), file: CheckedFileSchema })
      .optional(),
  }).nullish(),
  chat_template_file: z.unknown().optional(),
  gen_config: z.looseObject({ hf_generation_config_json: CheckedFileSchema.optional() }).nullish(),
  architectural_max_context_length: z.number().int().positive().nullish(),
  context_length: z.number().int().positive().nullish(),
  kv_cache_block_size: z.number().int().nonnegative(),
  migration_limit: z.number().int().nonnegative().optional(),
  /** Bitflags as Dynamo serialises them: `"Chat | Completions"`. */
  model_type: z.string(),
  model_input: z.enum(['Tokens', 'Text', 'Tensor']),
  worker_type: z.string().nullish(),
  /** Extra names the model is served under (`--served-model-name` beyond the first). */
  aliases: z.array(z.string()).optional(),
  /** A LoRA adapter card (registered under a `v1/mdc/.../{lora slug}` key). */
  lora: z.looseObject({ name: z.string().min(1), max_gpu_lora_count: z.number().nullish() })
    .nullish(),
  user_data: z.unknown().optional(),
  runtime_config: RuntimeConfigSchema.default({}),
});
export type ModelCard = z.infer<typeof ModelCardSchema>;

export function parseModelCard(json: unknown): { ok: true; card: ModelCard } | {
  ok: false;
  error: string;
} {
  const parsed = ModelCardSchema.safeParse(json);
  if (parsed.success) return { ok: true, card: parsed.data };
  const issue = parsed.error.issues[0];
  return { ok: false, error: `${issue?.path.join('.') || 'card'}: ${issue?.message}` };
}

/** `"Chat | Completions"` -> `['Chat', 'Completions']`; unknown names are dropped. */
export function modelTypesOf(card: Pick<ModelCard, 'model_type'>): ModelType[] {
  const names = card.model_type.split('|').map((s) => s.trim());
  return MODEL_TYPES.filter((t) => names.includes(t));
}

export function formatModelTypes(types: readonly ModelType[]): string {
  return types.join(' | ');
}

/** The LoRA adapter a card serves (`lora.name`), or undefined for a base model. */
export function loraNameOf(card: Pick<ModelCard, 'lora'>): string | undefined {
  return card.lora?.name ?? undefined;
}

/** The context length the model serves: the engine's limit, else the card's. */
export function contextLengthOf(card: ModelCard): number | undefined {
  return card.runtime_config.context_length ?? card.context_length ??
    card.architectural_max_context_length ?? undefined;
}

/**
 * What must agree between two workers serving the same model name: the served name, how it
 * is called, its tokenizer and template, its KV block size and context. Two cards with the same
 * fingerprint are interchangeable; a different one means another model (or version).
 */
export function cardFingerprint(card: ModelCard): string {
  return JSON.stringify([
    card.display_name,
    formatModelTypes(modelTypesOf(card)),
    card.model_input,
    card.kv_cache_block_size,
    contextLengthOf(card) ?? null,
    card.tokenizer?.hf_tokenizer_json?.checksum ?? card.tokenizer?.hf_tokenizer_json?.path ?? null,
    card.prompt_formatter?.hf_tokenizer_config_json?.checksum ??
      card.prompt_formatter?.hf_chat_template?.file.checksum ?? null,
  ]);
}

/** `Qwen/Qwen3-0.6B` -> `qwen--qwen3-0_6b`, Dynamo's slug shape. */
export function slugify(name: string): string {
  return name.toLowerCase().replace(/\//g, '--').replace(/[^a-z0-9_-]/g, '_');
}
