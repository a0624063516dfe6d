/**
 * `POST /v1/chat/completions` and `POST /v1/completions` behind the route modules: model lookup,
 * preprocessing (template, tokens, context check), generation, and the OpenAI chunk shapes for
 * streaming and the folded answer for `stream: false`. Text-input models are forwarded as they
 * are (`passthrough.ts`).
 */
import type { Core } from '../core.ts';
import type { ServedModel } from '../discovery/models.ts';
import { modelTypesOf } from '../discovery/model-card.ts';
import { BadRequestError, toApiError, ValidationError } from '../errors.ts';
import type { NvExt } from '../api/openai/nvext.ts';
import type {
  ChatCompletionChunk,
  ChatCompletionRequest,
  ChatCompletionResponse,
  CompletionRequest,
  CompletionResponse,
} from '../api/openai/schemas.ts';
import {
  checkContext,
  type ChoiceEvent,
  type GenerationParams,
  type GenerationUsage,
  startGeneration,
} from './generate.ts';
import {
  type EndpointLabel,
  errorTypeOf,
  type RequestMetrics,
  startRequestMetrics,
} from '../metrics/request-metrics.ts';
import { defaultMaxTokens } from '../preprocess/preprocessor.ts';
import { type PassthroughServices, startPassthrough } from './passthrough.ts';
import { type CallContext, servedModel } from './call-context.ts';
import { checkTokenIds } from './token-ids.ts';
import type { Tokenizer } from '../preprocess/tokenizer.ts';
import { type PerfServices, startPerfTrace } from './perf.ts';
import { chunkStream } from './chunk-stream.ts';
import { chunkFramer } from '../api/openai/chunk-frame.ts';
import { multimodalDataOf } from '../preprocess/multimodal.ts';
import { fileLimitsOf, withChatFileText } from '../preprocess/file-parts.ts';
import { startRequestTrace } from '../tracing.ts';
import type { DispatchedTo, GenerationServices } from '../dispatch/route-generation.ts';
import {
  checkGuidedSupport,
  type GuidedPlan,
  type GuidedRequest,
  planGuidedDecoding,
} from '../preprocess/guided.ts';
import {
  createChatDeltaParser,
  parserNamesOf,
  type ToolCallDelta,
  toolSchemasOf,
} from '../parsers/chat-deltas.ts';

/** A started request: chunks to stream (or fold), and the metric guard to close. */
export interface Started<Chunk> {
  id: string;
  created: number;
  model: string;
  chunks: AsyncIterable<Chunk>;
  usage(): GenerationUsage;
  metrics: RequestMetrics;
  /** The SSE frame of a chunk from a per-stream prefix (`chunk-frame.ts`). @default generic */
  frame?: (chunk: unknown) => string | undefined;
}

/**
 * A Text-input model (a plain OpenAI-compatible server): the request goes to it as it came, and
 * its chunks come back under this frontend's id, time and model name.
 */
async function forwardToServer<Chunk>(
  core: PassthroughServices & Pick<Core, 'now'>,
  model: ServedModel,
  path: 'chat/completions' | 'completions',
  options: {
    request: { stream_options?: { include_usage?: boolean | null } | null };
    call: CallContext;
    metrics: RequestMetrics;
    stream: boolean;
  },
): Promise<Started<Chunk>> {
  const { request, call, metrics, stream } = options;
  const forwarded = await startPassthrough<Chunk>(core, model, {
    path,
    request: request as Record<string, unknown>,
    call,
    metrics,
    includeUsage: request.stream_options?.include_usage === true || !stream,
  });
  return {
    id: `${path === 'completions' ? 'cmpl' : 'chatcmpl'}-${call.requestId}`,
    created: Math.floor(core.now() / 1000),
    model: model.name,
    ...forwarded,
    metrics,
  };
}

/**
 * The response-side `nvext` that `nvext.extra_fields` asked for: `worker_id` (the decode worker
 * of choice 0, after any migration), attached to each choice's finishing chunk; else undefined.
 */
function responseNvext(
  extra: readonly string[] | null | undefined,
  generation: { workerId(): string | undefined },
): Record<string, unknown> | undefined {
  if (!extra?.includes('worker_id')) return undefined;
  const id = generation.workerId();
  if (id === undefined) return undefined;
  return {
    worker_id: {
      prefill_worker_id: null,
      prefill_dp_rank: null,
      // A u64, written as its exact digits (a double would round it).
      decode_worker_id: BigInt(`0x${id}`),
      decode_dp_rank: null,
    },
  };
}

