/**
 * OpenAI-surface wire types as Zod schemas: request validation and the OpenAPI document.
 *
 * Requests carry OpenAI's fields plus Dynamo's root-level extensions (reference §6.3) and `nvext`.
 * Optional fields accept `null` as well as absence, as OpenAI's SDKs and Dynamo's serde do. The
 * top-level request objects keep unknown keys (`looseObject`) so that `validate.ts` can refuse
 * them with Dynamo's "Unsupported parameter(s)" message, or drop them when configured to; nested
 * objects the chat template may read (messages, tools) keep unknown keys too. Value ranges are
 * expressed here; cross-field rules live in `validate.ts`.
 */
import { z } from 'zod';
import {
  arrayOf,
  between,
  intAtLeast,
  intBetween,
  nonEmptyString,
  u32,
  U32_MAX,
} from './_fields.ts';
import { NvExtSchema } from './nvext.ts';

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

// ---------------------------------------------------------------------------------------------
// Shared request fields
// ---------------------------------------------------------------------------------------------

/** The limits of §4.1 and §4.2, exported for `validate.ts`, docs and tests. */
export const LIMITS = {
  maxN: 128,
  maxTotalChoices: 128,
  maxStopSequences: 32,
  maxStopLength: 1024,
  maxTools: 1536,
  maxToolNameLength: 96,
  maxTopLogprobs: 20,
  maxCompletionLogprobs: 5,
  maxBestOf: 20,
  maxSuffixLength: 10000,
  minPromptEmbedsBytes: 100,
  maxPromptEmbedsBytes: 10 * 1024 * 1024,
} as const;

/** Tool and function names: 1-96 characters of `[A-Za-z0-9_-]`. */
export const TOOL_NAME = /^[A-Za-z0-9_-]{1,96}$/;

const toolName = () =>
  z.string().regex(TOOL_NAME, {
    error: (issue) =>
      `must be 1 to ${LIMITS.maxToolNameLength} characters of a-z, A-Z, 0-9, _ and - (got ${
        JSON.stringify(String(issue.input).slice(0, 100))
      })`,
  });

const temperature = () =>
  between(0, 2).nullish().describe('Sampling temperature, 0 to 2. Default 1.');
const topP = () => between(0, 1).nullish().describe('Nucleus sampling mass, 0 to 1. Default 1.');
const penalty = () => between(-2, 2).nullish();
const maxTokens = () => intBetween(1, U32_MAX).nullish();
const n = () => intBetween(1, LIMITS.maxN).nullish().describe('Choices to generate, 1 to 128.');
const logitBias = () =>
  z.record(z.string(), between(-100, 100)).nullish().describe(
    'Token id (as a string) to bias, -100 to 100.',
  );
const seed = () =>
  z.number().int({ error: 'must be an integer within ±(2^53 - 1)' }).nullish().describe(
    'i64 in Dynamo; JSON numbers are exact only within ±(2^53 - 1), so larger seeds are refused.',
  );
const metadata = () => z.record(z.string(), z.string()).nullish();

const stopString = () =>
  nonEmptyString().max(LIMITS.maxStopLength, {
    error: (issue) =>
      `must be at most ${LIMITS.maxStopLength} characters (got ${
        String((issue.input as string).length)
      })`,
  });

/** Strings only, as OpenAI and Dynamo define it: token ids go in `stop_token_ids`. */
export const StopSchema = z.union([
  stopString(),
  arrayOf(stopString(), { min: 1, max: LIMITS.maxStopSequences }),
]).meta({
  id: 'Stop',
  description: 'A stop string or up to 32 of them, each 1 to 1024 characters.',
});

export const StreamOptionsSchema = z.object({
  include_usage: z.boolean().nullish().describe('Send a final usage-only chunk.'),
  continuous_usage_stats: z.boolean().nullish().describe('Cumulative usage on every chunk.'),
  include_obfuscation: z.boolean().nullish().describe('Accepted; has no effect.'),
}).meta({ id: 'StreamOptions' });

