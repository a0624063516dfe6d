/**
 * Generation for Tokens-input models, shared by chat and completions: one worker request per
 * choice (a prompt × `n`), dispatched through the router and the request plane, postprocessed
 * (detokenized, stop strings and ids applied) and merged into one stream of choice events.
 * Cancelling the caller's signal cancels every worker request.
 */
import type { ServedModel } from '../discovery/models.ts';
import { loraNameOf } from '../discovery/model-card.ts';
import { ApiError, BadRequestError, InternalError, ServiceUnavailableError } from '../errors.ts';
import { PlaneError } from '../plane/errors.ts';
import type { NvExt } from '../api/openai/nvext.ts';
import type { LLMEngineOutput, PreprocessedRequest } from '../plane/worker.ts';
import { createPostprocessor, type OpenAIFinishReason } from '../preprocess/postprocess.ts';
import { compileStops } from '../preprocess/stops.ts';
import { AGAIN, DONE, Stage, type Step } from '../stage.ts';
import { checkOutputBudget } from '../request-limits.ts';
import type { Tokenizer } from '../preprocess/tokenizer.ts';
import { planeErrorToApi, WorkerStreamError } from '../dispatch/dispatch.ts';
import { dispatchMigratable } from '../dispatch/migration.ts';
import type { GenerationCall, GenerationServices } from '../dispatch/route-generation.ts';
import { upstreamName } from './call-context.ts';

/** What a choice needs besides its prompt: sampling and stop settings of the request. */
export interface GenerationParams {
  maxTokens?: number;
  minTokens?: number;
  ignoreEos?: boolean;
  stopStrings: string[];
  stopTokenIds: number[];
  includeStopStr?: boolean;
  skipSpecialTokens?: boolean;
  temperature?: number | null;
  topP?: number | null;
  topK?: number | null;
  minP?: number | null;
  seed?: number | null;
  presencePenalty?: number | null;
  frequencyPenalty?: number | null;
  repetitionPenalty?: number | null;
  logprobs?: number | null;
  guidedDecoding?: Record<string, unknown>;
  nvext?: NvExt;
}

export interface ChoicePlan {
  index: number;
  promptIds: number[];
}

export interface GenerationPlan {
  model: ServedModel;
  tokenizer: Tokenizer;
  eosTokenIds: readonly number[];
  choices: ChoicePlan[];
  params: GenerationParams;
  requestId: string;
  headers: Record<string, string>;
  /** Images and videos of the request, as Dynamo's `multi_modal_data`. @default none */
  multiModalData?: Record<string, Array<{ Url: string }>>;
  /** Called when a worker accepted one of the choices (per-worker metrics). @default none */
  onDispatched?: GenerationCall['onDispatched'];
  /** The request's trace. @default none */
  trace?: GenerationCall['trace'];
}

/** A generated token's log-probability and the most likely alternatives (most likely first). */
export interface TokenLogprob {
  tokenId: number;
  logprob: number;
  top: Array<{ tokenId: number; logprob: number }>;
}

/** One step of one choice, in the order the workers produced them. */
export interface ChoiceEvent {
  index: number;
  text: string;
  /** Set when the request asked for logprobs and the worker sent them. */
  logprobs?: TokenLogprob[];
  /** Generated token ids in this step (counted in usage even when `text` is empty). */
  tokenIds: number[];
  finishReason?: Exclude<OpenAIFinishReason, 'error' | 'cancelled'>;
  stopReason?: string | number;
}

export interface GenerationUsage {
  promptTokens: number;
  completionTokens: number;
  cachedTokens?: number;
}

export interface Generation {
  events: AsyncIterable<ChoiceEvent>;
  usage(): GenerationUsage;
  /** The worker (instance id, hex) that serves choice 0 now (after any migration). */
  workerId(): string | undefined;
}

/** The prompt text of `max_tokens` errors and context checks, OpenAI's wording. */
export function checkContext(
  contextLength: number | undefined,
  promptLength: number,
  maxTokens: number | undefined,
  param: string,
): void {
  if (contextLength === undefined) return;
  if (
    promptLength >= contextLength ||
    (maxTokens !== undefined && promptLength + maxTokens > contextLength)
  ) {
    throw new BadRequestError(
      `This model's maximum context length is ${contextLength} tokens. However, you requested ` +
        `${promptLength + (maxTokens ?? 0)} tokens (${promptLength} in the prompt, ${
          maxTokens ?? 0
        } ` +
        'in the completion). Please reduce the prompt or the completion length.',
      { param },
    );
  }
}