/** A model registered for other request types (an embedding model asked to chat) is a 400. */
function requireModelType(model: ServedModel, type: 'Chat' | 'Completions', what: string) {
  if (!modelTypesOf(model.card).includes(type)) {
    throw new BadRequestError(`Model "${model.name}" does not serve ${what}`, { param: 'model' });
  }
}

type StopInput = string | readonly (string | number)[] | null | undefined;

/** `stop` strings and integer entries (token ids), plus `stop_token_ids`. */
function splitStops(stop: StopInput, extraIds: readonly number[] | null | undefined) {
  const list = stop === null || stop === undefined
    ? []
    : typeof stop === 'string'
    ? [stop]
    : [...stop];
  return {
    stopStrings: list.filter((s): s is string => typeof s === 'string'),
    stopTokenIds: [...list.filter((s): s is number => typeof s === 'number'), ...(extraIds ?? [])],
  };
}

type SamplingRequest = ChatCompletionRequest | CompletionRequest;

function paramsOf(
  request: SamplingRequest,
  options: {
    maxTokens: number | undefined;
    nvext: NvExt | undefined;
    logprobs: number | undefined;
    /** The guided-decoding request (`planGuidedDecoding`). */
    guided: GuidedPlan['guided'];
    /** An output parser reads markers that are special tokens: they must stay in the text. */
    keepSpecialTokens?: boolean;
  },
): GenerationParams {
  const { maxTokens, nvext, guided } = options;
  const r = request as Record<string, unknown> & SamplingRequest;
  const num = (key: string) => (typeof r[key] === 'number' ? r[key] as number : undefined);
  return {
    maxTokens,
    minTokens: num('min_tokens'),
    ignoreEos: r.ignore_eos === true || nvext?.ignore_eos === true,
    ...splitStops(r.stop as StopInput, r.stop_token_ids as number[] | undefined),
    includeStopStr: r.include_stop_str_in_output === true,
    skipSpecialTokens: r.skip_special_tokens === true && options.keepSpecialTokens !== true,
    temperature: num('temperature'),
    topP: num('top_p'),
    topK: num('top_k'),
    minP: num('min_p'),
    seed: num('seed'),
    presencePenalty: num('presence_penalty'),
    frequencyPenalty: num('frequency_penalty'),
    repetitionPenalty: num('repetition_penalty'),
    logprobs: options.logprobs,
    ...(guided ? { guidedDecoding: guided } : {}),
    nvext,
  };
}

/**
 * What a generation plan carries for observability: per-worker metrics on dispatch, the trace,
 * and the worker's `traceparent` (the request span as its parent) when tracing is on.
 */
function observed(metrics: RequestMetrics, headers: Record<string, string>) {
  const { trace } = metrics;
  return {
    headers: trace ? { ...headers, traceparent: trace.traceparent } : headers,
    onDispatched: (d: DispatchedTo) =>
      metrics.worker({
        instanceId: d.instance.instanceId,
        ...(d.dpRank !== undefined ? { dpRank: d.dpRank } : {}),
        type: d.pool,
        promptTokens: d.promptTokens,
      }),
    ...(trace ? { trace } : {}),
  };
}

/** The `preprocess` stage ended: its duration metric and span. */
function preprocessed(
  core: Pick<Core, 'metrics' | 'monotonic'>,
  metrics: RequestMetrics,
  start: number,
): void {
  const end = core.monotonic();
  core.metrics.stageDuration.observe({ stage: 'preprocess' }, (end - start) / 1000);
  metrics.trace?.stage('preprocess', start, end);
}

/** Counts a chat request's image, video and audio content parts (`*_per_request`). */
function countMedia(
  core: Pick<Core, 'metrics'>,
  model: string,
  messages: readonly unknown[],
): void {
  let images = 0;
  let videos = 0;
  let audio = 0;
  for (const message of messages) {
    const content = (message as { content?: unknown } | null)?.content;
    if (!Array.isArray(content)) continue;
    for (const part of content) {
      const type = (part as { type?: unknown } | null)?.type;
      if (type === 'image_url' || type === 'image') images++;
      else if (type === 'video_url' || type === 'video') videos++;
      else if (type === 'input_audio' || type === 'audio_url' || type === 'audio') audio++;
    }
  }
  if (images > 0) core.metrics.imagesPerRequest.observe({ model }, images);
  if (videos > 0) core.metrics.videosPerRequest.observe({ model }, videos);
  if (audio > 0) core.metrics.audioPerRequest.observe({ model }, audio);
}

