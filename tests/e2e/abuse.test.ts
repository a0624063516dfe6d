/**
 * The security review's cases (issue 16) against a real server on this runtime: every one is
 * answered by a 4xx in the API's error shape, never a 5xx, a hang or a garbled answer. The
 * limits are the defaults except the deadlines, shortened so the slow cases end quickly.
 * `bench/abuse.ts` runs the same cases at full size and measures /live while they are in flight.
 */
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { currentRuntime } from '../helpers/process.ts';
import { errorBody, MODEL, type Stack, startStack } from '../helpers/stack.ts';
import { waitFor } from '../helpers/wait.ts';

const CHAT = '/v1/chat/completions';
const messages = [{ role: 'user', content: 'hi' }];

/** `[[[...1...]]]`, `depth` arrays deep. */
const nested = (depth: number) => `${'['.repeat(depth)}1${']'.repeat(depth)}`;

/**
 * Writes `payload` on a raw connection and collects everything until the server closes it, or
 * until the text matches `until` (then closes it itself).
 */
function raw(
  port: number,
  payload: string | ((socket: import('node:net').Socket) => void),
  until?: RegExp,
) {
  return new Promise<string>((resolve, reject) => {
    const socket = connect(port, '127.0.0.1', () => {
      if (typeof payload === 'string') socket.write(payload);
      else payload(socket);
    });
    let data = '';
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => {
      data += chunk;
      if (until?.test(data)) {
        socket.destroy();
        resolve(data);
      }
    });
    socket.on('close', () => resolve(data));
    socket.on('error', reject);
  });
}

/** The status lines in a raw answer (a pipelined answer follows the last body on its line). */
const statusLines = (text: string) => text.match(/HTTP\/1\.[01] \d{3}/g) ?? [];

