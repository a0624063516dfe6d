/**
 * `POST /v1/embeddings`: inputs tokenized by the frontend (Tokens-input models) or forwarded
 * (Text-input ones), one worker request for all of them, vectors decoded from base64 unless the
 * client asked for base64.
 */
import type { Core } from '../core.ts';
import { modelTypesOf } from '../discovery/model-card.ts';
import { decodeEmbedding } from '../embedding-codec.ts';
import { BadRequestError, InternalError } from '../errors.ts';
import type { EmbeddingRequest, EmbeddingResponse } from '../api/openai/schemas.ts';
import { EmbeddingWorkerOutputSchema } from '../plane/worker.ts';
import { type CallContext, servedModel, upstreamName } from './call-context.ts';
import { type DispatchServices, dispatchTo } from '../dispatch/dispatch.ts';
import { errorTypeOf, startRequestMetrics } from '../metrics/request-metrics.ts';
import { toApiError } from '../errors.ts';

function inputsOf(input: EmbeddingRequest['input']): Array<string | number[]> {
  if (typeof input === 'string') return [input];
  if (input.length > 0 && typeof input[0] === 'number') return [input as number[]];
  return input as Array<string | number[]>;
}

/** What `createEmbeddings()` uses: a dispatch, the tokenizers, the clock. */
export type EmbeddingServices = DispatchServices & Pick<Core, 'preprocessors' | 'monotonic'>;

export async function createEmbeddings(
  core: EmbeddingServices,
  request: EmbeddingRequest,
  call: CallContext,
): Promise<EmbeddingResponse> {
  const model = servedModel(core, request.model);
  if (!modelTypesOf(model.card).includes('Embedding')) {
    throw new BadRequestError(`Model "${model.name}" does not serve embeddings`, {
      param: 'model',
    });
  }
  const metrics = startRequestMetrics(core.metrics, {
    model: model.name,
    endpoint: 'embeddings',
    stream: false,
    now: core.monotonic,
  });
  const start = core.monotonic();
  try {
    const text = model.card.model_input === 'Text';
    let body: unknown;
    if (text) {
      body = {
        path: 'embeddings',
        request: { ...request, model: upstreamName(model.card), nvext: undefined },
      };
    } else {
      const pre = await core.preprocessors.get(model);
      const tokenIds = await Promise.all(
        inputsOf(request.input).map((i) =>
          typeof i === 'string' ? pre.tokenizePrompt(i) : Promise.resolve(i)
        ),
      );
      body = {
        model: model.name,
        token_ids: tokenIds,
        dimensions: request.dimensions ?? undefined,
      };
    }
    const { stream } = await dispatchTo(core, { model: model.name, call, body });
    let answer: unknown;
    for await (const item of stream) answer ??= item;
    let response: EmbeddingResponse;
    if (text) {
      response = { ...(answer as EmbeddingResponse), model: model.name };
    } else {
      const parsed = EmbeddingWorkerOutputSchema.safeParse(answer);
      if (!parsed.success) {
        throw new InternalError('Failed to decode embedding payload', { cause: parsed.error });
      }
      const base64 = request.encoding_format === 'base64';
      response = {
        object: 'list',
        data: parsed.data.embeddings.map((vector, index) => ({
          object: 'embedding' as const,
          index,
          embedding: base64 ? vector : decodeEmbedding(vector),
        })),
        model: model.name,
        usage: {
          prompt_tokens: parsed.data.prompt_tokens,
          total_tokens: parsed.data.prompt_tokens,
        },
      };
    }
    metrics.prompt(response.usage.prompt_tokens);
    core.metrics.embeddingLatency.observe({ model: model.name }, (core.monotonic() - start) / 1000);
    metrics.finish({ errorType: '' });
    return response;
  } catch (error) {
    metrics.finish({
      errorType: errorTypeOf(toApiError(error).status, core.config.httpOverloadStatusCode),
    });
    throw error;
  }
}