/** What the request's metric guard reads: metrics, clocks, spans, the overload status. */
type GuardServices = Pick<Core, 'metrics' | 'tracer' | 'now' | 'monotonic' | 'config'>;

/**
 * What `startChat()` and `startCompletion()` use: model lookup, tokenizers, dispatch (or the
 * passthrough), the metric guard, perf lines and ids: every member of `Core` but its lifecycle
 * and the responses store.
 */
export type ChatServices =
  & GenerationServices
  & PassthroughServices
  & PerfServices
  & GuardServices
  & Pick<Core, 'newId' | 'preprocessors'>;

/** Runs `work` with the request's metric guard, closing it with the error's type on failure. */
async function guarded<T>(
  core: GuardServices,
  labels: {
    model: string;
    endpoint: EndpointLabel;
    stream: boolean;
    /** The request's headers: a client `traceparent` is continued. @default none */
    headers?: Record<string, string>;
  },
  work: (metrics: RequestMetrics) => Promise<T>,
): Promise<T> {
  const { headers, ...rest } = labels;
  const trace = startRequestTrace(core.tracer, {
    traceparent: headers?.traceparent,
    name: labels.endpoint,
    attributes: {
      'gen_ai.request.model': labels.model,
      'switchboard.endpoint': labels.endpoint,
      'switchboard.stream': labels.stream,
      ...(headers?.['x-request-id'] ? { 'switchboard.request_id': headers['x-request-id'] } : {}),
    },
    now: core.now,
    monotonic: core.monotonic,
  });
  const metrics = startRequestMetrics(core.metrics, {
    ...rest,
    now: core.monotonic,
    ...(trace ? { trace } : {}),
  });
  try {
    return await work(metrics);
  } catch (error) {
    metrics.finish({
      errorType: errorTypeOf(toApiError(error).status, core.config.httpOverloadStatusCode),
    });
    throw error;
  }
}

const usageOf = (u: GenerationUsage) => ({
  prompt_tokens: u.promptTokens,
  completion_tokens: u.completionTokens,
  total_tokens: u.promptTokens + u.completionTokens,
  ...(u.cachedTokens !== undefined
    ? { prompt_tokens_details: { cached_tokens: u.cachedTokens } }
    : {}),
});

const utf8 = (text: string) => [...new TextEncoder().encode(text)];

/** Chat's `logprobs.content` for a step's tokens (`top` alternatives each). */
function chatLogprobsOf(tokenizer: Tokenizer, event: ChoiceEvent, top: number) {
  if (!event.logprobs) return null;
  return {
    content: event.logprobs.map((l) => {
      const token = tokenizer.decode([l.tokenId]);
      return {
        token,
        logprob: l.logprob,
        bytes: utf8(token),
        top_logprobs: l.top.slice(0, top).map((t) => {
          const alt = tokenizer.decode([t.tokenId]);
          return { token: alt, logprob: t.logprob, bytes: utf8(alt) };
        }),
      };
    }),
    refusal: null,
  };
}

/** Completions' legacy `logprobs` object, with character offsets running on per choice. */
function completionLogprobs(tokenizer: Tokenizer, top: number) {
  const offsets = new Map<number, number>();
  return (event: ChoiceEvent, text: string) => {
    if (!event.logprobs) return null;
    const start = offsets.get(event.index) ?? 0;
    let offset = start;
    const tokens = event.logprobs.map((l) => tokenizer.decode([l.tokenId]));
    const textOffset = tokens.map((token) => {
      const at = offset;
      offset += token.length;
      return at;
    });
    offsets.set(event.index, start + text.length);
    return {
      tokens,
      token_logprobs: event.logprobs.map((l) => l.logprob),
      top_logprobs: event.logprobs.map((l) =>
        Object.fromEntries(
          l.top.slice(0, top).map((t) => [tokenizer.decode([t.tokenId]), t.logprob]),
        )
      ),
      text_offset: textOffset,
    };
  };
}

