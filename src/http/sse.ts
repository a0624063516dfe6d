/**
 * Server-sent events for the OpenAI streaming routes: one `data:` frame per chunk (compact JSON),
 * `data: [DONE]` only on natural completion, one error frame (and no `[DONE]`) when the stream
 * fails after the first byte, and the client's disconnect reported so the worker is cancelled.
 * Frames are enqueued as bytes on a pull-based body stream: one frame per pull, so the client's
 * pace (backpressure) paces the worker's stream, and a client that stops reading trips the
 * stall watchdog.
 */
import type { Context } from 'hono';
import { type ApiError, toApiError, toErrorBody } from '../core/errors.ts';
import { jsonText } from '../core/json.ts';
import type { AppEnv } from './types.ts';

export interface SseOptions {
  /** The client went away before the end (the caller cancels the worker). */
  onDisconnect(): void;
  /** The stream ended: `error` is set when it failed, `disconnected` when the client left. */
  onEnd(result: { error?: ApiError; disconnected: boolean }): void;
  /** Frames with an `event:` name, for APIs that name them (Responses, Anthropic). @default none */
  eventOf?: (chunk: unknown) => string | undefined;
  /** What goes in `data:` for a chunk. @default the chunk itself */
  dataOf?: (chunk: unknown) => unknown;
  /** Write `data: [DONE]` at the natural end. @default true */
  done?: boolean;
  /** Events sent before the first chunk as `event: name` plus a `: comment` line (annotations). @default none */
  leading?: Array<{ event: string; comment: string }>;
  /**
   * The whole SSE text of a chunk (`data: ...\n\n`), built faster than the generic path from a
   * pre-serialized per-stream prefix; undefined falls back to `eventOf` / `dataOf`. @default none
   */
  frameOf?: (chunk: unknown) => string | undefined;
}

const encoder = new TextEncoder();
const DONE = 'data: [DONE]\n\n';
/** Most frames enqueued as one piece. */
const MAX_BATCH = 64;
/**
 * Microtask turns given to a chunk that is already on its way (an item the worker's stream has
 * buffered resolves within a few turns, through the pipeline's awaits); a chunk that is not
 * there by then is left for the next pull, and what was taken goes out now.
 */
const SOON_TURNS = 12;

/** Whether a promise settled, without a closure per promise. */
class Settled {
  settled = false;
  readonly mark = () => void (this.settled = true);

  /** Whether `promise` settles within `SOON_TURNS` microtask turns. */
  async soon(promise: Promise<unknown>): Promise<boolean> {
    // A promise checked before this one settled before it was awaited: it cannot mark late.
    this.settled = false;
    promise.then(this.mark, this.mark);
    for (let turn = 0; turn < SOON_TURNS && !this.settled; turn++) await undefined;
    return this.settled;
  }
}

export function sseResponse(
  c: Context<AppEnv>,
  chunks: AsyncIterable<unknown>,
  options: SseOptions,
) {
  const { logger, metrics } = c.get('core');
  const requestId = c.get('requestId');
  const iterator = chunks[Symbol.asyncIterator]();
  const { eventOf, dataOf, frameOf } = options;
  /** The SSE text of a chunk: the caller's fast framing, else `event:` and `data:` lines. */
  const frame = (chunk: unknown): string => {
    const fast = frameOf?.(chunk);
    if (fast !== undefined) return fast;
    const data = `data: ${jsonText(dataOf ? dataOf(chunk) : chunk)}\n\n`;
    const event = eventOf?.(chunk);
    return event ? `event: ${event}\n${data}` : data;
  };
  let disconnected = false;
  let ended = false;
  /** A chunk asked for that was not there yet: the next pull waits for it. */
  let pending: Promise<IteratorResult<unknown>> | undefined;
  const settled = new Settled();
  let controller!: ReadableStreamDefaultController<Uint8Array>;
  const disconnect = () => {
    if (disconnected) return;
    disconnected = true;
    options.onDisconnect();
  };
  /** Ends the response once; the upstream is closed when the client left. */
  const end = (result: { error?: ApiError }) => {
    if (ended) return;
    ended = true;
    watch.release();
    if (disconnected) void Promise.resolve(iterator.return?.()).catch(() => {});
    options.onEnd({ ...result, disconnected });
  };
  // A client that stops reading stops pulling: once a frame waited longer than the write timeout
  // the worker is cancelled and the response ended (docs/security.md#deadlines).
  const watch = c.get('stallWatchdog').watch(() => {
    metrics.httpStalledStreamsTotal.inc({});
    logger.warn('stream cancelled: the client read nothing within the write timeout', {
      request_id: requestId,
    });
    disconnect();
    // The response ends short, with no [DONE]. On Node the socket itself is destroyed, since its
    // unsent buffer would otherwise hold it; Bun and Deno close it when the client goes away.
    try {
      controller.close();
    } catch {
      // already closed
    }
    end({});
    const env = c.env as { incoming?: { socket?: { destroy(): void } } } | undefined;
    env?.incoming?.socket?.destroy();
  });
  const fail = (thrown: unknown) => {
    const error = toApiError(thrown);
    if (error.status >= 500) {
      logger.error('stream failed after the response started', {
        request_id: requestId,
        error: thrown,
      });
    }
    if (!disconnected) {
      const surface = c.get('surface');
      // Anthropic's clients read an error only from a frame named `error`.
      const data = `data: ${JSON.stringify(toErrorBody(error, surface))}\n\n`;
      controller.enqueue(encoder.encode(surface === 'anthropic' ? `event: error\n${data}` : data));
      controller.close();
    }
    end({ error });
  };
  const body = new ReadableStream<Uint8Array>({
    start(c) {
      controller = c;
      let leading = '';
      for (const { event, comment } of options.leading ?? []) {
        leading += `event: ${event}\n: ${comment.replace(/[\r\n]+/g, ' ')}\n\n`;
      }
      if (leading) {
        controller.enqueue(encoder.encode(leading));
        watch.begin();
      }
    },
    // A pull takes the next chunk, plus those already there (the worker's items of one read),
    // and enqueues their frames as one piece: the runtime pulls again once the client took it,
    // so a slow reader slows the worker's stream down (backpressure), and a stalled one trips
    // the watch.
    async pull() {
      watch.end();
      if (ended) return;
      let text = '';
      let count = 0;
      let finished = false;
      try {
        for (;;) {
          const promise = pending ?? iterator.next();
          pending = undefined;
          if (count > 0 && !(await settled.soon(promise))) {
            pending = promise;
            break;
          }
          const next = await promise;
          if (ended) return;
          if (disconnected) return end({});
          if (next.done) {
            finished = true;
            break;
          }
          text += frame(next.value);
          if (++count === MAX_BATCH) break;
        }
      } catch (thrown) {
        if (ended) return;
        if (text) controller.enqueue(encoder.encode(text));
        return fail(thrown);
      }
      if (finished && options.done !== false) text += DONE;
      if (text) controller.enqueue(encoder.encode(text));
      if (!finished) return watch.begin();
      controller.close();
      end({});
    },
    cancel() {
      // The client went away (every runtime cancels the body then).
      disconnect();
      end({});
    },
  });
  c.header('Content-Type', 'text/event-stream');
  c.header('Cache-Control', 'no-cache');
  c.header('Connection', 'keep-alive');
  return c.newResponse(body);
}