/** Dynamo's root-level extensions (`CommonExt`, §6.3) plus the pass-through extras of §4.1. */
const commonExtensions = {
  ignore_eos: z.boolean().nullish().describe('Generate until max tokens.'),
  min_tokens: u32().nullish().describe('Suppress stop conditions until this many tokens.'),
  top_k: intBetween(-1, 2147483647).nullish().describe('Top-k sampling; -1 disables.'),
  min_p: between(0, 1).nullish(),
  repetition_penalty: between(0, 2, { exclusiveMin: true }).nullish().describe(
    'Repetition penalty in (0, 2].',
  ),
  include_stop_str_in_output: z.boolean().nullish(),
  guided_json: z.unknown().optional().describe('JSON schema (object or string) to constrain to.'),
  guided_regex: z.string().nullish(),
  guided_grammar: z.string().nullish(),
  guided_choice: arrayOf(z.string(), { min: 1 }).nullish(),
  guided_decoding_backend: z.string().nullish(),
  skip_special_tokens: z.boolean().nullish(),
  return_tokens_as_token_ids: z.boolean().nullish().describe(
    'Logprob tokens are printed as `token_id:<id>`.',
  ),
  cache_salt: z.string().nullish().describe('Prefix-cache isolation salt.'),
  stop_token_ids: z.array(u32()).nullish(),
  detokenize: z.boolean().nullish(),
  allowed_token_ids: z.array(u32()).nullish(),
  bad_words_token_ids: z.array(z.array(u32())).nullish(),
  nvext: NvExtSchema.nullish(),
};

// ---------------------------------------------------------------------------------------------
// Chat completions: messages and tools
// ---------------------------------------------------------------------------------------------

export const ChatTextPartSchema = z.looseObject({
  type: z.literal('text'),
  text: z.string(),
}).meta({ id: 'ChatTextPart' });

export const ChatImageUrlPartSchema = z.looseObject({
  type: z.literal('image_url'),
  image_url: z.looseObject({
    url: z.string(),
    detail: z.enum(['auto', 'low', 'high']).nullish(),
  }),
}).meta({ id: 'ChatImageUrlPart' });

export const ChatVideoUrlPartSchema = z.looseObject({
  type: z.literal('video_url'),
  video_url: z.looseObject({ url: z.string() }),
}).meta({ id: 'ChatVideoUrlPart', description: 'Dynamo extension' });

export const ChatInputAudioPartSchema = z.looseObject({
  type: z.literal('input_audio'),
  input_audio: z.looseObject({ data: z.string(), format: z.string() }),
}).meta({ id: 'ChatInputAudioPart' });

export const ChatFilePartSchema = z.looseObject({
  type: z.literal('file'),
  file: z.looseObject({
    filename: z.string().nullish(),
    file_data: z.string().nullish(),
    file_id: z.string().nullish().describe('Refused: this server has no Files API.'),
  }),
}).meta({
  id: 'ChatFilePart',
  description: 'A PDF or text file; its text reaches the model (docs/preprocessing.md, "Files").',
});

export const ChatRefusalPartSchema = z.looseObject({
  type: z.literal('refusal'),
  refusal: z.string(),
}).meta({ id: 'ChatRefusalPart' });

export const ChatUserContentPartSchema = z.discriminatedUnion('type', [
  ChatTextPartSchema,
  ChatImageUrlPartSchema,
  ChatVideoUrlPartSchema,
  ChatInputAudioPartSchema,
  ChatFilePartSchema,
]).meta({ id: 'ChatUserContentPart' });

const textContent = () => z.union([z.string(), z.array(ChatTextPartSchema)]);

export const ChatToolCallSchema = z.looseObject({
  id: z.string(),
  type: z.literal('function').nullish(),
  function: z.looseObject({
    name: z.string(),
    arguments: z.string().describe('JSON object text, or empty.'),
  }),
}).meta({ id: 'ChatToolCall' });

export const ChatSystemMessageSchema = z.looseObject({
  role: z.literal('system'),
  content: textContent(),
  name: z.string().nullish(),
}).meta({ id: 'ChatSystemMessage' });

export const ChatDeveloperMessageSchema = z.looseObject({
  role: z.literal('developer'),
  content: textContent(),
  name: z.string().nullish(),
}).meta({ id: 'ChatDeveloperMessage' });

export const ChatUserMessageSchema = z.looseObject({
  role: z.literal('user'),
  content: z.union([z.string(), z.array(ChatUserContentPartSchema)]),
  name: z.string().nullish(),
}).meta({ id: 'ChatUserMessage' });

export const ChatAssistantMessageSchema = z.looseObject({
  role: z.literal('assistant'),
  content: z.union([z.string(), z.array(z.union([ChatTextPartSchema, ChatRefusalPartSchema]))])
    .nullish(),
  refusal: z.string().nullish(),
  name: z.string().nullish(),
  tool_calls: z.array(ChatToolCallSchema).nullish(),
  reasoning_content: z.string().nullish().describe('Prior reasoning, for templates that use it.'),
}).meta({ id: 'ChatAssistantMessage' });

export const ChatToolMessageSchema = z.looseObject({
  role: z.literal('tool'),
  content: textContent(),
  tool_call_id: z.string(),
}).meta({ id: 'ChatToolMessage' });

