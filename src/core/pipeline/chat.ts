/**
 * `POST /v1/chat/completions` and `POST /v1/completions` behind the route modules: model lookup,
 * preprocessing (template, tokens, context check), generation, and the OpenAI chunk shapes for
 * streaming and the folded answer for `stream: false`. Text-input models are forwarded as they
 * are (`passthrough.ts`).
 */
import type { Core } from '../core.ts';
import type { ServedModel } from '../discovery/models.ts';
import { modelTypesOf } from '../discovery/model-card.ts';
import {
  BadRequestError,
  ModelNotFoundError,
  ServiceUnavailableError,
  toApiError,
  ValidationError,
} from '../errors.ts';
import type { NvExt } from '../protocols/nvext.ts';
import type {
  ChatCompletionChunk,
  ChatCompletionRequest,
  ChatCompletionResponse,
  CompletionRequest,
  CompletionResponse,
} from '../protocols/openai.ts';
import {
  checkContext,
  type ChoiceEvent,
  type Generation,
  type GenerationParams,
  type GenerationUsage,
  startGeneration,
} from './generate.ts';
import {
  type EndpointLabel,
  errorTypeOf,
  type RequestMetrics,
  startRequestMetrics,
} from './request-metrics.ts';
import { defaultMaxTokens } from '../preprocess/preprocessor.ts';
import { startPassthrough } from './passthrough.ts';
import { checkTokenIds } from './token-ids.ts';
import type { Tokenizer } from '../preprocess/tokenizer.ts';
import { startPerfTrace, traced } from './perf.ts';

export interface CallContext {
  requestId: string;
  /** Headers to propagate to the worker (`x-request-id`, `traceparent`, ...). */
  headers: Record<string, string>;
  /** Aborts when the client goes away. */
  signal: AbortSignal;
  nvext?: NvExt;
  /** The metrics `endpoint` label. @default the route's own (chat_completions / completions) */
  endpoint?: EndpointLabel;
  /**
   * Put the matched stop string or stop id in a finishing chat choice as `stop_reason` (vLLM's
   * field), for translators that report it (Anthropic's `stop_sequence`). @default false
   */
  stopReasons?: boolean;
}

/** A started request: chunks to stream (or fold), and the metric guard to close. */
export interface Started<Chunk> {
  id: string;
  created: number;
  model: string;
  chunks: AsyncIterable<Chunk>;
  usage(): GenerationUsage;
  metrics: RequestMetrics;
}

/** Resolves the model and its live workers, or the right error (404 / 503). */
export function servedModel(core: Core, name: string): ServedModel {
  const model = core.models.get(name);
  if (!model) throw new ModelNotFoundError(name);
  if (core.models.instances(name).length === 0) {
    throw new ServiceUnavailableError(
      `Model "${name}" has no live worker right now; retry shortly`,
    );
  }
  return model;
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
  },
): GenerationParams {
  const { maxTokens, nvext } = options;
  const r = request as Record<string, unknown> & SamplingRequest;
  const num = (key: string) => (typeof r[key] === 'number' ? r[key] as number : undefined);
  const guided: Record<string, unknown> = {};
  for (
    const [key, field] of [['guided_json', 'json'], ['guided_regex', 'regex'], [
      'guided_grammar',
      'grammar',
    ], [
      'guided_choice',
      'choice',
    ], ['guided_decoding_backend', 'backend']] as const
  ) {
    if (r[key] !== undefined && r[key] !== null) guided[field] = r[key];
  }
  return {
    maxTokens,
    minTokens: num('min_tokens'),
    ignoreEos: r.ignore_eos === true || nvext?.ignore_eos === true,
    ...splitStops(r.stop as StopInput, r.stop_token_ids as number[] | undefined),
    includeStopStr: r.include_stop_str_in_output === true,
    skipSpecialTokens: r.skip_special_tokens === true,
    temperature: num('temperature'),
    topP: num('top_p'),
    topK: num('top_k'),
    minP: num('min_p'),
    seed: num('seed'),
    presencePenalty: num('presence_penalty'),
    frequencyPenalty: num('frequency_penalty'),
    repetitionPenalty: num('repetition_penalty'),
    logprobs: options.logprobs,
    ...(Object.keys(guided).length > 0 ? { guidedDecoding: guided } : {}),
    nvext,
  };
}

