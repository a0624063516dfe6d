/**
 * Worker wire types (runtime reference §3.7-3.8): the `PreprocessedRequest` the frontend sends a
 * worker and the `Annotated<LLMEngineOutput>` chunks it streams back. Permissive on purpose: every
 * object keeps unknown fields (Dynamo adds fields often), and every optional field accepts `null`
 * as well as absence, because Dynamo's structs serialize `None` as `null`.
 */
import { z } from 'zod';

const u32 = z.number().int().min(0);
/** A u64 id: a JSON number loses precision above 2^53, so strings and BigInts are accepted too. */
const u64 = z.union([z.number().int().min(0), z.bigint(), z.string().regex(/^\d+$/)]);

export const StopConditionsSchema = z.looseObject({
  max_tokens: u32.nullish(),
  stop: z.array(z.string()).nullish(),
  stop_token_ids: z.array(u32).nullish(),
  stop_token_ids_hidden: z.array(u32).nullish(),
  min_tokens: u32.nullish(),
  ignore_eos: z.boolean().nullish(),
  max_thinking_tokens: u32.nullish(),
});

export const GuidedDecodingSchema = z.looseObject({
  json: z.unknown().optional(),
  regex: z.string().nullish(),
  choice: z.array(z.string()).nullish(),
  grammar: z.string().nullish(),
  backend: z.string().nullish(),
  whitespace_pattern: z.string().nullish(),
  structural_tag: z.unknown().optional(),
});

export const SamplingOptionsSchema = z.looseObject({
  n: z.number().int().nullish(),
  best_of: z.number().int().nullish(),
  presence_penalty: z.number().nullish(),
  frequency_penalty: z.number().nullish(),
  repetition_penalty: z.number().nullish(),
  temperature: z.number().nullish(),
  top_p: z.number().nullish(),
  top_k: z.number().int().nullish(),
  min_p: z.number().nullish(),
  use_beam_search: z.boolean().nullish(),
  length_penalty: z.number().nullish(),
  /** i64 in Dynamo; a JS number is exact up to 2^53. */
  seed: z.number().int().nullish(),
  include_stop_str_in_output: z.boolean().nullish(),
  guided_decoding: GuidedDecodingSchema.nullish(),
  detokenize: z.boolean().nullish(),
  allowed_token_ids: z.array(u32).nullish(),
  bad_words_token_ids: z.array(z.array(u32)).nullish(),
});

export const OutputOptionsSchema = z.looseObject({
  logprobs: u32.nullish(),
  prompt_logprobs: u32.nullish(),
  skip_special_tokens: z.boolean().nullish(),
  formatted_prompt: z.boolean().nullish(),
  return_tokens_as_token_ids: z.boolean().nullish(),
});

export const RoutingSchema = z.looseObject({
  backend_instance_id: u64.nullish(),
  prefill_worker_id: u64.nullish(),
  decode_worker_id: u64.nullish(),
  dp_rank: u32.nullish(),
  prefill_dp_rank: u32.nullish(),
  expected_output_tokens: u32.nullish(),
  lora_name: z.string().nullish(),
  cache_salt: z.string().nullish(),
  priority_jump: z.number().nullish(),
  strict_priority: z.boolean().nullish(),
  priority: z.number().int().nullish(),
  allowed_worker_ids: z.array(u64).nullish(),
  routing_constraints: z.unknown().optional(),
});

/**
 * What a worker receives. `stop_conditions`, `sampling_options` and `output_options` are required
 * by classic Dynamo workers (send them always) and defaulted by the newest; here they are optional.
 */
export const PreprocessedRequestSchema = z.looseObject({
  model: z.string(),
  token_ids: z.array(u32),
  stop_conditions: StopConditionsSchema.optional(),
  sampling_options: SamplingOptionsSchema.optional(),
  output_options: OutputOptionsSchema.optional(),
  eos_token_ids: z.array(u32).optional(),
  mdc_sum: z.string().nullish(),
  annotations: z.array(z.string()).optional(),
  routing: RoutingSchema.nullish(),
  router_config_override: z.unknown().optional(),
  prefill_result: z.unknown().optional(),
  bootstrap_info: z.unknown().optional(),
  extra_args: z.unknown().optional(),
  multi_modal_data: z.unknown().optional(),
  mm_routing_info: z.unknown().optional(),
  prompt_embeds: z.string().nullish(),
  request_timestamp_ms: z.number().nullish(),
  /** Present (true) only on health-check canary requests. */
  _HEALTH_CHECK: z.boolean().optional(),
});

