/**
 * Request migration (`--migration-limit N`, runtime reference §5.2): when a worker is lost, the
 * request continues on another worker. A lost worker is a stream that broke before its finish
 * (connection lost, or ended without the completion marker), a worker that could not be reached,
 * or a worker that left discovery and stopped streaming. The new attempt carries the prompt plus every
 * token generated so far and `max_tokens` reduced by them, so the client's stream goes on with no
 * gap and no repeat; usage is reported against the original prompt. A cancelled request is never
 * migrated; after N migrations the error reaches the client (an error event mid-stream).
 */
import type { Core } from '../core.ts';
import type { ServedModel } from '../discovery/models.ts';
import { PlaneError, STREAM_ENDED_EARLY } from '../plane/errors.ts';
import type { LLMEngineOutput, PreprocessedRequest } from '../plane/worker.ts';
import type { Dispatched } from './dispatch.ts';
import {
  dispatchGeneration,
  type GenerationCall,
  type GenerationServices,
} from './route-generation.ts';

/** The limit in force: the frontend's flag when set (> 0), else the model card's, else 0. */
export function migrationLimitOf(
  core: Pick<Core, 'config'>,
  model: ServedModel,
  body: PreprocessedRequest,
): number {
  // Structured output's decoder state cannot move to another worker.
  if (body.sampling_options?.guided_decoding) return 0;
  if (core.config.migrationLimit > 0) return core.config.migrationLimit;
  return model.card.migration_limit ?? 0;
}

/** A lost worker anywhere in the error's cause chain (dispatch wraps plane errors). */
function migratable(error: unknown): boolean {
  for (let e = error, depth = 0; e && depth < 5; depth++) {
    if (e instanceof PlaneError) return e.migratable;
    e = (e as { cause?: unknown }).cause;
  }
  return false;
}

/**
 * A worker that left discovery may be draining (it deregisters first, then finishes its
 * streams) or dead (its lease expired): its stream is abandoned and migrated only once it has
 * also sent nothing for this long.
 */
const GONE_STALL_MS = 2000;

/** A worker left discovery and stalled while it was streaming: the attempt is migrated. */
const workerGone = (id: string) =>
  new PlaneError('disconnected', `${STREAM_ENDED_EARLY}: worker ${id} left discovery`);

/**
 * Dispatches `body` like `dispatchGeneration`, retrying lost workers up to the migration limit,
 * and returns a stream that migrates mid-generation.
 */
