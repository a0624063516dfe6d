/**
 * `POST /v1/images/generations` and `POST /v1/videos*`: the request goes to a worker registered
 * with the `Images` (or `Videos`) model type as it came (typed fields at the top level, unknown
 * ones under `extra_args.media_passthrough`), and the worker's `NvImagesResponse` /
 * `NvVideosResponse` items come back: images folded into one answer, videos folded or streamed.
 */
import type { Core } from '../core.ts';
import { type ModelType, modelTypesOf } from '../discovery/model-card.ts';
import { type ApiError, BadRequestError, InternalError, toApiError } from '../errors.ts';
import { PlaneError } from '../plane/errors.ts';
import {
  type ImageGenerationRequest,
  type ImagesResponse,
  mediaWorkerBody,
  type VideoGenerationRequest,
  type VideosResponse,
} from '../api/openai/media.ts';
import { type CallContext, type ModelLookup, servedModel } from './call-context.ts';
import {
  type DispatchServices,
  dispatchTo,
  planeErrorToApi,
  WorkerStreamError,
} from '../dispatch/dispatch.ts';
import {
  errorTypeOf,
  type RequestMetrics,
  startRequestMetrics,
} from '../metrics/request-metrics.ts';

/** The model an image request without `model` goes to (Dynamo's default). */
export const DEFAULT_IMAGE_MODEL = 'diffusion';

/** What a worker may put in an item; everything is checked before it reaches the client. */
interface WorkerMediaItem {
  id?: unknown;
  created?: unknown;
  status?: unknown;
  progress?: unknown;
  data?: unknown;
  error?: unknown;
  [key: string]: unknown;
}

function requireType(core: ModelLookup, name: string, type: ModelType, what: string) {
  const model = servedModel(core, name);
  if (!modelTypesOf(model.card).includes(type)) {
    throw new BadRequestError(`Model "${model.name}" does not generate ${what}`, {
      param: 'model',
    });
  }
  return model;
}

/**
 * A worker's error as the client sees it: the worker refusing the arguments (Dynamo's
 * `InvalidArgument`, our workers' "Invalid request: ...") is a 400 with its message; anything
 * else is a 500 whose message stays in the log.
 */
function mediaError(error: unknown, overloadStatus: number): ApiError {
  // The worker's own words: an error item, or its handler failing before the first item
  // (which `dispatch()` has already turned into a 500 that keeps the plane error as its cause).
  const cause = error instanceof InternalError ? error.cause : error;
  const workerMessage = cause instanceof WorkerStreamError ||
      (cause instanceof PlaneError && cause.kind === 'worker')
    ? cause.message
    : undefined;
  if (
    workerMessage !== undefined && /^(invalid ?argument|invalid request)\b/i.test(workerMessage)
  ) {
    return new BadRequestError(workerMessage, { cause: error });
  }
  if (error instanceof WorkerStreamError) {
    return new InternalError('Internal server error', { cause: error });
  }
  if (error instanceof PlaneError) return planeErrorToApi(error, overloadStatus);
  return toApiError(error);
}

function itemOf(value: unknown, what: string): WorkerMediaItem {
  if (!value || typeof value !== 'object' || Array.isArray(value)) {
    throw new InternalError(`Failed to decode ${what} payload`);
  }
  const item = value as WorkerMediaItem;
  if (item.data !== undefined && item.data !== null && !Array.isArray(item.data)) {
    throw new InternalError(`Failed to decode ${what} payload`);
  }
  if (typeof item.error === 'string' && item.error !== '' && item.status === 'failed') {
    throw new WorkerStreamError(item.error);
  }
  return item;
}

/** Only the data entries' string fields a client can use: urls, base64 and small metadata. */
function dataOf(item: WorkerMediaItem): Array<Record<string, unknown>> {
  return ((item.data ?? []) as unknown[]).filter((d): d is Record<string, unknown> =>
    !!d && typeof d === 'object'
  );
}

const seconds = (core: Pick<Core, 'now'>) => Math.floor(core.now() / 1000);

/** What image and video generation use: a dispatch and the clocks. */
export type MediaServices = DispatchServices & Pick<Core, 'now' | 'monotonic'>;

