/**
 * Server-sent events for the OpenAI streaming routes: one `data:` frame per chunk (compact JSON),
 * `data: [DONE]` only on natural completion, one error frame (and no `[DONE]`) when the stream
 * fails after the first byte, and the client's disconnect reported so the worker is cancelled.
 */
import type { Context } from 'hono';
import { streamSSE } from 'hono/streaming';
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
}

export function sseResponse(
  c: Context<AppEnv>,
  chunks: AsyncIterable<unknown>,
  options: SseOptions,
) {
  const { logger, metrics } = c.get('core');
  const requestId = c.get('requestId');
  return streamSSE(c, async (stream) => {
    let disconnected = false;
    stream.onAbort(() => {
      if (disconnected) return;
      disconnected = true;
      options.onDisconnect();
    });
    // A client that stops reading blocks the next write: after the write timeout the worker is
    // cancelled and the response ended (docs/security.md#deadlines).
    const watch = c.get('stallWatchdog').watch(() => {
      metrics.httpStalledStreamsTotal.inc({});
      logger.warn('stream cancelled: the client read nothing within the write timeout', {
        request_id: requestId,
      });
      if (!disconnected) {
        disconnected = true;
        options.onDisconnect();
      }
      // Cancelling the response's source unblocks the pending write (aborting the writer
      // cannot: an in-flight write holds the abort until the client reads). The response then
      // ends short, with no [DONE]. On Node the socket itself is destroyed, since its unsent
      // buffer would otherwise hold it; Bun and Deno close it when the client goes away.
      stream.abort();
      const env = c.env as { incoming?: { socket?: { destroy(): void } } } | undefined;
      env?.incoming?.socket?.destroy();
    });
    const write = async (text: string) => {
      watch.begin();
      await stream.write(text);
      watch.end();
    };
    const iterator = chunks[Symbol.asyncIterator]();
    try {
      for (const { event, comment } of options.leading ?? []) {
        await write(`event: ${event}\n: ${comment.replace(/[\r\n]+/g, ' ')}\n\n`);
      }
      for (;;) {
        const next = await iterator.next();
        if (next.done || disconnected) break;
        watch.begin();
        await stream.writeSSE({
          data: jsonText(options.dataOf ? options.dataOf(next.value) : next.value),
          ...(options.eventOf ? { event: options.eventOf(next.value) } : {}),
        });
        watch.end();
      }
      if (disconnected) {
        await iterator.return?.();
      } else if (options.done !== false) {
        await stream.writeSSE({ data: '[DONE]' });
      }
      options.onEnd({ disconnected });
    } catch (thrown) {
      const error = toApiError(thrown);
      if (error.status >= 500) {
        logger.error('stream failed after the response started', {
          request_id: requestId,
          error: thrown,
        });
      }
      if (!disconnected) {
        const surface = c.get('surface');
        await stream.writeSSE({
          data: JSON.stringify(toErrorBody(error, surface)),
          // Anthropic's clients read an error only from a frame named `error`.
          ...(surface === 'anthropic' ? { event: 'error' } : {}),
        }).catch(() => {});
      }
      options.onEnd({ error, disconnected });
    } finally {
      watch.release();
    }
  });
}
