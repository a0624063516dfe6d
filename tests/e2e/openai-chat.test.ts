/**
 * Chat completions end to end on every request plane: the frontend and simulated workers in this
 * process, requests over real sockets (tcp, http, nats), unary and streamed answers, and a client
 * abort that reaches the worker.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { currentRuntime } from '../helpers/process.ts';
import {
  metricValue,
  MODEL,
  type Plane,
  readSse,
  sseData,
  type Stack,
  startStack,
} from '../helpers/stack.ts';
import { waitFor } from '../helpers/wait.ts';

/** A slow model on its own worker, so a long stream is still running when the client leaves. */
const SLOW = 'slow-model';
const messages = [{ role: 'user', content: 'Tell me a story' }];

/** Every token of the mocker is one word: a space and 3 to 9 lower-case letters. */
function countWords(text: string): number {
  assert.match(text, /^( [a-z]{3,9})*$/, `mocker text ${JSON.stringify(text)}`);
  return text.split(' ').length - 1;
}

interface ChatChunk {
  object: string;
  model: string;
  choices: Array<{
    index: number;
    delta: { role?: string; content?: string };
    finish_reason: string | null;
  }>;
  usage?: { prompt_tokens: number; completion_tokens: number; total_tokens: number } | null;
}

async function withStack(plane: Plane, run: (stack: Stack) => Promise<void>) {
  const stack = await startStack({
    plane,
    mockers: [{}, { name: SLOW, speedup: 1 }],
  });
  try {
    await run(stack);
  } finally {
    await stack.close();
  }
}

/** Reads from an SSE body until `count` data frames arrived; returns them. */
async function readFrames(body: ReadableStream<Uint8Array>, count: number): Promise<string[]> {
  const reader = body.getReader();
  const decoder = new TextDecoder();
  let text = '';
  try {
    while (sseData(text).length < count) {
      const { value, done } = await reader.read();
      if (done) break;
      text += decoder.decode(value, { stream: true });
    }
  } finally {
    reader.releaseLock();
  }
  return sseData(text);
}

for (const plane of ['tcp', 'http', 'nats'] as const) {
  describe(`chat completions over the ${plane} request plane on ${currentRuntime()}`, () => {
    test('unary, streamed, and a client abort that cancels the worker', async () => {
      await withStack(plane, async (stack) => {
        // --- stream: false
        const unary = await stack.post('/v1/chat/completions', {
          model: MODEL,
          messages,
          max_tokens: 12,
        });
        assert.equal(unary.status, 200);
        // A generated request id, once (src/http/app.ts, echoRequestId).
        assert.match(unary.headers.get('x-request-id') ?? '', /^[0-9a-f-]{36}$/);
        const answer = await unary.json() as {
          object: string;
          model: string;
          choices: Array<{ message: { role: string; content: string }; finish_reason: string }>;
          usage: { prompt_tokens: number; completion_tokens: number; total_tokens: number };
        };
        assert.equal(answer.object, 'chat.completion');
        assert.equal(answer.model, MODEL);
        assert.equal(answer.choices.length, 1);
        assert.equal(answer.choices[0]?.message.role, 'assistant');
        assert.equal(answer.choices[0]?.finish_reason, 'length');
        assert.equal(countWords(answer.choices[0]?.message.content ?? ''), 12);
        assert.equal(answer.usage.completion_tokens, 12);
        assert.ok(answer.usage.prompt_tokens > 0);
        assert.equal(
          answer.usage.total_tokens,
          answer.usage.prompt_tokens + answer.usage.completion_tokens,
        );

        // --- stream: true with the usage chunk
        const streamed = await stack.post('/v1/chat/completions', {
          model: MODEL,
          messages,
          max_tokens: 9,
          stream: true,
          stream_options: { include_usage: true },
        });
        assert.equal(streamed.status, 200);
        assert.match(streamed.headers.get('content-type') ?? '', /^text\/event-stream/);
        assert.match(streamed.headers.get('x-request-id') ?? '', /^[0-9a-f-]{36}$/);
        const { chunks, done } = await readSse<ChatChunk>(streamed);
        assert.ok(done, 'the stream ends with data: [DONE]');
        const usageChunk = chunks[chunks.length - 1] as ChatChunk;
        assert.deepEqual(usageChunk.choices, []);
        assert.equal(usageChunk.usage?.completion_tokens, 9);
        const content = chunks.slice(0, -1);
        assert.ok(content.length >= 2);
        for (const [i, chunk] of content.entries()) {
          assert.equal(chunk.object, 'chat.completion.chunk');
          assert.equal(chunk.choices.length, 1, 'only the last chunk has no choices');
          assert.equal(chunk.usage, null, 'usage is null on every chunk but the last');
          const choice = chunk.choices[0] as ChatChunk['choices'][number];
          if (i === 0) assert.equal(choice.delta.role, 'assistant');
          else assert.equal(choice.delta.role, undefined, `role repeated in chunk ${i}`);
          const last = i === content.length - 1;
          if (!last || choice.finish_reason === null) {
            assert.ok(
              (choice.delta.content ?? '') !== '',
              `empty delta in chunk ${i}: ${JSON.stringify(chunk)}`,
            );
          }
        }
        assert.equal(content[content.length - 1]?.choices[0]?.finish_reason, 'length');
        const text = content.map((c) => c.choices[0]?.delta.content ?? '').join('');
        assert.equal(countWords(text), 9);

        // --- without include_usage: no usage-only chunk
        const plain = await readSse<ChatChunk>(
          await stack.post('/v1/chat/completions', {
            model: MODEL,
            messages,
            max_tokens: 3,
            stream: true,
          }),
        );
        assert.ok(plain.done);
        assert.ok(plain.chunks.every((c) => c.choices.length === 1 && c.usage === undefined));

        // --- a client abort in the middle of a long stream
        const before = await stack.metrics();
        const cancelledBefore = metricValue(before, 'dynamo_frontend_model_cancellation_total', {
          model: SLOW,
        });
        const controller = new AbortController();
        const long = await fetch(`${stack.url}/v1/chat/completions`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ model: SLOW, messages, max_tokens: 20_000, stream: true }),
          signal: controller.signal,
        });
        assert.equal(long.status, 200);
        const frames = await readFrames(long.body as ReadableStream<Uint8Array>, 3);
        assert.ok(frames.length >= 3, 'a few chunks arrived before the abort');
        const slowWorker = stack.mockers[1]?.workers[0];
        assert.equal(slowWorker?.activeRequests(), 1, 'the slow worker is generating');
        controller.abort();
        await long.body?.cancel().catch(() => {});
        await waitFor(() => stack.workers.every((w) => w.activeRequests() === 0), {
          timeoutMs: 10_000,
          what: 'every worker idle after the abort',
        });
        const after = await waitFor(async () => {
          const text = await stack.metrics();
          const done = metricValue(text, 'dynamo_frontend_requests_total', {
            model: SLOW,
            endpoint: 'chat_completions',
            request_type: 'stream',
            status: 'error',
            error_type: 'cancelled',
          });
          return done >= 1 ? text : undefined;
        }, { timeoutMs: 10_000, what: 'requests_total counting the cancelled stream' });
        const cancelled = metricValue(after, 'dynamo_frontend_model_cancellation_total', {
          model: SLOW,
        });
        assert.equal(cancelled, (Number.isNaN(cancelledBefore) ? 0 : cancelledBefore) + 1);
        assert.equal(
          metricValue(after, 'dynamo_frontend_inflight_requests', { model: SLOW }),
          0,
          'nothing in flight after the abort',
        );
      });
    });
  });
}
