/**
 * The KServe v2 inference service over the core, with no transport: health, model metadata and
 * configuration, and inference routed through the completions pipeline (`startCompletion`).
 * `src/adapters/kserve-server.ts` binds it to a gRPC server.
 */
import type { Core } from '../../core.ts';
import type { ModelLookup } from '../../generate/call-context.ts';
import { modelTypesOf } from '../../discovery/model-card.ts';
import { BadRequestError, ModelNotFoundError, NotFoundError, NotReadyError } from '../../errors.ts';
import { collectCompletion, startCompletion, type Started } from '../../generate/chat.ts';
import type { CompletionResponse } from '../openai/schemas.ts';
import { validateCompletionRequest } from '../openai/validate.ts';
import {
  GrpcCode,
  grpcStatusOf,
  inferResponse,
  MODEL_VERSION,
  type ModelConfig,
  type ModelInferRequest,
  type ModelInferResponse,
  type ModelMetadataResponse,
  type ModelStreamInferResponse,
  textModelConfig,
  textModelMetadata,
  toCompletionRequest,
} from './protocol.ts';

/** One call as the transport sees it. */
export interface KserveCall {
  /** From the caller's `x-request-id` metadata, or fresh. */
  requestId: string;
  /** Aborts when the client cancels or goes away. */
  signal: AbortSignal;
  /** Headers to propagate to the worker. @default { 'x-request-id': requestId } */
  headers?: Record<string, string>;
}

export interface KserveService {
  serverLive(): boolean;
  serverReady(): boolean;
  modelReady(name: string, version?: string): boolean;
  serverMetadata(): { name: string; version: string; extensions: string[] };
  modelMetadata(name: string, version?: string): ModelMetadataResponse;
  modelConfig(name: string, version?: string): { config: ModelConfig };
  /** A unary inference; `streaming: true` is refused (use `streamInfer`). */
  infer(request: ModelInferRequest, call: KserveCall): Promise<ModelInferResponse>;
  /**
   * The responses to one request of a `ModelStreamInfer` stream: one per generated delta when
   * the request asks for `streaming`, else one folded response. A failure becomes one response
   * carrying `error_message`, so the stream stays usable for the client's next request.
   */
  streamInfer(
    request: ModelInferRequest,
    call: KserveCall,
  ): AsyncIterable<ModelStreamInferResponse>;
}

export interface KserveServiceOptions {
  /** What `ServerMetadata` reports. @default 'switchboard' */
  name?: string;
  /** @default '0.1.0' */
  version?: string;
}

/** A model KServe serves: a completions model, at version "1" (or no version asked). */
function textModel(core: ModelLookup, name: string, version = '') {
  const model = core.models.get(name);
  if (!model || !modelTypesOf(model.card).includes('Completions')) {
    throw new ModelNotFoundError(name);
  }
  if (version !== '' && version !== MODEL_VERSION) {
    throw new NotFoundError(`Model "${name}" has no version "${version}"`);
  }
  return model;
}

const choicesOf = (chunk: CompletionResponse) =>
  chunk.choices.map((c) => ({
    text: c.text,
    finishReason: c.finish_reason === null || c.finish_reason === undefined
      ? null
      : String(c.finish_reason),
  }));

/**
 * Takes the whole `Core`: a KServe call runs the completions pipeline (`ChatServices`, nearly every
 * member) and checks the lifecycle.
 */
export function createKserveService(core: Core, options: KserveServiceOptions = {}): KserveService {
  const start = async (
    request: ModelInferRequest,
    call: KserveCall,
    parsed = toCompletionRequest(request),
  ): Promise<{ started: Started<CompletionResponse>; stream: boolean; id: string }> => {
    if (core.lifecycle.phase !== 'ready') throw new NotReadyError();
    textModel(core, parsed.completion.model, request.model_version ?? '');
    const completion = validateCompletionRequest(parsed.completion, {
      ignoreUnsupported: core.config.ignoreUnsupportedFields,
    });
    const started = await startCompletion(core, completion, {
      requestId: call.requestId,
      headers: call.headers ?? { 'x-request-id': call.requestId },
      signal: call.signal,
    });
    // A client that leaves mid-answer is counted, and the workers stop.
    call.signal.addEventListener('abort', () => started.metrics.disconnected(), { once: true });
    return { started, stream: parsed.stream, id: parsed.id };
  };

  const failure = (error: unknown, call: KserveCall): ModelStreamInferResponse => {
    const status = grpcStatusOf(error);
    if (status.code === GrpcCode.INTERNAL) {
      core.logger.error('KServe stream request failed', { request_id: call.requestId, error });
    }
    return { error_message: status.message, infer_response: null };
  };

  const folded = async (started: Started<CompletionResponse>, id: string) => {
    const whole = await collectCompletion(started);
    return inferResponse(started.model, id, choicesOf(whole));
  };

  return {
    serverLive: () => core.lifecycle.phase !== 'stopping',
    serverReady: () => core.lifecycle.phase === 'ready',
    modelReady(name, version) {
      try {
        textModel(core, name, version);
      } catch {
        return false;
      }
      return core.lifecycle.phase === 'ready' && core.models.instances(name).length > 0;
    },
    serverMetadata: () => ({
      name: options.name ?? 'switchboard',
      version: options.version ?? '0.1.0',
      extensions: ['model_configuration', 'streaming'],
    }),
    modelMetadata: (name, version) => textModelMetadata(textModel(core, name, version).name),
    modelConfig: (name, version) => ({
      config: textModelConfig(textModel(core, name, version).name),
    }),
    async infer(request, call) {
      const parsed = toCompletionRequest(request);
      if (parsed.stream) {
        throw new BadRequestError(
          'Streaming is not supported for this endpoint; use ModelStreamInfer',
        );
      }
      const { started, id } = await start(request, call, parsed);
      return await folded(started, id);
    },
    async *streamInfer(request, call) {
      let response: ModelStreamInferResponse[] | AsyncIterable<CompletionResponse>;
      let id = request.id ?? '';
      let model = request.model_name;
      try {
        const begun = await start(request, call);
        id = begun.id;
        model = begun.started.model;
        response = begun.stream
          ? begun.started.chunks
          : [{ error_message: '', infer_response: await folded(begun.started, id) }];
      } catch (error) {
        yield failure(error, call);
        return;
      }
      if (Array.isArray(response)) {
        yield* response;
        return;
      }
      try {
        for await (const chunk of response) {
          if (chunk.choices.length === 0) continue;
          yield { error_message: '', infer_response: inferResponse(model, id, choicesOf(chunk)) };
        }
      } catch (error) {
        if (!call.signal.aborted) yield failure(error, call);
      }
    },
  };
}
