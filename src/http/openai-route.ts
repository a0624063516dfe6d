/** What the OpenAI route modules share: their error responses, and answering a started request. */
import type { Context } from 'hono';
import type { Started } from '../core/generate/chat.ts';
import { OpenAIErrorSchema } from '../core/api/openai/schemas.ts';
import { annotationEvents, type callContext } from './call.ts';
import { sseResponse } from './sse.ts';
import type { AppEnv } from './types.ts';
import { jsonText } from '../core/json.ts';

/** An error response in OpenAI's envelope, for `createRoute({ responses })`. */
export const openAIError = (description: string) => ({
  description,
  content: { 'application/json': { schema: OpenAIErrorSchema } },
});

/** The errors every inference route can answer. */
export const INFERENCE_ERRORS = {
  400: openAIError('Invalid request'),
  404: openAIError('Unknown model'),
  413: openAIError('Body too large'),
  415: openAIError('Not JSON'),
  503: openAIError('No live worker, or shutting down'),
} as const;

/**
 * Streams `started` as SSE (the client's disconnect cancels the workers), or folds it with
 * `collect` into one JSON answer. Typed as the route's JSON answer: a stream is the same 200.
 */
export async function answer<Chunk, Whole>(
  c: Context<AppEnv>,
  request: {
    started: Started<Chunk>;
    call: ReturnType<typeof callContext>;
    stream: boolean;
    collect: (started: Started<Chunk>) => Promise<Whole>;
  },
) {
  const { started, call } = request;
  if (!request.stream) {
    // Exact JSON text: c.json() cannot write the bigint of a u64 id (nvext.worker_id).
    const body = jsonText(await request.collect(started));
    // `never`, as in routes/health.ts: the route's answer type comes from its schema.
    return c.body(body, 200, { 'content-type': 'application/json' }) as never;
  }
  return sseResponse(c, started.chunks, {
    onDisconnect: () => {
      started.metrics.disconnected();
      call.cancel();
    },
    onEnd: () => {},
    leading: annotationEvents(call),
    ...(started.frame ? { frameOf: started.frame } : {}),
  }) as unknown as ReturnType<typeof c.json<Whole, 200>>;
}