export const ChatMessageSchema = z.discriminatedUnion('role', [
  ChatSystemMessageSchema,
  ChatDeveloperMessageSchema,
  ChatUserMessageSchema,
  ChatAssistantMessageSchema,
  ChatToolMessageSchema,
]).meta({ id: 'ChatMessage' });

export const FunctionDefinitionSchema = z.looseObject({
  name: toolName(),
  description: z.string().nullish(),
  parameters: z.record(z.string(), z.unknown()).nullish().describe('JSON schema.'),
  strict: z.boolean().nullish(),
}).meta({ id: 'FunctionDefinition' });

export const ChatToolSchema = z.looseObject({
  type: z.literal('function'),
  function: FunctionDefinitionSchema,
}).meta({ id: 'ChatTool' });

export const ChatToolChoiceSchema = z.union([
  z.enum(['none', 'auto', 'required']),
  z.object({
    type: z.literal('function'),
    function: z.object({ name: z.string() }),
  }),
]).meta({ id: 'ChatToolChoice' });

export const ResponseFormatSchema = z.discriminatedUnion('type', [
  z.object({ type: z.literal('text') }),
  z.object({ type: z.literal('json_object') }),
  z.object({
    type: z.literal('json_schema'),
    json_schema: z.looseObject({
      name: z.string(),
      description: z.string().nullish(),
      schema: z.unknown().optional(),
      strict: z.boolean().nullish(),
    }),
  }),
]).meta({ id: 'ResponseFormat' });

// ---------------------------------------------------------------------------------------------
// Requests
// ---------------------------------------------------------------------------------------------

export const ChatCompletionRequestSchema = z.looseObject({
  model: z.string(),
  messages: z.array(ChatMessageSchema).describe('At least one message.'),
  temperature: temperature(),
  top_p: topP(),
  n: n(),
  stream: z.boolean().nullish(),
  stream_options: StreamOptionsSchema.nullish(),
  stop: StopSchema.nullish(),
  max_tokens: maxTokens().describe('Deprecated by OpenAI: use max_completion_tokens.'),
  max_completion_tokens: maxTokens(),
  presence_penalty: penalty(),
  frequency_penalty: penalty(),
  logit_bias: logitBias(),
  logprobs: z.boolean().nullish(),
  top_logprobs: intBetween(0, LIMITS.maxTopLogprobs).nullish(),
  seed: seed(),
  user: z.string().nullish(),
  tools: arrayOf(ChatToolSchema, { max: LIMITS.maxTools }).nullish(),
  tool_choice: ChatToolChoiceSchema.nullish(),
  parallel_tool_calls: z.boolean().nullish(),
  response_format: ResponseFormatSchema.nullish(),
  reasoning_effort: z.enum(['none', 'minimal', 'low', 'medium', 'high', 'xhigh', 'max'])
    .nullish(),
  metadata: metadata(),
  store: z.boolean().nullish(),
  service_tier: z.string().nullish(),
  modalities: z.array(z.string()).nullish(),
  verbosity: z.string().nullish(),
  audio: z.unknown().optional(),
  prediction: z.unknown().optional(),
  web_search_options: z.unknown().optional(),
  safety_identifier: z.string().nullish(),
  prompt_cache_key: z.string().nullish(),
  prompt_cache_retention: z.string().nullish(),
  function_call: z.unknown().optional().describe('Deprecated: answered with 501.'),
  functions: z.unknown().optional().describe('Deprecated: answered with 501.'),
  chat_template_args: z.record(z.string(), z.unknown()).nullish().describe(
    'Extra chat template variables; `chat_template` itself is refused.',
  ),
  media_io_kwargs: z.record(z.string(), z.unknown()).nullish(),
  mm_processor_kwargs: z.record(z.string(), z.unknown()).nullish(),
  ...commonExtensions,
}).meta({
  id: 'CreateChatCompletionRequest',
  description: 'OpenAI chat completion request plus Dynamo extensions.',
});

const tokenIds = () => arrayOf(u32(), { min: 1 });

// Token ids first: zod checks every item of an array branch, so a 15k-token prompt tried against
// "array of strings" first made 15k issues before matching (35 ms a request; 2-4 ms this way).
export const PromptSchema = z.union([
  tokenIds(),
  nonEmptyString(),
  arrayOf(tokenIds(), { min: 1 }),
  arrayOf(nonEmptyString(), { min: 1 }),
]).meta({
  id: 'Prompt',
  description: 'A string, strings, token ids, or lists of token ids; none empty.',
});