export async function createImages(
  core: MediaServices,
  request: ImageGenerationRequest,
  call: CallContext,
): Promise<ImagesResponse> {
  const model = requireType(core, request.model ?? DEFAULT_IMAGE_MODEL, 'Images', 'images');
  const metrics = startRequestMetrics(core.metrics, {
    model: model.name,
    endpoint: 'images',
    stream: false,
    now: core.monotonic,
  });
  const overload = core.config.httpOverloadStatusCode;
  try {
    const body = mediaWorkerBody(request, { kind: 'image', model: model.name });
    let response: ImagesResponse | undefined;
    try {
      const { stream } = await dispatchTo(core, { model: model.name, call, body });
      for await (const value of stream) {
        const item = itemOf(value, 'image');
        const { id: _id, data: _data, status: _status, progress: _progress, ...rest } = item;
        response = {
          ...(response ?? {}),
          ...rest,
          created: typeof item.created === 'number' ? Math.trunc(item.created) : seconds(core),
          data: [...(response?.data ?? []), ...dataOf(item)],
        } as ImagesResponse;
      }
    } catch (error) {
      throw mediaError(error, overload);
    }
    if (!response) throw new InternalError('The worker sent no image');
    metrics.finish({ errorType: '' });
    return response;
  } catch (error) {
    metrics.finish({ errorType: errorTypeOf(toApiError(error).status, overload) });
    throw error;
  }
}

/** A video request under way: the worker accepted it and sent its first item. */
export interface VideoStarted {
  model: string;
  /** Every item, normalised to `NvVideosResponse` (the first one already read). */
  chunks: AsyncIterable<VideosResponse>;
  metrics: RequestMetrics;
}

/**
 * Sends a video request to a `Videos` worker and waits for its first item, so a refused request
 * still gets its HTTP status. `streaming` asks the worker for one item per frame (`stream: true`);
 * `frames` asks for JPEG frames (`output_format: "mjpeg"`), for the multipart route.
 */
export async function startVideos(
  core: MediaServices,
  request: VideoGenerationRequest,
  call: CallContext,
  options: { streaming: boolean; frames?: boolean },
): Promise<VideoStarted> {
  const model = requireType(core, request.model, 'Videos', 'videos');
  const metrics = startRequestMetrics(core.metrics, {
    model: model.name,
    endpoint: 'videos',
    stream: options.streaming,
    now: core.monotonic,
  });
  const overload = core.config.httpOverloadStatusCode;
  const fail = (error: unknown) => {
    const api = mediaError(error, overload);
    metrics.finish({ errorType: errorTypeOf(api.status, overload) });
    return api;
  };
  const created = seconds(core);
  const id = `video-${call.requestId}`;
  const normalise = (value: unknown): VideosResponse => {
    const item = itemOf(value, 'video');
    return {
      ...item,
      id: typeof item.id === 'string' && item.id !== '' ? item.id : id,
      object: 'video',
      model: model.name,
      status: typeof item.status === 'string' ? item.status : 'completed',
      progress: typeof item.progress === 'number' ? Math.trunc(item.progress) : 100,
      created: typeof item.created === 'number' ? Math.trunc(item.created) : created,
      data: dataOf(item),
    } as VideosResponse;
  };
  let iterator: AsyncIterator<unknown>;
  let first: VideosResponse;
  try {
    const body = mediaWorkerBody(request, {
      kind: 'video',
      model: model.name,
      overrides: {
        stream: options.streaming,
        ...(options.frames ? { output_format: 'mjpeg' } : {}),
      },
    });
    const { stream } = await dispatchTo(core, { model: model.name, call, body });
    iterator = stream[Symbol.asyncIterator]();
    const next = await iterator.next();
    if (next.done) throw new InternalError('The worker sent no video');
    first = normalise(next.value);
  } catch (error) {
    throw fail(error);
  }
  async function* chunks(): AsyncIterable<VideosResponse> {
    let finished = false;
    try {
      yield first;
      for (let next = await iterator.next(); !next.done; next = await iterator.next()) {
        yield normalise(next.value);
      }
      finished = true;
      metrics.finish({ errorType: '' });
    } catch (error) {
      throw fail(error);
    } finally {
      if (!finished) {
        // The client left (or the stream failed): stop reading; the call's signal cancels.
        await iterator.return?.();
        metrics.finish({ errorType: 'cancelled' });
      }
    }
  }
  return { model: model.name, chunks: chunks(), metrics };
}

/** Folds a video request's items into one `NvVideosResponse`: the last item, every `data`. */
export async function collectVideos(started: VideoStarted): Promise<VideosResponse> {
  let last: VideosResponse | undefined;
  const data: VideosResponse['data'] = [];
  for await (const chunk of started.chunks) {
    last = chunk;
    data.push(...chunk.data);
  }
  return { ...(last as VideosResponse), data };
}