/**
 * Why a stream ended. `abort` is Dynamo's alias of `cancelled`; `{error}` is `FinishReason::Error`.
 * The frontend maps eos/stop/cancelled to OpenAI `stop` and length to `length`.
 */
export const FinishReasonSchema = z.union([
  z.enum(['eos', 'length', 'stop', 'cancelled', 'abort', 'content_filter']),
  z.looseObject({ error: z.string() }),
]);

export const CompletionUsageSchema = z.looseObject({
  prompt_tokens: u32,
  completion_tokens: u32,
  total_tokens: u32,
  prompt_tokens_details: z.looseObject({
    cached_tokens: u32.nullish(),
    audio_tokens: u32.nullish(),
  }).nullish(),
  completion_tokens_details: z.looseObject({}).nullish(),
});

export const TopLogprobSchema = z.looseObject({
  rank: u32,
  token_id: u32,
  token: z.string().nullish(),
  logprob: z.number(),
  bytes: z.array(z.number().int()).nullish(),
});

/** One chunk of a worker's response: the NEW tokens since the previous chunk. */
export const LLMEngineOutputSchema = z.looseObject({
  token_ids: z.array(u32),
  tokens: z.array(z.string().nullable()).nullish(),
  text: z.string().nullish(),
  output_type: z.enum(['text', 'image', 'video', 'audio']).optional(),
  cum_log_probs: z.number().nullish(),
  log_probs: z.array(z.number()).nullish(),
  top_logprobs: z.array(z.array(TopLogprobSchema)).nullish(),
  finish_reason: FinishReasonSchema.nullish(),
  stop_reason: z.union([z.string(), u32]).nullish(),
  index: u32.nullish(),
  completion_usage: CompletionUsageSchema.nullish(),
  disaggregated_params: z.unknown().optional(),
  extra_args: z.unknown().optional(),
  engine_data: z.unknown().optional(),
});

/** The stream item envelope; an error item is `{"event":"error","comment":["<msg>"]}`. */
export const AnnotatedLLMEngineOutputSchema = z.looseObject({
  data: LLMEngineOutputSchema.nullish(),
  id: z.string().nullish(),
  event: z.string().nullish(),
  comment: z.array(z.string()).nullish(),
  error: z.unknown().optional(),
});

export type StopConditions = z.infer<typeof StopConditionsSchema>;
export type SamplingOptions = z.infer<typeof SamplingOptionsSchema>;
export type OutputOptions = z.infer<typeof OutputOptionsSchema>;
export type Routing = z.infer<typeof RoutingSchema>;
export type PreprocessedRequest = z.infer<typeof PreprocessedRequestSchema>;
export type FinishReason = z.infer<typeof FinishReasonSchema>;
export type CompletionUsage = z.infer<typeof CompletionUsageSchema>;
export type LLMEngineOutput = z.infer<typeof LLMEngineOutputSchema>;
export type AnnotatedLLMEngineOutput = z.infer<typeof AnnotatedLLMEngineOutputSchema>;

/**
 * What the frontend sends a Tokens-input embedding worker: one token-id list per input.
 * The worker answers with one item whose `data` is `EmbeddingWorkerOutput`.
 */
export const EmbeddingWorkerRequestSchema = z.looseObject({
  model: z.string(),
  token_ids: z.array(z.array(u32)).min(1),
  dimensions: z.number().int().positive().nullish(),
});
export type EmbeddingWorkerRequest = z.infer<typeof EmbeddingWorkerRequestSchema>;

export const EmbeddingWorkerOutputSchema = z.looseObject({
  /** Base64 of little-endian float32 values, one per input, in order. */
  embeddings: z.array(z.string()),
  prompt_tokens: z.number().int().nonnegative(),
});
export type EmbeddingWorkerOutput = z.infer<typeof EmbeddingWorkerOutputSchema>;