// ------------------------------------------------------------------------------------------
// Chat
// ------------------------------------------------------------------------------------------

export async function startChat(
  core: ChatServices,
  asked: ChatCompletionRequest,
  call: CallContext,
): Promise<Started<ChatCompletionChunk>> {
  let request = asked;
  const model = servedModel(core, request.model);
  requireModelType(model, 'Chat', 'chat completions');
  const stream = request.stream === true;
  return await guarded(
    core,
    {
      model: model.name,
      endpoint: call.endpoint ?? 'chat_completions',
      stream,
      headers: call.headers,
    },
    async (metrics) => {
      // File parts become text first: every worker, passthrough included, reads them as text.
      const messages = await withChatFileText(request.messages, fileLimitsOf(core.config));
      if (messages !== request.messages) {
        request = { ...request, messages: messages as ChatCompletionRequest['messages'] };
      }
      countMedia(core, model.name, request.messages);
      if (model.card.model_input === 'Text') {
        return await forwardToServer<ChatCompletionChunk>(core, model, 'chat/completions', {
          request,
          call,
          metrics,
          stream,
        });
      }
      const endpoint = call.endpoint ?? 'chat_completions';
      // Structured outputs and forced tool calls: refused before any work if the workers can't.
      const guided = planGuidedDecoding(request);
      checkGuidedSupport(model.card, guided);
      const perf = startPerfTrace(core, { requestId: call.requestId, model: model.name, endpoint });
      // Media URLs are checked before anything is rendered; the worker gets them as Dynamo's
      // multi_modal_data, the template renders a placeholder for each.
      const multiModalData = multimodalDataOf(request.messages, {
        maxDataBytes: Math.floor(core.config.multimodalMaxMb * 1024 * 1024),
      });
      const preprocessStart = core.monotonic();
      const pre = await core.preprocessors.get(model);
      perf?.mark('load');
      checkTokenIds(request as Record<string, unknown>, pre.tokenizer.vocabSize);
      const rendered = await pre.renderChat({
        messages: request.messages as Parameters<typeof pre.renderChat>[0]['messages'],
        tools: request.tools ?? undefined,
        tool_choice: request.tool_choice ?? undefined,
        chat_template_args: request.chat_template_args ?? undefined,
        use_raw_prompt: call.nvext?.use_raw_prompt ?? undefined,
      });
      perf?.mark('preprocess');
      perf?.rendered(rendered);
      preprocessed(core, metrics, preprocessStart);
      const promptIds = call.nvext?.token_data ?? rendered.tokenIds;
      const contextLength = model.contextLength ?? pre.contextLength;
      const asked = request.max_completion_tokens ?? request.max_tokens ?? undefined;
      const maxTokens = asked ?? defaultMaxTokens(contextLength, promptIds.length);
      checkContext(
        contextLength,
        promptIds.length,
        maxTokens,
        asked === undefined ? 'messages' : 'max_tokens',
      );
      const n = request.n ?? 1;
      const parsed = createChatDeltaParser({
        ...parserNamesOf(model.card, core.logger),
        tools: guided.tools,
        toolSchemas: toolSchemasOf(request.tools),
        prompt: rendered.prompt,
        parallelToolCalls: request.parallel_tool_calls ?? undefined,
        newId: () => core.newId(),
      });
      const generation = await startGeneration(core, {
        model,
        tokenizer: perf?.tokenizer(pre.tokenizer) ?? pre.tokenizer,
        eosTokenIds: pre.eosTokenIds,
        choices: Array.from({ length: n }, (_, index) => ({ index, promptIds })),
        params: paramsOf(request, {
          maxTokens,
          nvext: call.nvext,
          logprobs: request.logprobs ? (request.top_logprobs ?? 0) : undefined,
          guided: guided.guided,
          keepSpecialTokens: parsed.active,
        }),
        requestId: call.requestId,
        ...observed(metrics, call.headers),
        ...(multiModalData ? { multiModalData } : {}),
      }, call.signal);
      perf?.mark('dispatch');

      const id = `chatcmpl-${call.requestId}`;
      const created = Math.floor(core.now() / 1000);
      const includeUsage = request.stream_options?.include_usage === true;
      const base = { id, object: 'chat.completion.chunk' as const, created, model: model.name };
      const roleSent = new Set<number>();
      const withNvext = (event: ChoiceEvent) => {
        const nvext = event.finishReason && responseNvext(call.nvext?.extra_fields, generation);
        return nvext ? { nvext } : {};
      };
      const plain = !parsed.active && !request.logprobs;
      const shape = (event: ChoiceEvent): ChatCompletionChunk | undefined => {
        if (
          plain && event.finishReason === undefined && event.stopReason === undefined &&
          roleSent.has(event.index)
        ) {
          // The bulk of a stream: a text delta. The same object as below, built directly.
          if (event.text === '') return undefined;
          const chunk: Record<string, unknown> = {
            id,
            object: base.object,
            created,
            model: base.model,
            choices: [{
              index: event.index,
              delta: { content: event.text },
              logprobs: null,
              finish_reason: null,
            }],
          };
          if (includeUsage) chunk.usage = null;
          return chunk as unknown as ChatCompletionChunk;
        }
        const logprobs = request.logprobs
          ? chatLogprobsOf(pre.tokenizer, event, request.top_logprobs ?? 0)
          : null;
        const out = parsed.active
          ? parsed.push(event.index, event.text, event.finishReason !== undefined)
          : { content: event.text };
        const content = out.content ?? '';
        // Chunks with nothing to say (a token that completed no character, or text an output
        // parser holds back) are dropped.
        if (
          content === '' && !out.reasoning_content && !out.tool_calls && !event.finishReason &&
          !logprobs
        ) return undefined;
        const first = !roleSent.has(event.index);
        roleSent.add(event.index);
        const delta: Record<string, unknown> = {};
        if (first) delta.role = 'assistant';
        if (content !== '' || (first && !out.reasoning_content && !out.tool_calls)) {
          delta.content = content;
        }
        if (out.reasoning_content) delta.reasoning_content = out.reasoning_content;
        if (out.tool_calls) delta.tool_calls = out.tool_calls;
        const finish = event.finishReason === 'stop' && parsed.sawToolCall(event.index)
          ? 'tool_calls'
          : event.finishReason ?? null;
        if (
          finish === null && logprobs === null &&
          !(call.stopReasons && event.stopReason !== undefined)
        ) {
          // A parsed delta mid-stream (reasoning, content, a tool call's arguments): the same
          // object as below, built directly.
          const chunk: Record<string, unknown> = {
            id,
            object: base.object,
            created,
            model: base.model,
            choices: [{ index: event.index, delta, logprobs: null, finish_reason: null }],
          };
          if (includeUsage) chunk.usage = null;
          return chunk as unknown as ChatCompletionChunk;
        }
        return {
          ...base,
          choices: [{
            index: event.index,
            delta,
            logprobs,
            finish_reason: finish,
            ...(call.stopReasons && event.stopReason !== undefined
              ? { stop_reason: event.stopReason }
              : {}),
          }],
          ...(includeUsage ? { usage: null } : {}),
          ...withNvext(event),
        } as ChatCompletionChunk;
      };
      const timed = chunkStream({
        generation,
        metrics,
        shape,
        signal: call.signal,
        ...(includeUsage
          ? {
            last: () =>
              ({ ...base, choices: [], usage: usageOf(generation.usage()) }) as ChatCompletionChunk,
          }
          : {}),
        ...(perf ? { perf, perfFields: () => usageOf(generation.usage()) } : {}),
      });
      return {
        id,
        created,
        model: model.name,
        chunks: timed,
        usage: generation.usage,
        metrics,
        frame: chunkFramer(base),
      };
    },
  );
}