export const CompletionRequestSchema = z.looseObject({
  model: z.string(),
  prompt: PromptSchema.nullish(),
  prompt_embeds: z.string().nullish().describe(
    'Base64 of a torch-saved tensor, 100 B to 10 MiB decoded; replaces prompt.',
  ),
  suffix: z.string().max(LIMITS.maxSuffixLength, {
    error: (issue) =>
      `must be at most ${LIMITS.maxSuffixLength} characters (got ${
        typeof issue.input === 'string' ? issue.input.length : '?'
      })`,
  }).nullish(),
  max_tokens: maxTokens(),
  temperature: temperature(),
  top_p: topP(),
  n: n(),
  best_of: intBetween(0, LIMITS.maxBestOf).nullish(),
  stream: z.boolean().nullish(),
  stream_options: StreamOptionsSchema.nullish(),
  logprobs: intBetween(0, LIMITS.maxCompletionLogprobs).nullish(),
  echo: z.boolean().nullish(),
  stop: StopSchema.nullish(),
  presence_penalty: penalty(),
  frequency_penalty: penalty(),
  logit_bias: logitBias(),
  seed: seed(),
  user: z.string().nullish(),
  ...commonExtensions,
}).meta({
  id: 'CreateCompletionRequest',
  description: 'OpenAI completion request plus Dynamo extensions.',
});

export const EmbeddingRequestSchema = z.object({
  model: z.string(),
  input: z.union([
    z.string(),
    arrayOf(z.string(), { min: 1, max: 2048 }),
    arrayOf(u32(), { min: 1, max: 2048 }),
    arrayOf(arrayOf(u32(), { min: 1 }), { min: 1, max: 2048 }),
  ]),
  encoding_format: z.enum(['float', 'base64']).nullish(),
  dimensions: intAtLeast(1).nullish(),
  user: z.string().nullish(),
  nvext: NvExtSchema.nullish(),
}).meta({
  id: 'CreateEmbeddingRequest',
  description: 'OpenAI embedding request; unknown fields are ignored.',
});

// Responses API request ------------------------------------------------------------------------

export const ResponsesInputContentSchema = z.discriminatedUnion('type', [
  z.looseObject({ type: z.literal('input_text'), text: z.string() }),
  z.looseObject({
    type: z.literal('input_image'),
    image_url: z.string().nullish(),
    file_id: z.string().nullish(),
    detail: z.enum(['auto', 'low', 'high']).nullish(),
  }),
  z.looseObject({ type: z.literal('input_video'), video: z.string() }),
  z.looseObject({ type: z.literal('input_audio') }),
  z.looseObject({
    type: z.literal('input_file'),
    file_data: z.string().nullish().describe('The file: a base64 data URL, or bare base64.'),
    filename: z.string().nullish(),
    file_id: z.string().nullish().describe('Refused: this server has no Files API.'),
    file_url: z.string().nullish().describe('Refused: this server does not fetch files.'),
  }).meta({
    id: 'ResponsesInputFile',
    description: 'A PDF or text file; its text reaches the model (docs/preprocessing.md, "Files").',
  }),
  z.looseObject({ type: z.literal('output_text'), text: z.string() }),
  z.looseObject({ type: z.literal('refusal'), refusal: z.string() }),
]).meta({ id: 'ResponsesInputContent' });

export const ResponsesMessageItemSchema = z.looseObject({
  type: z.literal('message').optional(),
  role: z.enum(['user', 'assistant', 'system', 'developer']),
  content: z.union([z.string(), z.array(ResponsesInputContentSchema)]),
  id: z.string().nullish(),
  status: z.string().nullish(),
}).meta({ id: 'ResponsesMessageItem' });

export const ResponsesFunctionCallItemSchema = z.looseObject({
  type: z.literal('function_call'),
  call_id: z.string(),
  name: z.string(),
  arguments: z.string(),
  id: z.string().nullish(),
  status: z.string().nullish(),
}).meta({ id: 'ResponsesFunctionCallItem' });

export const ResponsesFunctionCallOutputItemSchema = z.looseObject({
  type: z.literal('function_call_output'),
  call_id: z.string(),
  output: z.union([z.string(), z.array(ResponsesInputContentSchema)]),
  id: z.string().nullish(),
  status: z.string().nullish(),
}).meta({ id: 'ResponsesFunctionCallOutputItem' });

const KNOWN_ITEM_TYPES = new Set(['message', 'function_call', 'function_call_output']);

/** Item references, reasoning and hosted-tool items: accepted and skipped by the translation. */
export const ResponsesOtherItemSchema = z.looseObject({
  type: z.string().refine((t) => !KNOWN_ITEM_TYPES.has(t), {
    error: 'must be a supported item type',
    abort: true,
  }),
}).meta({ id: 'ResponsesOtherItem' });

