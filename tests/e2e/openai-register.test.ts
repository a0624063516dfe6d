/**
 * A plain OpenAI-compatible server behind Switchboard (`switchboard register`, in process): chat
 * and completions forwarded with the served name, the server's 4xx passed on with its status,
 * and the model answering 503 once the health check sees the server gone (and 200 once back).
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { resolveRegisterConfig } from '../../src/worker/register-config.ts';
import { type Registration, startRegistration } from '../../src/commands/register.ts';
import { type FixtureServer, fixtureWords, startOpenAIServer } from '../fixtures/openai-server.ts';
import { currentRuntime } from '../helpers/process.ts';
import { errorBody, readSse, type Stack, startStack } from '../helpers/stack.ts';
import { waitFor } from '../helpers/wait.ts';

const SERVED = 'fixture/chat';
const UPSTREAM = 'upstream-llm';

interface ChatAnswer {
  object: string;
  model: string;
  choices: Array<{ message: { role: string; content: string }; finish_reason: string }>;
  usage: { prompt_tokens: number; completion_tokens: number; total_tokens: number };
}
interface Chunk {
  model: string;
  choices: Array<{ delta?: { content?: string }; text?: string; finish_reason: string | null }>;
  usage?: { completion_tokens: number } | null;
}

describe(`a registered OpenAI-compatible server on ${currentRuntime()}`, () => {
  test('forwards, passes 4xx on, and goes 503 while the server is down', async () => {
    let server: FixtureServer | undefined = await startOpenAIServer({ modelId: UPSTREAM });
    let stack: Stack | undefined;
    let registration: Registration | undefined;
    try {
      // Only the frontend: the registration is the worker.
      stack = await startStack({ mockers: [] });
      const resolved = resolveRegisterConfig({
        argv: [
          '--url',
          server.url,
          '--model-name',
          SERVED,
          '--upstream-model',
          UPSTREAM,
          '--discovery-backend',
          'mem',
          '--health-interval-secs',
          '0.1',
        ],
        env: {},
      });
      if (!resolved.ok) throw new Error(resolved.errors.join('\n'));
      registration = await startRegistration(resolved.config, {
        env: {},
        logger: stack.logger,
        local: stack.bus,
      });
      const core = stack.frontend.core;
      await waitFor(() => core.models.instances(SERVED).length === 1, {
        what: 'the registered server in discovery',
      });

      // /v1/models lists the served name.
      const models = await (await fetch(`${stack.url}/v1/models`)).json() as {
        data: Array<{ id: string }>;
      };
      assert.ok(models.data.some((m) => m.id === SERVED), JSON.stringify(models));

      // Unary chat: the fixture's text, the served name, the upstream name on the wire.
      const question = 'what is the weather';
      const res = await stack.post('/v1/chat/completions', {
        model: SERVED,
        messages: [{ role: 'user', content: question }],
        max_tokens: 4,
      });
      const text = await res.text();
      assert.equal(res.status, 200, text);
      const answer = JSON.parse(text) as ChatAnswer;
      assert.equal(answer.object, 'chat.completion');
      assert.equal(answer.model, SERVED);
      assert.equal(answer.choices[0]?.message.content, fixtureWords(question, 4).join(''));
      assert.equal(answer.usage.completion_tokens, 4);
      const sent = server.requests[server.requests.length - 1];
      assert.equal(sent?.path, '/v1/chat/completions');
      assert.equal(sent?.body.model, UPSTREAM);
      assert.equal(sent?.body.nvext, undefined);

      // Streamed chat.
      const streamed = await readSse<Chunk>(
        await stack.post('/v1/chat/completions', {
          model: SERVED,
          messages: [{ role: 'user', content: question }],
          max_tokens: 3,
          stream: true,
        }),
      );
      assert.ok(streamed.done);
      assert.ok(streamed.chunks.every((c) => c.model === SERVED));
      assert.equal(
        streamed.chunks.map((c) => c.choices[0]?.delta?.content ?? '').join(''),
        fixtureWords(question, 3).join(''),
      );
      assert.ok(streamed.chunks.every((c) => c.choices.length === 1), 'no usage-only chunk');

      // Completions, unary and streamed with usage.
      const completion = await stack.post('/v1/completions', {
        model: SERVED,
        prompt: 'complete me',
        max_tokens: 5,
      });
      const completionText = await completion.text();
      assert.equal(completion.status, 200, completionText);
      const folded = JSON.parse(completionText) as {
        model: string;
        choices: Array<{ text: string }>;
      };
      assert.equal(folded.model, SERVED);
      assert.equal(folded.choices[0]?.text, fixtureWords('complete me', 5).join(''));
      const completionStream = await readSse<Chunk>(
        await stack.post('/v1/completions', {
          model: SERVED,
          prompt: 'complete me',
          max_tokens: 2,
          stream: true,
          stream_options: { include_usage: true },
        }),
      );
      assert.ok(completionStream.done);
      const usageChunk = completionStream.chunks[completionStream.chunks.length - 1];
      assert.deepEqual(usageChunk?.choices, []);
      assert.equal(usageChunk?.usage?.completion_tokens, 2);

      // The server's 400 passes on with its status and message, in OpenAI's shape.
      const rejected = await stack.post('/v1/chat/completions', {
        model: SERVED,
        messages: [{ role: 'user', content: question }],
        max_tokens: 5000,
      });
      assert.equal(rejected.status, 400);
      assert.match((await errorBody(rejected)).error.message, /max_tokens is too large/);

      // The server stops: once the health check notices, the model answers 503.
      const port = server.port;
      await server.close();
      server = undefined;
      await waitFor(() => core.models.instances(SERVED).length === 0, {
        timeoutMs: 10_000,
        what: 'the health check taking the server out of discovery',
      });
      const down = await stack.post('/v1/chat/completions', {
        model: SERVED,
        messages: [{ role: 'user', content: question }],
      });
      assert.equal(down.status, 503);
      assert.equal((await errorBody(down)).error.type, 'service_unavailable');

      // Back on the same port: back in discovery, answering again.
      server = await startOpenAIServer({ modelId: UPSTREAM, port });
      await waitFor(() => core.models.instances(SERVED).length === 1, {
        timeoutMs: 10_000,
        what: 'the health check putting the server back',
      });
      const back = await stack.post('/v1/chat/completions', {
        model: SERVED,
        messages: [{ role: 'user', content: question }],
        max_tokens: 2,
      });
      assert.equal(back.status, 200, await back.clone().text());
      await back.body?.cancel();
    } finally {
      await registration?.close();
      await stack?.close();
      await server?.close();
    }
  });
});

describe(`a registered server that needs an API key, on ${currentRuntime()}`, () => {
  test('register --api-key: its health check and the frontend both send the key', async () => {
    const server = await startOpenAIServer({ modelId: UPSTREAM, apiKey: 'engine-secret' });
    let stack: Stack | undefined;
    let registration: Registration | undefined;
    try {
      stack = await startStack({ mockers: [] });
      const resolved = resolveRegisterConfig({
        argv: ['--url', server.url, '--model-name', SERVED, '--upstream-model', UPSTREAM],
        env: { DYN_REGISTER_API_KEY: 'engine-secret', DYN_DISCOVERY_BACKEND: 'mem' },
      });
      if (!resolved.ok) throw new Error(resolved.errors.join('\n'));
      registration = await startRegistration(resolved.config, {
        env: {},
        logger: stack.logger,
        local: stack.bus,
      });
      const core = stack.frontend.core;
      await waitFor(() => core.models.instances(SERVED).length === 1, {
        what: 'the registered server in discovery',
      });
      const res = await stack.post('/v1/chat/completions', {
        model: SERVED,
        messages: [{ role: 'user', content: 'hello' }],
        max_tokens: 3,
      });
      const text = await res.text();
      assert.equal(res.status, 200, text);
      assert.equal(server.requests.length, 1);
      // /health shows the instance, never the key.
      const health = await (await fetch(`${stack.url}/health`)).text();
      assert.doesNotMatch(health, /engine-secret/);
      assert.match(health, /<redacted>/);
    } finally {
      await registration?.close();
      await stack?.close();
      await server.close();
    }
  });
});
