/**
 * Errors of the OpenAI routes end to end: always OpenAI's envelope
 * `{"error":{message,type,param,code}}`, the right 4xx with `param` naming the field at fault,
 * 404 for unknown models, 503 for models without a reachable worker, never a 500 or a stack trace.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { createMemStore } from '../../src/adapters/discovery/mem.ts';
import { createDiscovery } from '../../src/core/discovery/discovery.ts';
import { currentRuntime } from '../helpers/process.ts';
import { errorBody, MODEL, type Stack, startStack } from '../helpers/stack.ts';
import { waitFor } from '../helpers/wait.ts';

const CHAT = '/v1/chat/completions';
const messages = [{ role: 'user', content: 'hi' }];

describe(`OpenAI errors on ${currentRuntime()}`, () => {
  let stack: Stack;
  before(async () => {
    // The request budget would refuse the 10 MB message first; this file tests what comes after.
    stack = await startStack({
      env: { DYN_HTTP_BODY_LIMIT_MB: '64', DYN_HTTP_MAX_REQUEST_CHARS: '20000000' },
    });
  });
  after(async () => {
    await stack?.close();
  });

  /** POSTs `body` and checks the status and the envelope; returns the error. */
  const expectError = async (
    status: number,
    body: unknown,
    options: { path?: string; headers?: Record<string, string> } = {},
  ) => {
    const res = await stack.post(options.path ?? CHAT, body, options.headers);
    const { error } = await errorBody(res.clone());
    assert.equal(res.status, status, `${JSON.stringify(error)} for ${String(body).slice(0, 200)}`);
    assert.match(res.headers.get('content-type') ?? '', /^application\/json/);
    return error;
  };

  test('an unknown model is a 404 model_not_found', async () => {
    const error = await expectError(404, { model: 'no-such-model', messages });
    assert.equal(error.code, 'model_not_found');
    assert.equal(error.param, 'model');
    assert.match(error.message, /"no-such-model"/);
    const completion = await expectError(404, { model: 'no-such-model', prompt: 'hi' }, {
      path: '/v1/completions',
    });
    assert.equal(completion.code, 'model_not_found');
    const embedding = await expectError(404, { model: 'no-such-model', input: 'hi' }, {
      path: '/v1/embeddings',
    });
    assert.equal(embedding.code, 'model_not_found');
  });

  test('a model whose workers are all gone answers 503', async () => {
    // A worker that registered and then died without leaving discovery (no lease expiry yet).
    const probe = createDiscovery(createMemStore({ server: stack.bus.kv }));
    const [record] = await probe.listModels();
    assert.ok(record, 'the stack registered a model card');
    const ghost = createDiscovery(createMemStore({ server: stack.bus.kv }));
    const endpoint = { namespace: 'dynamo', component: 'ghost', endpoint: 'generate' };
    await ghost.registerModel(endpoint, { ...record.card, display_name: 'ghost-model' });
    await ghost.registerEndpoint(endpoint, { tcp: `127.0.0.1:1/${ghost.instanceId}/generate` });
    await waitFor(() => stack.frontend.core.models.instances('ghost-model').length === 1, {
      what: 'the ghost worker in discovery',
    });
    const unreachable = await expectError(503, { model: 'ghost-model', messages });
    assert.equal(unreachable.type, 'service_unavailable');
    // The endpoint leaves discovery and the card stays: still 503, not 404.
    await ghost.unregisterEndpoint(endpoint);
    await waitFor(() => stack.frontend.core.models.instances('ghost-model').length === 0, {
      what: 'the ghost worker gone',
    });
    const gone = await expectError(503, { model: 'ghost-model', messages, stream: true });
    assert.match(gone.message, /no live worker/);
    await ghost.unregisterModel(endpoint);
  });

  test('wrong types and out-of-range values name the field', async () => {
    const cases: Array<[Record<string, unknown>, string]> = [
      [{ messages: 'hi' }, 'messages'],
      [{ messages, max_tokens: '10' }, 'max_tokens'],
      [{ messages, temperature: 7 }, 'temperature'],
      [{ messages, n: 1e9 }, 'n'],
      [{ messages, max_tokens: -1 }, 'max_tokens'],
      [{ messages: [] }, 'messages'],
      [{ messages: [{ role: 'wizard', content: 'hi' }] }, 'messages[0].role'],
      [{ messages, top_p: 'high' }, 'top_p'],
      [{ messages, stream: 'yes' }, 'stream'],
    ];
    for (const [body, param] of cases) {
      const error = await expectError(400, { model: MODEL, ...body });
      assert.equal(error.param, param, JSON.stringify(error));
      assert.equal(error.type, 'invalid_request_error');
    }
    const missing = await expectError(400, { messages });
    assert.equal(missing.param, 'model');
    const prompt = await expectError(400, { model: MODEL, prompt: 42 }, {
      path: '/v1/completions',
    });
    assert.equal(prompt.param, 'prompt');
  });

  test('malformed JSON is a 400, the wrong content type a 415', async () => {
    const malformed = await expectError(400, '{"model": ');
    assert.equal(malformed.code, 'invalid_json');
    assert.equal(malformed.param, null);
    const notAnObject = await expectError(400, '[1, 2, 3]');
    assert.equal(notAnObject.type, 'invalid_request_error');
    const plain = await expectError(415, JSON.stringify({ model: MODEL, messages }), {
      headers: { 'content-type': 'text/plain' },
    });
    assert.equal(plain.code, 'unsupported_media_type');
  });

  test('invalid UTF-8 in the body becomes U+FFFD, as docs/decisions.md says', async () => {
    const encoder = new TextEncoder();
    const bytes = new Uint8Array([
      ...encoder.encode(`{"model":"${MODEL}","prompt":"ab`),
      0xff,
      0xc3,
      ...encoder.encode('cd","max_tokens":2,"echo":true}'),
    ]);
    const res = await fetch(`${stack.url}/v1/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: bytes,
    });
    const text = await res.text();
    assert.equal(res.status, 200, text);
    const answer = JSON.parse(text) as { choices: Array<{ text: string }> };
    assert.ok(answer.choices[0]?.text.startsWith('ab\uFFFD\uFFFDcd'), text);
  });

  test('a prompt longer than the context is a 400 naming both numbers', async () => {
    const content = 'word '.repeat(50_000);
    const chat = await expectError(400, { model: MODEL, messages: [{ role: 'user', content }] });
    assert.match(chat.message, /40960/);
    assert.match(chat.message, /\b5\d{4}\b/, 'the prompt length is named');
    const completion = await expectError(400, { model: MODEL, prompt: content }, {
      path: '/v1/completions',
    });
    assert.match(completion.message, /40960/);
    assert.match(completion.message, /\b5\d{4}\b/);
    // The prompt fits but not with max_tokens: both numbers and the field at fault.
    const tooMany = await expectError(400, { model: MODEL, messages, max_tokens: 40_960 });
    assert.equal(tooMany.param, 'max_tokens');
    assert.match(tooMany.message, /40960/);
  });

  test('a 10 MB message under the body limit is a 400, not a 413 or a 500', async () => {
    // Long words tokenize fast; runs of spaces or dots do not (see the report of this test).
    const word = `${'abcdefghijklmnopqrstuvwxy'.repeat(4)} `;
    const content = word.repeat(Math.ceil(10 * 1024 * 1024 / word.length));
    const error = await expectError(400, { model: MODEL, messages: [{ role: 'user', content }] });
    assert.match(error.message, /40960/);
    assert.match(error.message, /\d{7} characters/, 'the prompt length is named');
    // The frontend still answers afterwards.
    const res = await stack.post(CHAT, { model: MODEL, messages, max_tokens: 2 });
    assert.equal(res.status, 200);
    await res.body?.cancel();
  });
});