export const ResponsesInputItemSchema = z.union([
  ResponsesMessageItemSchema,
  ResponsesFunctionCallItemSchema,
  ResponsesFunctionCallOutputItemSchema,
  ResponsesOtherItemSchema,
]).meta({ id: 'ResponsesInputItem' });

export const ResponsesFunctionToolSchema = z.looseObject({
  type: z.literal('function'),
  name: toolName(),
  description: z.string().nullish(),
  parameters: z.record(z.string(), z.unknown()).nullish(),
  strict: z.boolean().nullish(),
}).meta({ id: 'ResponsesFunctionTool' });

const KNOWN_TOOL_TYPES = new Set(['function']);

export const ResponsesToolSchema = z.union([
  ResponsesFunctionToolSchema,
  z.looseObject({
    type: z.string().refine((t) => !KNOWN_TOOL_TYPES.has(t), {
      error: 'must be a supported tool type',
      abort: true,
    }),
  }),
]).meta({ id: 'ResponsesTool', description: 'Only function tools reach the model.' });

export const ResponsesToolChoiceSchema = z.union([
  z.enum(['none', 'auto', 'required']),
  z.looseObject({ type: z.literal('function'), name: z.string() }),
  z.looseObject({ type: z.string() }),
]).meta({ id: 'ResponsesToolChoice' });

export const ResponsesTextFormatSchema = z.discriminatedUnion('type', [
  z.object({ type: z.literal('text') }),
  z.object({ type: z.literal('json_object') }),
  z.looseObject({
    type: z.literal('json_schema'),
    name: z.string(),
    schema: z.unknown().optional(),
    description: z.string().nullish(),
    strict: z.boolean().nullish(),
  }),
]).meta({ id: 'ResponsesTextFormat' });

export const ResponsesRequestSchema = z.object({
  model: z.string(),
  input: z.union([z.string(), z.array(ResponsesInputItemSchema)]).optional(),
  instructions: z.string().nullish(),
  max_output_tokens: maxTokens(),
  temperature: temperature(),
  top_p: topP(),
  top_logprobs: intBetween(0, U32_MAX).nullish().describe('Capped at 20.'),
  metadata: metadata(),
  tools: z.array(ResponsesToolSchema).nullish(),
  tool_choice: ResponsesToolChoiceSchema.nullish(),
  parallel_tool_calls: z.boolean().nullish(),
  text: z.looseObject({
    format: ResponsesTextFormatSchema.nullish(),
    verbosity: z.string().nullish(),
  }).nullish(),
  stream: z.boolean().nullish(),
  stream_options: z.looseObject({}).nullish(),
  store: z.boolean().nullish().describe(
    'Keep the response for retrieval and continuation (default true unless the frontend runs ' +
      'with --responses-store none, where true is answered with 501).',
  ),
  background: z.boolean().nullish().describe('true is answered with 501.'),
  previous_response_id: z.string().nullish().describe(
    'Continue a stored response: its context and output come before this input.',
  ),
  prompt: z.unknown().optional().describe('Answered with 501.'),
  max_tool_calls: z.number().nullish().describe('Answered with 501.'),
  reasoning: z.looseObject({}).nullish(),
  include: z.array(z.string()).nullish(),
  truncation: z.string().nullish(),
  service_tier: z.string().nullish(),
  user: z.string().nullish(),
  safety_identifier: z.string().nullish(),
  prompt_cache_key: z.string().nullish(),
  prompt_cache_retention: z.string().nullish(),
  conversation: z.unknown().optional().describe('Answered with 501: use previous_response_id.'),
  nvext: NvExtSchema.nullish(),
}).meta({
  id: 'CreateResponse',
  description: 'OpenAI Responses request, served by translation to chat; unknown fields ignored.',
});

// ---------------------------------------------------------------------------------------------
// Responses (wire output)
// ---------------------------------------------------------------------------------------------

export const UsageSchema = z.object({
  prompt_tokens: z.number().int(),
  completion_tokens: z.number().int(),
  total_tokens: z.number().int(),
  prompt_tokens_details: z.object({
    cached_tokens: z.number().int().nullish(),
    audio_tokens: z.number().int().nullish(),
  }).nullish(),
  completion_tokens_details: z.object({
    reasoning_tokens: z.number().int().nullish(),
    audio_tokens: z.number().int().nullish(),
    accepted_prediction_tokens: z.number().int().nullish(),
    rejected_prediction_tokens: z.number().int().nullish(),
  }).nullish(),
}).meta({ id: 'CompletionUsage' });