export async function dispatchMigratable(
  core: GenerationServices,
  model: ServedModel,
  call: GenerationCall,
  body: PreprocessedRequest,
): Promise<Dispatched> {
  const limit = migrationLimitOf(core, model, body);
  if (limit === 0) return dispatchGeneration(core, model, call, body);
  let left = limit;
  const { logger, metrics } = core;
  const labels = (type: 'new_request' | 'ongoing_request') => ({
    model: model.name,
    migration_type: type,
  });

  /** One attempt, with its own abort (the client's, or its worker leaving discovery). */
  const attempt = async (request: PreprocessedRequest) => {
    const controller = new AbortController();
    const onClient = () => controller.abort(call.signal.reason);
    if (call.signal.aborted) onClient();
    else call.signal.addEventListener('abort', onClient, { once: true });
    let instanceId: string | undefined;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const progress = { at: core.monotonic() };
    const watchdog = () => {
      timer = undefined;
      if (controller.signal.aborted || !instanceId) return;
      const idle = core.monotonic() - progress.at;
      if (idle >= GONE_STALL_MS) controller.abort(workerGone(instanceId));
      else timer = setTimeout(watchdog, GONE_STALL_MS - idle);
    };
    /** Whether the worker is still in discovery (in the model's decode or prefill pool). */
    const listed = (id: string) =>
      core.models.instances(model.name).some((i) => i.instanceId === id) ||
      core.models.prefillInstances(model.name).some((i) => i.instanceId === id);
    const stopWatching = core.models.onChange((names) => {
      if (!instanceId || timer || !names.includes(model.name)) return;
      if (!listed(instanceId)) timer = setTimeout(watchdog, GONE_STALL_MS);
    });
    const release = () => {
      stopWatching();
      if (timer) clearTimeout(timer);
      call.signal.removeEventListener('abort', onClient);
    };
    try {
      const dispatched = await dispatchGeneration(
        core,
        model,
        {
          ...call,
          signal: controller.signal,
          // Known before the worker answers: a worker that hangs before its first item is
          // watched too.
          onSelected: (instance) => {
            call.onSelected?.(instance);
            instanceId = instance.instanceId;
            progress.at = core.monotonic();
            if (!timer && !listed(instance.instanceId)) timer = setTimeout(watchdog, GONE_STALL_MS);
          },
        },
        request,
      );
      instanceId = dispatched.instance.instanceId;
      return { dispatched, release, progress };
    } catch (error) {
      release();
      throw error;
    }
  };

  /** `model_migration_duration_seconds`: from the loss to running again (or giving up). */
  const migrationTook = (
    type: 'new_request' | 'ongoing_request',
    outcome: 'success' | 'failure',
    since: number,
  ) =>
    metrics.modelMigrationDuration.observe(
      { ...labels(type), outcome },
      (core.monotonic() - since) / 1000,
    );

  /**
   * Dispatches, retrying workers that cannot be reached while attempts are left. `lostAt` is
   * when the worker of an ongoing request was lost (the migration's start).
   */
  const start = async (
    request: PreprocessedRequest,
    type: 'new_request' | 'ongoing_request',
    lostAt?: number,
  ) => {
    for (;;) {
      try {
        const started = await attempt(request);
        if (lostAt !== undefined) migrationTook(type, 'success', lostAt);
        return started;
      } catch (error) {
        if (call.signal.aborted || !migratable(error) || left === 0) {
          if (lostAt !== undefined) migrationTook(type, 'failure', lostAt);
          throw error;
        }
        lostAt ??= core.monotonic();
        left--;
        metrics.modelMigrationTotal.inc(labels(type));
        logger.warn('worker lost before the request started; retrying on another worker', {
          request_id: call.requestId,
          error,
          migrations_left: left,
        });
      }
    }
  };

  let current = await start(body, 'new_request');
  const first = current.dispatched;

  async function* follow(): AsyncIterable<unknown> {
    const generated: number[] = [];
    /** Tokens generated before the current attempt started (its prompt carries them). */
    let carried = 0;
    /** Past `--migration-max-seq-len`: no longer tracked, no longer migrated. */
    let tooLong = false;
    const maxSeqLen = core.config.migrationMaxSeqLen;
    try {
      for (;;) {
        try {
          for await (const item of current.dispatched.stream) {
            const output = item as LLMEngineOutput;
            current.progress.at = core.monotonic();
            if (output?.finish_reason === 'cancelled' && !call.signal.aborted) {
              // The engine shut down under the request (Dynamo's EngineShutdown): migratable.
              throw new PlaneError(
                'disconnected',
                'The engine stopped the request (shutting down)',
              );
            }
            if (output?.token_ids?.length && !tooLong) {
              generated.push(...output.token_ids);
              if (maxSeqLen !== undefined && body.token_ids.length + generated.length > maxSeqLen) {
                tooLong = true;
                metrics.modelMigrationMaxSeqLenExceededTotal.inc({ model: model.name });
              }
            }
            if (carried > 0 && output?.completion_usage) {
              // The new worker counts the carried tokens as prompt: report the original split.
              const usage = output.completion_usage;
              const prompt = Math.max(0, (usage.prompt_tokens ?? 0) - carried);
              const cached = usage.prompt_tokens_details?.cached_tokens;
              output.completion_usage = {
                ...usage,
                prompt_tokens: prompt,
                completion_tokens: (usage.completion_tokens ?? 0) + carried,
                ...(typeof cached === 'number'
                  ? {
                    prompt_tokens_details: {
                      ...usage.prompt_tokens_details,
                      cached_tokens: Math.min(cached, prompt),
                    },
                  }
                  : {}),
              };
            }
            yield item;
            if (output?.finish_reason) return;
          }
          return;
        } catch (error) {
          if (call.signal.aborted || !migratable(error) || tooLong) throw error;
          const lostAt = core.monotonic();
          const lost = current.dispatched.instance.instanceId;
          current.release();
          core.inhibitor.report(lost);
          if (left === 0) {
            logger.warn('cannot recreate stream: migration limit reached', {
              request_id: call.requestId,
              limit,
              error,
            });
            throw error;
          }
          left--;
          metrics.modelMigrationTotal.inc(labels('ongoing_request'));
          logger.warn('stream disconnected; recreating stream on another worker', {
            request_id: call.requestId,
            instance_id: lost,
            generated: generated.length,
            migrations_left: left,
            error,
          });
          const stop = body.stop_conditions ?? {};
          const maxTokens = stop.max_tokens;
          if (maxTokens !== undefined && maxTokens !== null && generated.length >= maxTokens) {
            // Everything was generated; only the finish was lost.
            yield { token_ids: [], finish_reason: 'length' } satisfies LLMEngineOutput;
            return;
          }
          carried = generated.length;
          const next: PreprocessedRequest = {
            ...body,
            token_ids: [...body.token_ids, ...generated],
            stop_conditions: {
              ...stop,
              ...(maxTokens !== undefined && maxTokens !== null
                ? { max_tokens: maxTokens - generated.length }
                : {}),
              ...(stop.min_tokens
                ? { min_tokens: Math.max(0, stop.min_tokens - generated.length) }
                : {}),
            },
          };
          try {
            current = await start(next, 'ongoing_request', lostAt);
          } catch (retryError) {
            logger.warn('cannot recreate stream', {
              request_id: call.requestId,
              error: retryError,
            });
            throw retryError;
          }
        }
      }
    } finally {
      current.release();
    }
  }

  return { ...first, stream: follow() };
}