function workerRequest(plan: GenerationPlan, choice: ChoicePlan): PreprocessedRequest {
  const p = plan.params;
  const seed = p.seed === undefined || p.seed === null ? undefined : p.seed + choice.index;
  const greedy = p.nvext?.greed_sampling === true;
  const strip = <T extends Record<string, unknown>>(o: T): T => {
    for (const k of Object.keys(o)) if (o[k] === undefined || o[k] === null) delete o[k];
    return o;
  };
  return strip({
    // A registered server knows the model by its own name (`--upstream-model`).
    model: upstreamName(plan.model.card),
    token_ids: choice.promptIds,
    stop_conditions: strip({
      max_tokens: p.maxTokens,
      min_tokens: p.minTokens,
      ignore_eos: p.ignoreEos,
      stop: p.stopStrings.length > 0 ? p.stopStrings : undefined,
      stop_token_ids: p.stopTokenIds.length > 0 ? p.stopTokenIds : undefined,
      stop_token_ids_hidden: p.ignoreEos ? undefined : [...plan.eosTokenIds],
    }),
    sampling_options: strip({
      n: 1,
      temperature: greedy ? 0 : p.temperature,
      top_p: p.topP,
      top_k: greedy ? 1 : p.topK,
      min_p: p.minP,
      seed,
      presence_penalty: p.presencePenalty,
      frequency_penalty: p.frequencyPenalty,
      repetition_penalty: p.repetitionPenalty,
      guided_decoding: p.guidedDecoding,
    }),
    output_options: strip({ logprobs: p.logprobs, skip_special_tokens: p.skipSpecialTokens }),
    eos_token_ids: [...plan.eosTokenIds],
    multi_modal_data: plan.multiModalData,
    annotations: p.nvext?.annotations ?? undefined,
    routing: strip({
      backend_instance_id: undefined,
      dp_rank: p.nvext?.dp_rank,
      cache_salt: p.nvext?.cache_salt,
      // A LoRA model: the worker applies this adapter, and KV block hashes (the worker's and the
      // router's) are salted with its name, so two adapters never share cache blocks.
      lora_name: loraNameOf(plan.model.card),
    }),
  }) as PreprocessedRequest;
}

/** An async queue that several producers push into and one consumer drains. */
function mergeQueue<T>() {
  const items: T[] = [];
  let wake: (() => void) | undefined;
  let failure: { error: unknown } | undefined;
  let open = 0;
  const poke = () => {
    wake?.();
    wake = undefined;
  };
  return {
    producer() {
      open++;
      return {
        push: (item: T) => {
          items.push(item);
          poke();
        },
        end: () => {
          open--;
          poke();
        },
        fail: (error: unknown) => {
          failure ??= { error };
          poke();
        },
      };
    },
    async *drain(): AsyncGenerator<T> {
      for (;;) {
        if (failure) throw failure.error;
        const item = items.shift();
        if (item !== undefined) {
          yield item;
          continue;
        }
        if (open === 0) return;
        await new Promise<void>((resolve) => (wake = resolve));
      }
    },
  };
}

/** The worker's logprobs of the first `count` tokens of `output`, when it sent any. */
function logprobsOf(output: LLMEngineOutput, count: number): TokenLogprob[] | undefined {
  const values = output.log_probs;
  if (!values || values.length === 0 || count === 0) return undefined;
  return output.token_ids.slice(0, count).map((tokenId, i) => ({
    tokenId,
    logprob: values[i] ?? 0,
    top: (output.top_logprobs?.[i] ?? []).map((t) => ({
      tokenId: t.token_id ?? 0,
      logprob: t.logprob ?? 0,
    })),
  }));
}