/** Folds a chat stream into the `stream: false` answer. */
export async function collectChat(
  started: Started<ChatCompletionChunk>,
): Promise<ChatCompletionResponse> {
  interface Entry {
    content: string;
    reasoning: string;
    calls: Array<{ id: string; type: 'function'; function: { name: string; arguments: string } }>;
    finish: string | null;
    logprobs: unknown[] | null;
  }
  const choices = new Map<number, Entry>();
  let nvext: unknown;
  for await (const chunk of started.chunks) {
    nvext ??= (chunk as { nvext?: unknown }).nvext;
    for (const choice of chunk.choices) {
      const entry = choices.get(choice.index) ??
        { content: '', reasoning: '', calls: [], finish: null, logprobs: null };
      const delta = choice.delta as {
        content?: string | null;
        reasoning_content?: string | null;
        tool_calls?: ToolCallDelta[];
      };
      entry.content += delta.content ?? '';
      entry.reasoning += delta.reasoning_content ?? '';
      for (const call of delta.tool_calls ?? []) {
        const slot = entry.calls[call.index] ??= {
          id: '',
          type: 'function',
          function: { name: '', arguments: '' },
        };
        if (call.id) slot.id = call.id;
        if (call.function?.name) slot.function.name += call.function.name;
        slot.function.arguments += call.function?.arguments ?? '';
      }
      if (choice.finish_reason) entry.finish = choice.finish_reason;
      const content = (choice.logprobs as { content?: unknown[] } | null | undefined)?.content;
      if (content) entry.logprobs = [...(entry.logprobs ?? []), ...content];
      choices.set(choice.index, entry);
    }
  }
  return {
    id: started.id,
    object: 'chat.completion',
    created: started.created,
    model: started.model,
    choices: [...choices.entries()].sort(([a], [b]) => a - b).map(([index, c]) => ({
      index,
      message: {
        role: 'assistant',
        // OpenAI's shape: a message of only tool calls has null content.
        content: c.content === '' && c.calls.length > 0 ? null : c.content,
        refusal: null,
        ...(c.reasoning !== '' ? { reasoning_content: c.reasoning } : {}),
        ...(c.calls.length > 0 ? { tool_calls: c.calls.filter(Boolean) } : {}),
      },
      logprobs: c.logprobs ? { content: c.logprobs, refusal: null } : null,
      finish_reason: c.finish ?? 'stop',
    })),
    usage: usageOf(started.usage()),
    ...(nvext ? { nvext } : {}),
  } as ChatCompletionResponse;
}

