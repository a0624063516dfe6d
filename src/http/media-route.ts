/**
 * What the image and video route modules share: their request and response declarations, the
 * call context of a media request, and the two streamed shapes of a video: SSE of
 * `NvVideosResponse` chunks, and MJPEG (`multipart/x-mixed-replace`, one JPEG part per frame).
 */
import { z } from '@hono/zod-openapi';
import type { Context } from 'hono';
import { toApiError, toErrorBody } from '../core/errors.ts';
import { collectVideos, startVideos, type VideoStarted } from '../core/generate/media.ts';
import {
  type VideoGenerationRequest,
  VideoGenerationRequestSchema,
  VideosResponseSchema,
} from '../core/api/openai/media.ts';
import { annotationEvents, callContext } from './call.ts';
import { openAIError } from './openai-route.ts';
import { sseResponse } from './sse.ts';
import type { AppEnv } from './types.ts';

/** The errors an image or video route can answer. */
export const MEDIA_ERRORS = {
  400: openAIError('Invalid request, the worker refused it, or the model does not generate this'),
  404: openAIError('Unknown model'),
  413: openAIError('Body too large'),
  415: openAIError('Not JSON'),
  503: openAIError('No live worker, or shutting down'),
} as const;

export const VIDEO_REQUEST = {
  body: {
    required: true,
    content: { 'application/json': { schema: VideoGenerationRequestSchema } },
  },
} as const;

export const VIDEO_RESPONSES = {
  200: {
    description:
      'The video, or with `stream: true` an SSE stream of progress chunks (one frame each, ' +
      'base64 JPEG) ending in [DONE]',
    content: {
      'application/json': { schema: VideosResponseSchema },
      'text/event-stream': { schema: z.string() },
    },
  },
  ...MEDIA_ERRORS,
} as const;

/** The MJPEG part boundary (Dynamo's). */
export const MJPEG_BOUNDARY = 'frame';

export const VIDEO_FRAMES_RESPONSES = {
  200: {
    description: 'The frames as they are generated: `multipart/x-mixed-replace; boundary=frame`, ' +
      'one `image/jpeg` part per frame (a motion-JPEG stream a browser `<img>` can show)',
    content: { [`multipart/x-mixed-replace; boundary=${MJPEG_BOUNDARY}`]: { schema: z.string() } },
  },
  ...MEDIA_ERRORS,
} as const;

/** The call context of a media request: routing pins and annotations from its `nvext`. */
export function mediaCall(
  c: Context<AppEnv>,
  request: {
    nvext?: { backend_instance_id?: string | null; annotations?: string[] | null } | null;
  },
  options: { stream: boolean },
) {
  const nvext = request.nvext;
  return callContext(
    c,
    nvext
      ? { backend_instance_id: nvext.backend_instance_id, annotations: nvext.annotations }
      : undefined,
    options,
  );
}

/** `POST /v1/videos` and `/v1/videos/generations`: one JSON answer, or SSE with `stream`. */
export async function answerVideos(c: Context<AppEnv>, request: VideoGenerationRequest) {
  const stream = request.stream === true;
  const call = mediaCall(c, request, { stream });
  const started = await startVideos(c.get('core'), request, call, { streaming: stream });
  if (!stream) return c.json(await collectVideos(started), 200);
  return sseResponse(c, started.chunks, {
    onDisconnect: () => {
      started.metrics.disconnected();
      call.cancel();
    },
    onEnd: () => {},
    leading: annotationEvents(call),
  }) as unknown as ReturnType<typeof c.json<z.infer<typeof VideosResponseSchema>, 200>>;
}

function base64Bytes(text: string): Uint8Array {
  const binary = atob(text);
  const bytes = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
  return bytes;
}

/** The JPEG of a chunk: its first data entry, as base64 or a base64 data URL. */
function frameOf(chunk: z.infer<typeof VideosResponseSchema>): Uint8Array | undefined {
  const entry = chunk.data[0];
  const text = entry?.b64_json ?? entry?.url?.match(/^data:[^,]*;base64,(.*)$/s)?.[1];
  return text ? base64Bytes(text) : undefined;
}

/**
 * `POST /v1/videos/stream` and `/v1/videos/generations/stream`: each frame the worker streams is
 * written as `--frame\r\nContent-Type: image/jpeg\r\nContent-Length: N\r\n\r\n<bytes>\r\n`. A
 * failure after the first part ends the stream with one `application/json` part holding the
 * error body; the closing `--frame--` marks a natural end.
 */
export async function answerVideoFrames(c: Context<AppEnv>, request: VideoGenerationRequest) {
  const call = mediaCall(c, request, { stream: true });
  const started: VideoStarted = await startVideos(c.get('core'), request, call, {
    streaming: true,
    frames: true,
  });
  const { logger } = c.get('core');
  const requestId = c.get('requestId');
  const encoder = new TextEncoder();
  const iterator = started.chunks[Symbol.asyncIterator]();
  let ended = false;
  const body = new ReadableStream<Uint8Array>({
    async pull(controller) {
      try {
        for (;;) {
          const next = await iterator.next();
          if (next.done) {
            ended = true;
            controller.enqueue(encoder.encode(`--${MJPEG_BOUNDARY}--\r\n`));
            controller.close();
            return;
          }
          const frame = frameOf(next.value);
          if (!frame) continue;
          controller.enqueue(encoder.encode(
            `--${MJPEG_BOUNDARY}\r\nContent-Type: image/jpeg\r\nContent-Length: ${frame.length}\r\n\r\n`,
          ));
          controller.enqueue(frame);
          controller.enqueue(encoder.encode('\r\n'));
          return;
        }
      } catch (thrown) {
        ended = true;
        const error = toApiError(thrown);
        if (error.status >= 500) {
          logger.error('stream failed after the response started', {
            request_id: requestId,
            error: thrown,
          });
        }
        const json = encoder.encode(JSON.stringify(toErrorBody(error, 'openai')));
        controller.enqueue(encoder.encode(
          `--${MJPEG_BOUNDARY}\r\nContent-Type: application/json\r\nContent-Length: ${json.length}\r\n\r\n`,
        ));
        controller.enqueue(json);
        controller.enqueue(encoder.encode(`\r\n--${MJPEG_BOUNDARY}--\r\n`));
        controller.close();
      }
    },
    async cancel() {
      if (ended) return;
      ended = true;
      started.metrics.disconnected();
      call.cancel();
      await iterator.return?.();
    },
  });
  return c.body(body, 200, {
    'content-type': `multipart/x-mixed-replace; boundary=${MJPEG_BOUNDARY}`,
    'cache-control': 'no-cache',
  }) as unknown as ReturnType<typeof c.json<z.infer<typeof VideosResponseSchema>, 200>>;
}