describe(`abuse cases of the review on ${currentRuntime()}`, () => {
  let stack: Stack;
  let port: number;
  before(async () => {
    stack = await startStack({
      frontendArgs: ['--http-header-timeout-secs', '2'],
    });
    port = stack.frontend.server.port;
  });
  after(async () => {
    await stack?.close();
  });

  const expect4xx = async (
    status: number,
    path: string,
    body: unknown,
    headers: Record<string, string> = {},
  ) => {
    const res = await stack.post(path, body, headers);
    const { error } = await errorBody(res.clone());
    assert.equal(res.status, status, `${path}: ${JSON.stringify(error)}`);
    return error;
  };

  test('1. request budget: long prompts, big batches and a million messages are 400s', async () => {
    // One chat of 655k spaces is under the budget and answered (tokenizing runs in the worker
    // thread for seconds: bench/abuse.ts measures /live meanwhile; too slow for a test here).
    const spaces = ' '.repeat(655_000);
    // Four of them (2.6 M characters) are over the request budget: refused before validation.
    const batch = await expect4xx(400, '/v1/completions', {
      model: MODEL,
      prompt: [spaces, spaces, spaces, spaces],
    });
    assert.equal(batch.code, 'request_too_large');
    assert.match(batch.message, /--http-max-request-chars/);
    const prompts = await expect4xx(400, '/v1/completions', {
      model: MODEL,
      prompt: Array.from({ length: 2049 }, () => 'a'),
    });
    assert.equal(prompts.code, 'too_many_prompts');
    // A million empty messages (33 MB): refused by their count, not rendered.
    const many = `{"model":"${MODEL}","messages":[${
      Array.from({ length: 1_000_000 }, () => '{"role":"user","content":""}').join(',')
    }]}`;
    const count = await expect4xx(400, CHAT, many);
    assert.equal(count.code, 'too_many_messages');
    assert.equal(count.param, 'messages');
    // Bodies of --http-body-thread-mb (1 MiB) or more are parsed in the body thread: a legitimate
    // one (a short chat padded with 1.5 MB of JSON whitespace) is answered as it would be inline.
    const padded = `{"model":"${MODEL}",${' '.repeat(1_500_000)}"messages":${
      JSON.stringify(messages)
    },"max_tokens":3}`;
    const res = await stack.post(CHAT, padded);
    const answer = await res.json() as { choices: { message: { content: string } }[] };
    assert.equal(res.status, 200, JSON.stringify(answer));
    assert.ok(answer.choices[0]?.message.content.length, 'an answer');
  });

  test('2. stop strings longer than 1024 characters are 400s', async () => {
    const error = await expect4xx(400, CHAT, {
      model: MODEL,
      messages,
      stop: Array.from({ length: 32 }, (_, i) => `${i}`.padEnd(10_000, 'x')),
    });
    assert.equal(error.param, 'stop[0]');
    assert.match(error.message, /at most 1024 characters/);
  });

  test('4. JSON: deep nesting on every JSON route, 1e400, and prototype keys', async () => {
    for (
      const path of [CHAT, '/v1/completions', '/v1/embeddings', '/v1/responses', '/busy_threshold']
    ) {
      const res = await stack.post(path, `{"model":"${MODEL}","messages":${nested(5000)}}`);
      const text = await res.text();
      assert.equal(res.status, 400, `${path}: ${text}`);
      assert.match(text, /nested too deeply/);
    }
    for (const field of ['max_tokens', 'temperature']) {
      const res = await stack.post(
        CHAT,
        `{"model":"${MODEL}","messages":[{"role":"user","content":"hi"}],"${field}":1e400}`,
      );
      const { error } = await errorBody(res.clone());
      assert.equal(res.status, 400, JSON.stringify(error));
      assert.equal(error.param, field);
    }
    for (const name of ['constructor', '__proto__', 'toString', 'hasOwnProperty']) {
      const res = await fetch(`${stack.url}/docs/${name}`);
      assert.equal(res.status, 404, name);
      await res.body?.cancel();
    }
  });

  test('4. validation gaps: stop ids, logit_bias keys, unknown token ids, prompt_embeds, deep tools', async () => {
    assert.equal(
      (await expect4xx(400, CHAT, { model: MODEL, messages, stop: [1, 2] })).param,
      'stop[0]',
    );
    const bias = await expect4xx(400, CHAT, { model: MODEL, messages, logit_bias: { abc: 1 } });
    assert.match(bias.message, /"abc" is not a token id/);
    const beyond = await expect4xx(400, CHAT, {
      model: MODEL,
      messages,
      logit_bias: { '999999999': 1 },
    });
    assert.match(beyond.message, /out of the vocabulary/);
    const ids = await expect4xx(400, '/v1/completions', { model: MODEL, prompt: [1, 999_999_999] });
    assert.equal(ids.param, 'prompt[1]');
    const junk = await expect4xx(400, '/v1/completions', {
      model: MODEL,
      prompt_embeds: 'A'.repeat(200),
    });
    assert.equal(junk.param, 'prompt_embeds');
    const torchLike = await expect4xx(400, '/v1/completions', {
      model: MODEL,
      prompt_embeds: `UEsDBA${'A'.repeat(194)}`,
    });
    assert.equal(torchLike.param, 'prompt_embeds');
    let schema: Record<string, unknown> = { type: 'string' };
    for (let i = 0; i < 100; i++) schema = { type: 'object', properties: { a: schema } };
    const deep = await expect4xx(400, CHAT, {
      model: MODEL,
      messages,
      tools: [{ type: 'function', function: { name: 'f', parameters: schema } }],
    });
    assert.match(deep.message, /nested too deeply/);
    assert.doesNotMatch(deep.message, /call stack/);
  });

  test('6. output budget: n=128 x top_logprobs 20 x 100 tokens from a 200-byte request is a 400', async () => {
    const error = await expect4xx(400, CHAT, {
      model: MODEL,
      messages,
      n: 128,
      logprobs: true,
      top_logprobs: 20,
      max_tokens: 100,
      stream: true,
    });
    assert.equal(error.code, 'output_budget_exceeded');
    assert.match(error.message, /--http-max-output-budget/);
  });

  test('7. pipelined requests and HTTP/1.0 without Host are answered in order', async () => {
    const postThenGet = await raw(
      port,
      `POST ${CHAT} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}` +
        'GET /live HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n',
    );
    assert.deepEqual(statusLines(postThenGet), ['HTTP/1.1 400', 'HTTP/1.1 200']);
    const threeGets = await raw(
      port,
      'GET /live HTTP/1.1\r\nHost: x\r\n\r\nGET /v1/models HTTP/1.1\r\nHost: x\r\n\r\n' +
        'GET /live HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n',
    );
    assert.deepEqual(statusLines(threeGets), ['HTTP/1.1 200', 'HTTP/1.1 200', 'HTTP/1.1 200']);
    const http10 = await raw(port, 'GET /live HTTP/1.0\r\n\r\n');
    assert.match(http10, /^HTTP\/1\.[01] 200/);
    assert.match(http10, /"status":"live"/);
  });
});