export const FinishReasonSchema = z.enum([
  'stop',
  'length',
  'tool_calls',
  'content_filter',
  'function_call',
]).meta({ id: 'FinishReason' });

export const TopLogprobSchema = z.object({
  token: z.string(),
  logprob: z.number(),
  bytes: z.array(z.number().int()).nullable(),
});

export const TokenLogprobSchema = z.object({
  token: z.string(),
  logprob: z.number(),
  bytes: z.array(z.number().int()).nullable(),
  top_logprobs: z.array(TopLogprobSchema),
}).meta({ id: 'ChatTokenLogprob' });

export const ChatLogprobsSchema = z.object({
  content: z.array(TokenLogprobSchema).nullable(),
  refusal: z.array(TokenLogprobSchema).nullable(),
}).meta({ id: 'ChatLogprobs' });

/** Response-side nvext (returned only when asked for through `nvext.extra_fields`). */
export const NvExtResponseSchema = z.looseObject({
  worker_id: z.looseObject({
    prefill_worker_id: z.number().nullish(),
    prefill_dp_rank: z.number().nullish(),
    decode_worker_id: z.number().nullish(),
    decode_dp_rank: z.number().nullish(),
  }).nullish(),
  timing: z.looseObject({}).nullish(),
  token_ids: z.array(z.number().int()).nullish(),
  routed_experts: z.unknown().optional(),
  engine_data: z.unknown().optional(),
  stop_reason: z.unknown().optional(),
}).meta({ id: 'NvExtResponse' });

export const ChatResponseMessageSchema = z.looseObject({
  role: z.literal('assistant'),
  content: z.string().nullable(),
  refusal: z.string().nullable(),
  tool_calls: z.array(z.object({
    id: z.string(),
    type: z.literal('function'),
    function: z.object({ name: z.string(), arguments: z.string() }),
  })).optional(),
  reasoning_content: z.string().nullish().describe(
    'Named by DYN_REASONING_FIELD_NAME (reasoning_content by default).',
  ),
}).meta({ id: 'ChatResponseMessage' });

export const ChatCompletionResponseSchema = z.object({
  id: z.string(),
  object: z.literal('chat.completion'),
  created: z.number().int(),
  model: z.string(),
  choices: z.array(z.object({
    index: z.number().int(),
    message: ChatResponseMessageSchema,
    finish_reason: FinishReasonSchema.nullable(),
    logprobs: ChatLogprobsSchema.nullable(),
  })),
  usage: UsageSchema.optional(),
  system_fingerprint: z.string().nullish(),
  service_tier: z.string().nullish(),
  nvext: NvExtResponseSchema.optional(),
}).meta({ id: 'CreateChatCompletionResponse' });

export const ChatToolCallDeltaSchema = z.object({
  index: z.number().int(),
  id: z.string().optional(),
  type: z.literal('function').optional(),
  function: z.object({
    name: z.string().optional(),
    arguments: z.string().optional(),
  }).optional(),
}).meta({ id: 'ChatToolCallDelta' });

export const ChatCompletionChunkSchema = z.object({
  id: z.string(),
  object: z.literal('chat.completion.chunk'),
  created: z.number().int(),
  model: z.string(),
  choices: z.array(z.object({
    index: z.number().int(),
    delta: z.looseObject({
      role: z.literal('assistant').optional(),
      content: z.string().nullish(),
      refusal: z.string().nullish(),
      tool_calls: z.array(ChatToolCallDeltaSchema).optional(),
      reasoning_content: z.string().nullish(),
    }),
    finish_reason: FinishReasonSchema.nullable(),
    logprobs: ChatLogprobsSchema.nullish(),
  })),
  usage: UsageSchema.nullish(),
  system_fingerprint: z.string().nullish(),
  service_tier: z.string().nullish(),
  nvext: NvExtResponseSchema.optional(),
}).meta({ id: 'CreateChatCompletionStreamResponse' });

export const CompletionLogprobsSchema = z.object({
  tokens: z.array(z.string()),
  token_logprobs: z.array(z.number().nullable()),
  top_logprobs: z.array(z.record(z.string(), z.number()).nullable()),
  text_offset: z.array(z.number().int()),
}).meta({ id: 'CompletionLogprobs' });

const completionChoice = (finishReason: z.ZodType) =>
  z.object({
    index: z.number().int(),
    text: z.string(),
    logprobs: CompletionLogprobsSchema.nullable(),
    finish_reason: finishReason,
  });

const COMPLETION_FINISH = z.enum(['stop', 'length', 'content_filter']);