// ------------------------------------------------------------------------------------------
// Completions
// ------------------------------------------------------------------------------------------

function promptsOf(prompt: CompletionRequest['prompt']): Array<string | number[]> {
  if (prompt === undefined || prompt === null) return [];
  if (typeof prompt === 'string') return [prompt];
  if (prompt.length > 0 && typeof prompt[0] === 'number') return [prompt as number[]];
  return prompt as Array<string | number[]>;
}

export async function startCompletion(
  core: ChatServices,
  request: CompletionRequest,
  call: CallContext,
): Promise<Started<CompletionResponse>> {
  const model = servedModel(core, request.model);
  requireModelType(model, 'Completions', 'text completions');
  const stream = request.stream === true;
  return await guarded(
    core,
    { model: model.name, endpoint: 'completions', stream, headers: call.headers },
    async (metrics) => {
      if (model.card.model_input === 'Text') {
        return await forwardToServer<CompletionResponse>(core, model, 'completions', {
          request,
          call,
          metrics,
          stream,
        });
      }
      const guided = planGuidedDecoding(request as GuidedRequest);
      checkGuidedSupport(model.card, guided);
      const perf = startPerfTrace(core, {
        requestId: call.requestId,
        model: model.name,
        endpoint: 'completions',
      });
      const preprocessStart = core.monotonic();
      const pre = await core.preprocessors.get(model);
      perf?.mark('load');
      const prompts = promptsOf(request.prompt);
      if (prompts.length === 0) {
        // prompt_embeds reach an engine only through the passthrough: this pipeline renders
        // text and token ids, and would otherwise answer with no choices at all.
        throw new ValidationError(
          'prompt_embeds are not supported for this model (its workers take token ids); ' +
            'send "prompt"',
          { param: 'prompt_embeds' },
        );
      }
      checkTokenIds(request as Record<string, unknown>, pre.tokenizer.vocabSize, prompts);
      const tokenized = await Promise.all(
        prompts.map((p) => typeof p === 'string' ? pre.tokenizePrompt(p) : Promise.resolve(p)),
      );
      perf?.mark('preprocess');
      preprocessed(core, metrics, preprocessStart);
      const contextLength = model.contextLength ?? pre.contextLength;
      const asked = request.max_tokens ?? undefined;
      const longest = Math.max(...tokenized.map((t) => t.length));
      // OpenAI's completions default is 16 tokens; Dynamo's is "what fits". We follow Dynamo.
      const maxTokens = asked ?? defaultMaxTokens(contextLength, longest);
      for (const ids of tokenized) checkContext(contextLength, ids.length, maxTokens, 'prompt');
      const n = request.n ?? 1;
      const choices = tokenized.flatMap((promptIds, p) =>
        Array.from({ length: n }, (_, j) => ({ index: p * n + j, promptIds }))
      );
      const generation = await startGeneration(core, {
        model,
        tokenizer: perf?.tokenizer(pre.tokenizer) ?? pre.tokenizer,
        eosTokenIds: pre.eosTokenIds,
        choices,
        params: paramsOf(request, {
          maxTokens,
          nvext: call.nvext,
          logprobs: request.logprobs ?? undefined,
          guided: guided.guided,
        }),
        requestId: call.requestId,
        ...observed(metrics, call.headers),
      }, call.signal);
      perf?.mark('dispatch');

      const id = `cmpl-${call.requestId}`;
      const created = Math.floor(core.now() / 1000);
      const includeUsage = request.stream_options?.include_usage === true;
      const base = { id, object: 'text_completion' as const, created, model: model.name };
      const echoed = new Set<number>();
      const withNvext = (event: ChoiceEvent) => {
        const nvext = event.finishReason && responseNvext(call.nvext?.extra_fields, generation);
        return nvext ? { nvext } : {};
      };
      const logprobsOf = request.logprobs === undefined || request.logprobs === null
        ? () => null
        : completionLogprobs(pre.tokenizer, request.logprobs);
      const shape = (event: ChoiceEvent): CompletionResponse | undefined => {
        let text = event.text;
        if (request.echo && !echoed.has(event.index)) {
          echoed.add(event.index);
          const promptIndex = Math.floor(event.index / n);
          const source = prompts[promptIndex];
          text = (typeof source === 'string' ? source : pre.tokenizer.decode(source ?? [])) + text;
        }
        const logprobs = logprobsOf(event, text);
        if (text === '' && !event.finishReason && !logprobs) return undefined;
        return {
          ...base,
          choices: [{
            index: event.index,
            text,
            logprobs,
            finish_reason: event.finishReason ?? null,
          }],
          ...(includeUsage ? { usage: null } : {}),
          ...withNvext(event),
        } as CompletionResponse;
      };
      const timed = chunkStream({
        generation,
        metrics,
        shape,
        signal: call.signal,
        ...(includeUsage
          ? {
            last: () =>
              ({
                ...base,
                choices: [],
                usage: usageOf(generation.usage()),
              }) as unknown as CompletionResponse,
          }
          : {}),
        ...(perf ? { perf, perfFields: () => usageOf(generation.usage()) } : {}),
      });
      return {
        id,
        created,
        model: model.name,
        chunks: timed,
        usage: generation.usage,
        metrics,
        frame: chunkFramer(base),
      };
    },
  );
}