/** Runs `work` with the request's metric guard, closing it with the error's type on failure. */
async function guarded<T>(
  core: Core,
  labels: { model: string; endpoint: EndpointLabel; stream: boolean },
  work: (metrics: RequestMetrics) => Promise<T>,
): Promise<T> {
  const metrics = startRequestMetrics(core.metrics, { ...labels, now: core.monotonic });
  try {
    return await work(metrics);
  } catch (error) {
    metrics.finish({
      errorType: errorTypeOf(toApiError(error).status, core.config.httpOverloadStatusCode),
    });
    throw error;
  }
}

/** Chunk events with the metric guard fed, closed when the stream ends. */
async function* metered<T>(
  generation: Generation,
  metrics: RequestMetrics,
  shape: (event: ChoiceEvent) => T | undefined,
  signal: AbortSignal,
): AsyncGenerator<T> {
  let outcome: 'done' | 'error' | 'cancelled' = 'cancelled';
  try {
    for await (const event of generation.events) {
      metrics.tokens(event.tokenIds.length);
      const chunk = shape(event);
      if (chunk !== undefined) yield chunk;
    }
    outcome = signal.aborted ? 'cancelled' : 'done';
  } catch (error) {
    outcome = signal.aborted ? 'cancelled' : 'error';
    throw error;
  } finally {
    // Workers report prefix-cache hits with their last chunk, so the prompt is recorded here.
    const usage = generation.usage();
    metrics.prompt(usage.promptTokens, usage.cachedTokens);
    metrics.finish({
      errorType: outcome === 'done' ? '' : outcome === 'cancelled' ? 'cancelled' : 'internal',
      outputTokens: usage.completionTokens,
    });
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
  core: Core,
  request: ChatCompletionRequest,
  call: CallContext,
): Promise<Started<ChatCompletionChunk>> {
  const model = servedModel(core, request.model);
  requireModelType(model, 'Chat', 'chat completions');
  const stream = request.stream === true;
  return await guarded(
    core,
    { model: model.name, endpoint: call.endpoint ?? 'chat_completions', stream },
    async (metrics) => {
      if (model.card.model_input === 'Text') {
        const forwarded = await startPassthrough<ChatCompletionChunk>(core, model, {
          path: 'chat/completions',
          request: request as Record<string, unknown>,
          call,
          metrics,
          includeUsage: request.stream_options?.include_usage === true || !stream,
        });
        return {
          id: `chatcmpl-${call.requestId}`,
          created: Math.floor(core.now() / 1000),
          model: model.name,
          ...forwarded,
          metrics,
        };
      }
      const endpoint = call.endpoint ?? 'chat_completions';
      const perf = startPerfTrace(core, { requestId: call.requestId, model: model.name, endpoint });
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
      const generation = await startGeneration(core, {
        model,
        tokenizer: perf?.tokenizer(pre.tokenizer) ?? pre.tokenizer,
        eosTokenIds: pre.eosTokenIds,
        choices: Array.from({ length: n }, (_, index) => ({ index, promptIds })),
        params: paramsOf(request, {
          maxTokens,
          nvext: call.nvext,
          logprobs: request.logprobs ? (request.top_logprobs ?? 0) : undefined,
        }),
        requestId: call.requestId,
        headers: call.headers,
      }, call.signal);
      perf?.mark('dispatch');

      const id = `chatcmpl-${call.requestId}`;
      const created = Math.floor(core.now() / 1000);
      const includeUsage = request.stream_options?.include_usage === true;
      const base = { id, object: 'chat.completion.chunk' as const, created, model: model.name };
      const roleSent = new Set<number>();
      const shape = (event: ChoiceEvent): ChatCompletionChunk | undefined => {
        const logprobs = request.logprobs
          ? chatLogprobsOf(pre.tokenizer, event, request.top_logprobs ?? 0)
          : null;
        // Chunks with nothing to say (a token that completed no character) are dropped.
        if (event.text === '' && !event.finishReason && !logprobs) return undefined;
        const first = !roleSent.has(event.index);
        roleSent.add(event.index);
        const delta: Record<string, unknown> = {};
        if (first) delta.role = 'assistant';
        if (event.text !== '' || first) delta.content = event.text;
        return {
          ...base,
          choices: [{
            index: event.index,
            delta,
            logprobs,
            finish_reason: event.finishReason ?? null,
            ...(call.stopReasons && event.stopReason !== undefined
              ? { stop_reason: event.stopReason }
              : {}),
          }],
          ...(includeUsage ? { usage: null } : {}),
        } as ChatCompletionChunk;
      };
      const chunks = (async function* () {
        yield* metered(generation, metrics, shape, call.signal);
        if (includeUsage) {
          yield { ...base, choices: [], usage: usageOf(generation.usage()) } as ChatCompletionChunk;
        }
      })();
      const timed = traced(perf, chunks, () => usageOf(generation.usage()));
      return { id, created, model: model.name, chunks: timed, usage: generation.usage, metrics };
    },
  );
}

/** Folds a chat stream into the `stream: false` answer. */
export async function collectChat(
  started: Started<ChatCompletionChunk>,
): Promise<ChatCompletionResponse> {
  const choices = new Map<
    number,
    { content: string; finish: string | null; logprobs: unknown[] | null }
  >();
  for await (const chunk of started.chunks) {
    for (const choice of chunk.choices) {
      const entry = choices.get(choice.index) ?? { content: '', finish: null, logprobs: null };
      entry.content += (choice.delta as { content?: string | null }).content ?? '';
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
      message: { role: 'assistant', content: c.content, refusal: null },
      logprobs: c.logprobs ? { content: c.logprobs, refusal: null } : null,
      finish_reason: c.finish ?? 'stop',
    })),
    usage: usageOf(started.usage()),
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
  core: Core,
  request: CompletionRequest,
  call: CallContext,
): Promise<Started<CompletionResponse>> {
  const model = servedModel(core, request.model);
  requireModelType(model, 'Completions', 'text completions');
  const stream = request.stream === true;
  return await guarded(
    core,
    { model: model.name, endpoint: 'completions', stream },
    async (metrics) => {
      if (model.card.model_input === 'Text') {
        const forwarded = await startPassthrough<CompletionResponse>(core, model, {
          path: 'completions',
          request: request as Record<string, unknown>,
          call,
          metrics,
          includeUsage: request.stream_options?.include_usage === true || !stream,
        });
        return {
          id: `cmpl-${call.requestId}`,
          created: Math.floor(core.now() / 1000),
          model: model.name,
          ...forwarded,
          metrics,
        };
      }
      const perf = startPerfTrace(core, {
        requestId: call.requestId,
        model: model.name,
        endpoint: 'completions',
      });
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
        }),
        requestId: call.requestId,
        headers: call.headers,
      }, call.signal);
      perf?.mark('dispatch');

      const id = `cmpl-${call.requestId}`;
      const created = Math.floor(core.now() / 1000);
      const includeUsage = request.stream_options?.include_usage === true;
      const base = { id, object: 'text_completion' as const, created, model: model.name };
      const echoed = new Set<number>();
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
        } as CompletionResponse;
      };
      const chunks = (async function* () {
        yield* metered(generation, metrics, shape, call.signal);
        if (includeUsage) {
          yield {
            ...base,
            choices: [],
            usage: usageOf(generation.usage()),
          } as unknown as CompletionResponse;
        }
      })();
      const timed = traced(perf, chunks, () => usageOf(generation.usage()));
      return { id, created, model: model.name, chunks: timed, usage: generation.usage, metrics };
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
  for await (const chunk of started.chunks) {
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
  } as CompletionResponse;
}