describe(`deadlines and routing-header trust on ${currentRuntime()}`, () => {
  test('3. a body trickled in too slowly is a 408 once the body deadline passes', async () => {
    // Its own frontend with a short deadline: a loaded machine may take a second to upload
    // the other cases' megabytes.
    const slow = await startStack({
      mockers: [],
      frontendArgs: ['--http-body-timeout-secs', '0.5'],
    });
    try {
      const answer = await raw(slow.frontend.server.port, (socket) => {
        socket.write(
          `POST ${CHAT} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n` +
            'Content-Length: 100\r\nConnection: close\r\n\r\n{',
        );
        // Deno keeps the connection open for the rest of the declared body: stop at the answer.
      }, /\r\n\r\n\{.*\}\}/s);
      assert.match(answer, /^HTTP\/1\.1 408/);
      assert.match(answer, /--http-body-timeout-secs/);
    } finally {
      await slow.close();
    }
  });

  test('3. a stream whose client stops reading is cancelled and its worker freed', async () => {
    const stack = await startStack({
      frontendArgs: ['--http-write-timeout-secs', '0.5', '--http-max-output-budget', '100000000'],
      mockers: [{ speedup: 100_000 }],
    });
    try {
      const body = JSON.stringify({
        model: MODEL,
        messages,
        stream: true,
        logprobs: true,
        top_logprobs: 20,
        max_tokens: 30_000,
        ignore_eos: true,
      });
      // Sends the request, reads the response head, then never reads again.
      const socket = connect(stack.frontend.server.port, '127.0.0.1');
      socket.on('error', () => {});
      socket.write(
        `POST ${CHAT} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n` +
          `Content-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
      );
      await new Promise((resolve) => socket.once('data', resolve));
      socket.pause();
      await waitFor(
        async () => /_http_stalled_streams_total 1$/m.test(await stack.metrics()),
        { timeoutMs: 30_000, what: 'the stalled stream counted' },
      );
      // The worker's slot is freed: no request is active on the frontend any more.
      await waitFor(
        async () => !/_inflight_requests\{[^}]*\} [1-9]/m.test(await stack.metrics()),
        { timeoutMs: 10_000, what: 'no request in flight' },
      );
      socket.destroy();
    } finally {
      await stack.close();
    }
  });

  test('5. --ignore-routing-headers: a client cannot pin a worker; the admin key still can', async () => {
    const stack = await startStack({
      frontendArgs: ['--ignore-routing-headers', '--admin-api-key', 'adm'],
    });
    try {
      const pin = { 'x-worker-instance-id': 'ffffffff' };
      const ignored = await stack.post(CHAT, { model: MODEL, messages, max_tokens: 2 }, pin);
      assert.equal(ignored.status, 200, await ignored.text());
      const honoured = await stack.post(CHAT, { model: MODEL, messages, max_tokens: 2 }, {
        ...pin,
        authorization: 'Bearer adm',
      });
      const { error } = await errorBody(honoured.clone());
      assert.ok(honoured.status >= 400, JSON.stringify(error));
      assert.match(error.message, /ffffffff/i);
    } finally {
      await stack.close();
    }
  });
});
