/**
 * The request plane to a plain OpenAI-compatible server (vLLM, SGLang, llama.cpp) registered
 * with `switchboard register`: its address is `{"openai": "http://host:port/v1"}`.
 *
 * Two kinds of body:
 * - `{ path, request }` (Text-input models): `request` is the client's OpenAI JSON, POSTed to
 *   `{base}/{path}`; each streamed chunk (or the one JSON answer) is an item.
 * - a `PreprocessedRequest` (Tokens-input models): sent to `{base}/completions` with the token
 *   ids as the prompt; each chunk becomes an `LLMEngineOutput` carrying `text`.
 * Items are wrapped as `{data}` like a Dynamo worker's `Annotated` output.
 */
import { PlaneError } from '../../core/plane/errors.ts';
import type { PlaneRequest, PlaneSendOptions, RequestPlaneClient } from '../../core/plane/types.ts';
import type { PreprocessedRequest } from '../../core/plane/worker.ts';
import type { TransportAddress } from '../../core/discovery/types.ts';

export interface OpenAIPlaneClientOptions {
  /** @default globalThis.fetch */
  fetch?: typeof fetch;
}

interface PassThrough {
  path: string;
  request: Record<string, unknown>;
}

const isPassThrough = (body: unknown): body is PassThrough =>
  typeof (body as PassThrough | null)?.path === 'string' &&
  typeof (body as PassThrough).request === 'object';

/** A Tokens-input request as a completions call on token ids. */
function completionsOf(request: PreprocessedRequest): Record<string, unknown> {
  const sampling = request.sampling_options ?? {};
  const stop = request.stop_conditions ?? {};
  const out: Record<string, unknown> = {
    model: request.model,
    prompt: request.token_ids,
    stream: true,
    max_tokens: stop.max_tokens ?? undefined,
    min_tokens: stop.min_tokens ?? undefined,
    ignore_eos: stop.ignore_eos ?? undefined,
    stop_token_ids: stop.stop_token_ids ?? undefined,
    temperature: sampling.temperature ?? undefined,
    top_p: sampling.top_p ?? undefined,
    top_k: sampling.top_k ?? undefined,
    seed: sampling.seed ?? undefined,
    presence_penalty: sampling.presence_penalty ?? undefined,
    frequency_penalty: sampling.frequency_penalty ?? undefined,
  };
  for (const key of Object.keys(out)) if (out[key] === undefined) delete out[key];
  return out;
}

interface CompletionChunk {
  choices?: Array<{ text?: string; finish_reason?: string | null }>;
  usage?: { prompt_tokens?: number; completion_tokens?: number; total_tokens?: number } | null;
}

function engineOutputOf(chunk: CompletionChunk): Record<string, unknown> {
  const choice = chunk.choices?.[0];
  return {
    token_ids: [],
    text: choice?.text ?? '',
    finish_reason: choice?.finish_reason ?? null,
    ...(chunk.usage ? { completion_usage: chunk.usage } : {}),
  };
}

/** Reads `data:` payloads from an SSE body until `[DONE]`; false if it ended without one. */
async function* sseData(body: ReadableStream<Uint8Array>): AsyncGenerator<string, boolean> {
  const reader = body.getReader();
  const decoder = new TextDecoder();
  let buffer = '';
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) return false;
      buffer += decoder.decode(value, { stream: true });
      let end: number;
      while ((end = buffer.search(/\r?\n\r?\n/)) >= 0) {
        const event = buffer.slice(0, end);
        buffer = buffer.slice(end).replace(/^\r?\n\r?\n/, '');
        const data = event.split(/\r?\n/).filter((l) => l.startsWith('data:')).map((l) =>
          l.slice(5).trimStart()
        ).join('\n');
        if (data === '[DONE]') return true;
        if (data) yield data;
      }
    }
  } finally {
    await reader.cancel().catch(() => {});
  }
}

async function errorOf(response: Response): Promise<PlaneError> {
  const text = await response.text().catch(() => '');
  let message = text.slice(0, 2000) || response.statusText;
  try {
    const parsed = JSON.parse(text) as { error?: { message?: string } | string; message?: string };
    message = typeof parsed.error === 'string'
      ? parsed.error
      : parsed.error?.message ?? parsed.message ?? message;
  } catch {
    // not JSON: keep the text
  }
  return new PlaneError('rejected', message, { status: response.status });
}

export function createOpenAIPlaneClient(
  options: OpenAIPlaneClientOptions = {},
): RequestPlaneClient {
  const fetchImpl = options.fetch ?? globalThis.fetch;
  return {
    async send(address: TransportAddress, request: PlaneRequest, { signal }: PlaneSendOptions) {
      if (!('openai' in address)) {
        throw new PlaneError('protocol', `Not an OpenAI address: ${JSON.stringify(address)}`);
      }
      const base = address.openai.replace(/\/+$/, '');
      const body: unknown = request.body;
      const passThrough = isPassThrough(body);
      const path = passThrough ? body.path : 'completions';
      const payload = passThrough ? body.request : completionsOf(body as PreprocessedRequest);
      let response: Response;
      try {
        response = await fetchImpl(`${base}/${path}`, {
          method: 'POST',
          headers: {
            'content-type': 'application/json',
            'x-request-id': request.id,
            // W3C trace context: an engine that traces (vLLM with OTel) joins the request's trace.
            ...(request.headers.traceparent ? { traceparent: request.headers.traceparent } : {}),
            ...(request.headers.tracestate ? { tracestate: request.headers.tracestate } : {}),
            ...(address.api_key ? { authorization: `Bearer ${address.api_key}` } : {}),
          },
          body: JSON.stringify(payload),
          signal,
        });
      } catch (error) {
        if (signal.aborted) throw error;
        throw new PlaneError(
          'cannot_connect',
          `Cannot reach ${base}: ${(error as Error).message}`,
          {
            cause: error,
          },
        );
      }
      if (!response.ok) throw await errorOf(response);
      const streamed = (response.headers.get('content-type') ?? '').includes('text/event-stream');
      const stream = response.body;
      return (async function* () {
        if (!streamed || !stream) {
          yield { data: await response.json() };
          return;
        }
        const events = sseData(stream);
        for (;;) {
          let next: IteratorResult<string, boolean>;
          try {
            next = await events.next();
          } catch (error) {
            if (signal.aborted) throw error;
            throw new PlaneError('disconnected', 'Stream ended before generation completed', {
              cause: error,
            });
          }
          if (next.done) {
            if (next.value || !passThrough) return;
            throw new PlaneError('disconnected', 'Stream ended before generation completed');
          }
          const chunk = JSON.parse(next.value) as CompletionChunk & { error?: unknown };
          if (chunk.error) {
            yield { event: 'error', comment: [JSON.stringify(chunk.error)] };
            return;
          }
          yield { data: passThrough ? chunk : engineOutputOf(chunk) };
        }
      })();
    },
    close: () => Promise.resolve(),
  };
}