/** Maps what can go wrong while reading a worker's stream to the client's error. */
function streamError(error: unknown, overloadStatus: number): ApiError {
  if (error instanceof ApiError) return error;
  if (error instanceof PlaneError) {
    return error.kind === 'disconnected'
      ? new ServiceUnavailableError('The worker went away before the answer was complete', {
        cause: error,
      })
      : planeErrorToApi(error, overloadStatus);
  }
  if (error instanceof WorkerStreamError) {
    return new InternalError('Internal server error', { cause: error });
  }
  return new InternalError('Internal server error', { cause: error });
}

/**
 * Starts every choice of `plan`. Resolves once every worker accepted its request (so routing,
 * overload and "no worker" errors still get a real HTTP status); then `events` streams.
 */
export async function startGeneration(
  core: GenerationServices,
  plan: GenerationPlan,
  signal: AbortSignal,
): Promise<Generation> {
  const { config, logger } = core;
  checkOutputBudget({
    choices: plan.choices.length,
    maxTokens: plan.params.maxTokens,
    logprobs: plan.params.logprobs ?? undefined,
  }, config.httpMaxOutputBudget);
  const aborts = plan.choices.map(() => new AbortController());
  const abortAll = () => aborts.forEach((a) => a.abort(signal.reason));
  if (signal.aborted) abortAll();
  else signal.addEventListener('abort', abortAll, { once: true });

  const usage: GenerationUsage = {
    promptTokens: plan.choices.reduce((sum, c) => sum + c.promptIds.length, 0),
    completionTokens: 0,
  };
  let reportedPrompt = 0;
  let reportedCached: number | undefined;

  let started;
  let workerId: string | undefined;
  try {
    started = await Promise.all(
      plan.choices.map((choice, i) =>
        dispatchMigratable(core, plan.model, {
          requestId: plan.choices.length > 1 ? `${plan.requestId}-${choice.index}` : plan.requestId,
          headers: plan.headers,
          signal: (aborts[i] as AbortController).signal,
          nvext: plan.params.nvext,
          ...(i === 0 ? { onSelected: (instance) => workerId = instance.instanceId } : {}),
          onDispatched: plan.onDispatched,
          trace: plan.trace,
        }, workerRequest(plan, choice))
      ),
    );
  } catch (error) {
    abortAll();
    signal.removeEventListener('abort', abortAll);
    throw error;
  }

  // One automaton over the stop strings, shared by every choice.
  const stops = compileStops(plan.params.stopStrings);
  const choices = started.map(({ stream }, i) => {
    const choice = plan.choices[i] as ChoicePlan;
    const post = createPostprocessor({
      tokenizer: plan.tokenizer,
      promptIds: choice.promptIds,
      stop: stops,
      stopTokenIds: plan.params.stopTokenIds,
      hiddenStopTokenIds: plan.params.ignoreEos ? [] : plan.eosTokenIds,
      minTokens: plan.params.minTokens,
      includeStopStr: plan.params.includeStopStr,
      skipSpecialTokens: plan.params.skipSpecialTokens,
    });
    /**
     * One worker item -> the choice's event (`undefined` once the choice ended before it);
     * throws what ends the stream with an error.
     */
    const step = (item: unknown): ChoiceEvent | undefined => {
      const output = item as LLMEngineOutput;
      if (output.completion_usage) {
        reportedPrompt += output.completion_usage.prompt_tokens ?? 0;
        const cached = output.completion_usage.prompt_tokens_details?.cached_tokens;
        if (typeof cached === 'number') reportedCached = (reportedCached ?? 0) + cached;
      }
      const chunk = post.push(output);
      usage.completionTokens += chunk.tokenIds.length;
      if (chunk.finishReason === 'error') {
        throw new WorkerStreamError(chunk.error ?? 'the engine failed');
      }
      if (chunk.finishReason === 'cancelled') {
        if (signal.aborted) return undefined;
        throw new WorkerStreamError('the engine cancelled the request');
      }
      const logprobs = logprobsOf(output, chunk.tokenIds.length);
      const event: ChoiceEvent = {
        index: choice.index,
        text: chunk.text,
        tokenIds: chunk.tokenIds,
      };
      if (logprobs) event.logprobs = logprobs;
      if (chunk.finishReason) event.finishReason = chunk.finishReason;
      if (chunk.stopReason !== undefined) event.stopReason = chunk.stopReason;
      if (chunk.stopped) (aborts[i] as AbortController).abort();
      return event;
    };
    /** The worker completed without saying why: a natural stop (none once cancelled). */
    const ended = (): ChoiceEvent | undefined => {
      if (post.finished || signal.aborted) return undefined;
      const rest = post.finish();
      return { index: choice.index, text: rest.text, tokenIds: [], finishReason: 'stop' };
    };
    /** A failure while reading: the client's error, or nothing when the client left. */
    const failed = (error: unknown): ApiError | undefined => {
      if (signal.aborted) return undefined;
      logger.warn('worker stream failed', { request_id: plan.requestId, error });
      abortAll();
      return streamError(error, config.httpOverloadStatusCode);
    };
    return { stream, post, step, ended, failed };
  });
  const release = () => {
    abortAll();
    signal.removeEventListener('abort', abortAll);
  };

  let events: AsyncIterable<ChoiceEvent>;
  if (choices.length === 1) {
    // One choice (the common case): the worker's stream read in place, no queue.
    events = new SingleChoiceEvents(choices[0]!, release);
  } else {
    const queue = mergeQueue<ChoiceEvent>();
    for (const { stream, post, step, ended, failed } of choices) {
      const producer = queue.producer();
      void (async () => {
        try {
          for await (const item of stream) {
            const event = step(item);
            if (event === undefined) break;
            producer.push(event);
            if (post.finished) break;
          }
          const last = ended();
          if (last) producer.push(last);
          producer.end();
        } catch (error) {
          const failure = failed(error);
          if (failure) producer.fail(failure);
          else producer.end();
        }
      })();
    }
    events = (async function* () {
      try {
        yield* queue.drain();
      } finally {
        release();
      }
    })();
  }

  return {
    events,
    usage: () => ({
      promptTokens: reportedPrompt > 0 ? reportedPrompt : usage.promptTokens,
      completionTokens: usage.completionTokens,
      ...(reportedCached !== undefined ? { cachedTokens: reportedCached } : {}),
    }),
    workerId: () => workerId,
  };
}