export async function collectCompletion(
  started: Started<CompletionResponse>,
): Promise<CompletionResponse> {
  type Lp = {
    tokens: string[];
    token_logprobs: number[];
    top_logprobs: unknown[];
    text_offset: number[];
  };
  const choices = new Map<number, { text: string; finish: string | null; logprobs: Lp | null }>();
  let nvext: unknown;
  for await (const chunk of started.chunks) {
    nvext ??= (chunk as { nvext?: unknown }).nvext;
    for (const choice of chunk.choices) {
      const entry = choices.get(choice.index) ?? { text: '', finish: null, logprobs: null };
      entry.text += choice.text;
      if (choice.finish_reason) entry.finish = String(choice.finish_reason);
      const lp = choice.logprobs as Lp | null | undefined;
      if (lp) {
        entry.logprobs ??= { tokens: [], token_logprobs: [], top_logprobs: [], text_offset: [] };
        entry.logprobs.tokens.push(...lp.tokens);
        entry.logprobs.token_logprobs.push(...lp.token_logprobs);
        entry.logprobs.top_logprobs.push(...lp.top_logprobs);
        entry.logprobs.text_offset.push(...lp.text_offset);
      }
      choices.set(choice.index, entry);
    }
  }
  return {
    id: started.id,
    object: 'text_completion',
    created: started.created,
    model: started.model,
    choices: [...choices.entries()].sort(([a], [b]) => a - b).map(([index, c]) => ({
      index,
      text: c.text,
      logprobs: c.logprobs,
      finish_reason: c.finish ?? 'stop',
    })),
    usage: usageOf(started.usage()),
    ...(nvext ? { nvext } : {}),
  } as CompletionResponse;
}