export const CompletionResponseSchema = z.object({
  id: z.string(),
  object: z.literal('text_completion'),
  created: z.number().int(),
  model: z.string(),
  choices: z.array(completionChoice(COMPLETION_FINISH.nullable())),
  usage: UsageSchema.optional(),
  system_fingerprint: z.string().nullish(),
  nvext: NvExtResponseSchema.optional(),
}).meta({ id: 'CreateCompletionResponse' });

/** A streamed completion chunk: a `text_completion` object whose `finish_reason` may be null. */
export const CompletionChunkSchema = z.object({
  id: z.string(),
  object: z.literal('text_completion'),
  created: z.number().int(),
  model: z.string(),
  choices: z.array(completionChoice(COMPLETION_FINISH.nullable())),
  usage: UsageSchema.nullish(),
  system_fingerprint: z.string().nullish(),
  nvext: NvExtResponseSchema.optional(),
}).meta({ id: 'CompletionChunk' });

export const EmbeddingSchema = z.object({
  object: z.literal('embedding'),
  index: z.number().int(),
  embedding: z.union([z.array(z.number()), z.string()]).describe(
    'Floats, or base64 of little-endian float32 when encoding_format is base64.',
  ),
}).meta({ id: 'Embedding' });

export const EmbeddingResponseSchema = z.object({
  object: z.literal('list'),
  data: z.array(EmbeddingSchema),
  model: z.string(),
  usage: z.object({ prompt_tokens: z.number().int(), total_tokens: z.number().int() }),
}).meta({ id: 'CreateEmbeddingResponse' });

// Responses API object -------------------------------------------------------------------------

export const ResponsesOutputTextSchema = z.object({
  type: z.literal('output_text'),
  text: z.string(),
  annotations: z.array(z.unknown()),
  logprobs: z.array(z.unknown()),
}).meta({ id: 'ResponsesOutputText' });

export const ResponsesOutputMessageSchema = z.object({
  type: z.literal('message'),
  id: z.string(),
  role: z.literal('assistant'),
  status: z.enum(['in_progress', 'completed', 'incomplete']),
  content: z.array(ResponsesOutputTextSchema),
}).meta({ id: 'ResponsesOutputMessage' });

export const ResponsesOutputFunctionCallSchema = z.object({
  type: z.literal('function_call'),
  id: z.string(),
  call_id: z.string(),
  name: z.string(),
  arguments: z.string(),
  status: z.enum(['in_progress', 'completed', 'incomplete']),
}).meta({ id: 'ResponsesOutputFunctionCall' });

export const ResponsesReasoningTextSchema = z.object({
  type: z.literal('reasoning_text'),
  text: z.string(),
}).meta({ id: 'ResponsesReasoningText' });

/** The model's reasoning, parsed off its answer by the card's reasoning parser. */
export const ResponsesOutputReasoningSchema = z.object({
  type: z.literal('reasoning'),
  id: z.string(),
  summary: z.array(z.unknown()),
  content: z.array(ResponsesReasoningTextSchema),
  status: z.enum(['in_progress', 'completed', 'incomplete']),
}).meta({ id: 'ResponsesOutputReasoning' });

export const ResponsesOutputItemSchema = z.discriminatedUnion('type', [
  ResponsesOutputMessageSchema,
  ResponsesOutputFunctionCallSchema,
  ResponsesOutputReasoningSchema,
]).meta({ id: 'ResponsesOutputItem' });

export const ResponsesUsageSchema = z.object({
  input_tokens: z.number().int(),
  input_tokens_details: z.object({
    cached_tokens: z.number().int(),
    cache_write_tokens: z.number().int(),
  }),
  output_tokens: z.number().int(),
  output_tokens_details: z.object({ reasoning_tokens: z.number().int() }),
  total_tokens: z.number().int(),
}).meta({ id: 'ResponsesUsage' });

export const ResponsesErrorSchema = z.object({
  code: z.enum(['server_error', 'rate_limit_exceeded', 'invalid_prompt']),
  message: z.string(),
}).meta({ id: 'ResponsesError' });