/** One choice's reading of its worker's stream (`startGeneration`). */
interface ChoiceReader {
  post: { readonly finished: boolean };
  step(item: unknown): ChoiceEvent | undefined;
  ended(): ChoiceEvent | undefined;
  failed(error: unknown): ApiError | undefined;
}

/** The events of a one-choice generation, read straight from its worker's stream. */
class SingleChoiceEvents extends Stage<unknown, ChoiceEvent> {
  #choice: ChoiceReader;
  #release: () => void;
  /** 0 reading, 1 the last event went out (the next read ends), 2 done. */
  #state = 0;

  constructor(choice: ChoiceReader & { stream: AsyncIterable<unknown> }, release: () => void) {
    super(choice.stream);
    this.#choice = choice;
    this.#release = release;
  }

  protected override before(): Step<ChoiceEvent> {
    if (this.#state === 2) return DONE;
    // The choice ended on its last event: the worker's stream is closed, not read further.
    if (this.#state === 1 || this.#choice.post.finished) return this.#finish(undefined, true);
    return AGAIN;
  }

  protected step(result: IteratorResult<unknown>): Step<ChoiceEvent> {
    if (result.done) return this.#finish(this.#choice.ended(), false);
    const event = this.#choice.step(result.value);
    if (event === undefined) return this.#finish(this.#choice.ended(), true);
    return { value: event, done: false };
  }

  protected override error(error: unknown): IteratorResult<ChoiceEvent> {
    const failure = this.#choice.failed(error);
    this.#close();
    if (failure) throw failure;
    return DONE;
  }

  protected override close(): void {
    this.#close();
  }

  #close() {
    if (this.#state === 2) return;
    this.#state = 2;
    this.#release();
  }

  /** The choice ended: `last` (if any) is its final event; `stop` closes the worker's stream. */
  #finish(last: ChoiceEvent | undefined, stop: boolean): IteratorResult<ChoiceEvent> {
    if (last) {
      this.#state = 1;
      return { value: last, done: false };
    }
    this.#close();
    if (stop) this.closeBelow();
    return DONE;
  }
}