export const ResponseObjectSchema = z.object({
  id: z.string(),
  object: z.literal('response'),
  created_at: z.number().int(),
  completed_at: z.number().int().nullable(),
  status: z.enum(['completed', 'failed', 'in_progress', 'cancelled', 'queued', 'incomplete']),
  model: z.string(),
  output: z.array(ResponsesOutputItemSchema),
  usage: ResponsesUsageSchema.nullable(),
  error: ResponsesErrorSchema.nullable(),
  incomplete_details: z.object({ reason: z.string() }).nullable(),
  instructions: z.string().nullable(),
  max_output_tokens: z.number().int().nullable(),
  max_tool_calls: z.null(),
  background: z.boolean(),
  frequency_penalty: z.number(),
  presence_penalty: z.number(),
  metadata: z.record(z.string(), z.string()),
  parallel_tool_calls: z.boolean(),
  store: z.boolean(),
  temperature: z.number(),
  top_p: z.number(),
  top_logprobs: z.number().int(),
  text: z.looseObject({ format: z.looseObject({ type: z.string() }) }),
  tool_choice: z.union([z.string(), z.looseObject({ type: z.string() })]),
  tools: z.array(z.looseObject({ type: z.string() })),
  truncation: z.string(),
  service_tier: z.string(),
  billing: z.null(),
  conversation: z.null(),
  previous_response_id: z.string().nullable(),
  prompt: z.null(),
  reasoning: z.null(),
  prompt_cache_key: z.string().nullable(),
  prompt_cache_retention: z.string().nullable(),
  safety_identifier: z.string().nullable(),
  user: z.string().nullable(),
  nvext: NvExtResponseSchema.optional(),
}).meta({ id: 'Response', description: 'OpenAI Responses API response object.' });

// ---------------------------------------------------------------------------------------------
// Types
// ---------------------------------------------------------------------------------------------

export type ChatMessage = z.output<typeof ChatMessageSchema>;
export type ChatUserContentPart = z.output<typeof ChatUserContentPartSchema>;
export type ChatToolCall = z.output<typeof ChatToolCallSchema>;
export type ChatTool = z.output<typeof ChatToolSchema>;
export type ChatToolChoice = z.output<typeof ChatToolChoiceSchema>;
export type ResponseFormat = z.output<typeof ResponseFormatSchema>;
export type Stop = z.output<typeof StopSchema>;
export type StreamOptions = z.output<typeof StreamOptionsSchema>;
export type ChatCompletionRequest = z.output<typeof ChatCompletionRequestSchema>;
export type Prompt = z.output<typeof PromptSchema>;
export type CompletionRequest = z.output<typeof CompletionRequestSchema>;
export type EmbeddingRequest = z.output<typeof EmbeddingRequestSchema>;
export type ResponsesInputContent = z.output<typeof ResponsesInputContentSchema>;
export type ResponsesInputItem = z.output<typeof ResponsesInputItemSchema>;
export type ResponsesMessageItem = z.output<typeof ResponsesMessageItemSchema>;
export type ResponsesFunctionCallItem = z.output<typeof ResponsesFunctionCallItemSchema>;
export type ResponsesFunctionCallOutputItem = z.output<
  typeof ResponsesFunctionCallOutputItemSchema
>;
export type ResponsesTool = z.output<typeof ResponsesToolSchema>;
export type ResponsesToolChoice = z.output<typeof ResponsesToolChoiceSchema>;
export type ResponsesTextFormat = z.output<typeof ResponsesTextFormatSchema>;
export type ResponsesRequest = z.output<typeof ResponsesRequestSchema>;

export type Usage = z.output<typeof UsageSchema>;
export type FinishReason = z.output<typeof FinishReasonSchema>;
export type ChatLogprobs = z.output<typeof ChatLogprobsSchema>;
export type NvExtResponse = z.output<typeof NvExtResponseSchema>;
export type ChatResponseMessage = z.output<typeof ChatResponseMessageSchema>;
export type ChatCompletionResponse = z.output<typeof ChatCompletionResponseSchema>;
export type ChatToolCallDelta = z.output<typeof ChatToolCallDeltaSchema>;
export type ChatCompletionChunk = z.output<typeof ChatCompletionChunkSchema>;
export type CompletionLogprobs = z.output<typeof CompletionLogprobsSchema>;
export type CompletionResponse = z.output<typeof CompletionResponseSchema>;
export type CompletionChunk = z.output<typeof CompletionChunkSchema>;
export type Embedding = z.output<typeof EmbeddingSchema>;
export type EmbeddingResponse = z.output<typeof EmbeddingResponseSchema>;
export type ResponsesOutputText = z.output<typeof ResponsesOutputTextSchema>;
export type ResponsesOutputMessage = z.output<typeof ResponsesOutputMessageSchema>;
export type ResponsesOutputFunctionCall = z.output<typeof ResponsesOutputFunctionCallSchema>;
export type ResponsesOutputItem = z.output<typeof ResponsesOutputItemSchema>;
export type ResponsesOutputReasoning = z.output<typeof ResponsesOutputReasoningSchema>;
export type ResponsesUsage = z.output<typeof ResponsesUsageSchema>;
export type ResponsesError = z.output<typeof ResponsesErrorSchema>;
export type ResponseObject = z.output<typeof ResponseObjectSchema>;
