/**
 * Conformance with the official `openai` npm client: unchanged SDK calls against a real frontend
 * (the `demo` subcommand: frontend plus two simulated workers of Qwen/Qwen3-0.6B), and embeddings
 * against a frontend plus an `--embedding` mocker sharing file discovery. A custom `fetch` tees
 * every response, so each JSON body and each SSE event the SDK parsed is also validated against
 * the matching component of OpenAI's own OpenAPI document (`shared/openai-openapi.yaml`).
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import OpenAI from 'openai';
import { loadOpenAISpec, type OpenAISpec } from '../helpers/openai-spec.ts';
import {
  currentRuntime,
  type RunningMockerProcess,
  type RunningServer,
  startFrontend,
  startMocker,
} from '../helpers/process.ts';
import { waitFor } from '../helpers/wait.ts';

const MODEL = 'Qwen/Qwen3-0.6B';
const EMBED = 'emb';
const DIMENSIONS = 32;
const USER = [{ role: 'user' as const, content: 'Say hello' }];

/** One HTTP exchange the SDK made, with the response body as the server sent it. */
interface Exchange {
  method: string;
  path: string;
  status: number;
  contentType: string;
  body: Promise<string>;
}

type Fetch = (input: string | URL | Request, init?: RequestInit) => Promise<Response>;

/** A `fetch` for the SDK that records every exchange and tees its body. */
function createRecorder(): { fetch: Fetch; take(): Exchange[] } {
  const exchanges: Exchange[] = [];
  const recordingFetch: Fetch = async (input, init) => {
    const response = await fetch(input, init);
    const url = new URL(input instanceof Request ? input.url : String(input));
    const method = init?.method ?? (input instanceof Request ? input.method : 'GET');
    const exchange = {
      method: method.toUpperCase(),
      path: url.pathname,
      status: response.status,
      contentType: response.headers.get('content-type') ?? '',
    };
    if (!response.body) {
      exchanges.push({ ...exchange, body: Promise.resolve('') });
      return response;
    }
    const [forClient, forTest] = response.body.tee();
    const body = new Response(forTest).text();
    body.catch(() => {}); // awaited (and rethrown) by the test; no unhandled rejection meanwhile
    exchanges.push({ ...exchange, body });
    return new Response(forClient, {
      status: response.status,
      statusText: response.statusText,
      headers: response.headers,
    });
  };
  return { fetch: recordingFetch, take: () => exchanges.splice(0) };
}

/** SSE events of a finished stream: `event:` (if any) and the joined `data:` lines. */
function parseSSE(text: string): Array<{ event?: string; data: string }> {
  const events: Array<{ event?: string; data: string }> = [];
  for (const block of text.split(/\r?\n\r?\n/)) {
    let event: string | undefined;
    const data: string[] = [];
    for (const line of block.split(/\r?\n/)) {
      if (line.startsWith('event:')) event = line.slice(6).trim();
      else if (line.startsWith('data:')) data.push(line.slice(5).replace(/^ /, ''));
    }
    if (data.length > 0) {
      events.push({ ...(event === undefined ? {} : { event }), data: data.join('\n') });
    }
  }
  return events;
}

/** Responses stream event `type` -> the component of OpenAI's document that defines it. */
const RESPONSE_EVENTS: Record<string, string> = {
  'response.created': 'ResponseCreatedEvent',
  'response.in_progress': 'ResponseInProgressEvent',
  'response.output_item.added': 'ResponseOutputItemAddedEvent',
  'response.output_item.done': 'ResponseOutputItemDoneEvent',
  'response.content_part.added': 'ResponseContentPartAddedEvent',
  'response.content_part.done': 'ResponseContentPartDoneEvent',
  'response.output_text.delta': 'ResponseTextDeltaEvent',
  'response.output_text.done': 'ResponseTextDoneEvent',
  'response.function_call_arguments.delta': 'ResponseFunctionCallArgumentsDeltaEvent',
  'response.function_call_arguments.done': 'ResponseFunctionCallArgumentsDoneEvent',
  'response.completed': 'ResponseCompletedEvent',
  'response.failed': 'ResponseFailedEvent',
  'response.incomplete': 'ResponseIncompleteEvent',
  'error': 'ResponseErrorEvent',
};

/** The component a JSON body (or one SSE event's data) of this exchange must conform to. */
function componentOf(exchange: Exchange, value: unknown, streamed: boolean): string {
  if (exchange.status >= 400) return 'ErrorResponse';
  const { method, path } = exchange;
  if (method === 'GET' && path === '/v1/models') return 'ListModelsResponse';
  if (method === 'GET' && path.startsWith('/v1/models/')) return 'Model';
  if (method === 'POST' && path === '/v1/chat/completions') {
    return streamed ? 'CreateChatCompletionStreamResponse' : 'CreateChatCompletionResponse';
  }
  // OpenAI's document: "both the streamed and non-streamed response objects share the same shape".
  if (method === 'POST' && path === '/v1/completions') return 'CreateCompletionResponse';
  if (method === 'POST' && path === '/v1/embeddings') return 'CreateEmbeddingResponse';
  if (method === 'POST' && path === '/v1/responses') {
    if (!streamed) return 'Response';
    const type = (value as { type?: unknown }).type;
    const component = RESPONSE_EVENTS[String(type)];
    assert.ok(component, `no component for Responses event type ${JSON.stringify(type)}`);
    return component;
  }
  assert.fail(`no component for ${method} ${path}`);
}

/**
 * Rules of OpenAI's document that are stricter than OpenAI's API, each with the reason. A schema
 * error is allowed when the component and the error's path match an entry, the value there has
 * the kind the entry names, and (for `streamed` entries) it came in an SSE event.
 */
const ALLOWED: ReadonlyArray<
  { component: string; path: RegExp; kind: 'null' | 'string'; streamed?: true; why: string }
> = [
  {
    component: 'CreateEmbeddingResponse',
    path: /^\/data\/\d+\/embedding$/,
    kind: 'string',
    why: '`Embedding.embedding` is typed number[] only, but with `encoding_format: "base64"` ' +
      'the API answers a base64 string, and the SDK asks for base64 by default and decodes it',
  },
  {
    component: 'CreateCompletionResponse',
    path: /^\/choices\/\d+\/finish_reason$/,
    kind: 'null',
    streamed: true,
    why: 'the document reuses the unary shape for stream chunks ("share the same shape"), where ' +
      '`finish_reason` is never null; the API streams null until a choice ends (as the chat ' +
      'chunk schema, which marks it nullable, says)',
  },
  {
    component: 'CreateCompletionResponse',
    path: /^\/usage$/,
    kind: 'null',
    streamed: true,
    why: 'same reuse: `usage` is not nullable there, yet the document itself ' +
      '(`ChatCompletionStreamOptions.include_usage`, which completions use) says every chunk ' +
      'but the last carries `usage: null`',
  },
  ...['ResponseCreatedEvent', 'ResponseInProgressEvent', 'ResponseFailedEvent'].map((
    component,
  ) => ({
    component,
    path: /^\/response\/usage$/,
    kind: 'null' as const,
    streamed: true as const,
    why: 'OpenResponses (and its compliance suite) requires `usage` on every `response` object, ' +
      "`null` until known; OpenAI's document marks it optional but not nullable",
  })),
  ...[
    ['Response', /^\/user$/, false],
    ...[
      'ResponseCreatedEvent',
      'ResponseInProgressEvent',
      'ResponseCompletedEvent',
      'ResponseIncompleteEvent',
      'ResponseFailedEvent',
    ].map((c) => [c, /^\/response\/user$/, true]),
  ].map(([component, path, streamed]) => ({
    component: component as string,
    path: path as RegExp,
    kind: 'null' as const,
    ...(streamed ? { streamed: true as const } : {}),
    why: 'OpenResponses requires `user` on the response object (null when the request set none); ' +
      "OpenAI's document types it as an optional string",
  })),
];

/** The value at a JSON pointer such as `/choices/0/finish_reason`. */
function at(value: unknown, pointer: string): unknown {
  let node = value;
  for (const raw of pointer.split('/').slice(1)) {
    const key = raw.replaceAll('~1', '/').replaceAll('~0', '~');
    node = node !== null && typeof node === 'object'
      ? (node as Record<string, unknown>)[key]
      : undefined;
  }
  return node;
}

function allowed(component: string, value: unknown, streamed: boolean, error: string): boolean {
  const path = error.slice(0, error.indexOf(': '));
  const found = at(value, path);
  const kind = found === null ? 'null' : typeof found;
  return ALLOWED.some((a) =>
    a.component === component && a.path.test(path) && a.kind === kind &&
    (a.streamed !== true || streamed)
  );
}

interface Checked {
  /** JSON values validated (one per body, or one per SSE event other than [DONE]). */
  values: unknown[];
  /** The data of the last SSE event (`[DONE]` after a natural end); undefined for JSON. */
  last?: string;
}

/** Validates every body (and every SSE event) of `exchange`; asserts zero schema errors. */
async function check(spec: OpenAISpec, exchange: Exchange): Promise<Checked> {
  const text = await exchange.body;
  const where = `${exchange.method} ${exchange.path} (${exchange.status})`;
  const validate = (value: unknown, streamed: boolean, label: string) => {
    const component = componentOf(exchange, value, streamed);
    const errors = spec.validateAgainstSpec(component, value).filter((e) =>
      !allowed(component, value, streamed, e)
    );
    assert.deepEqual(errors, [], `${where} ${label} vs ${component}: ${JSON.stringify(value)}`);
  };
  if (exchange.contentType.startsWith('text/event-stream')) {
    const events = parseSSE(text);
    const values: unknown[] = [];
    for (const [i, { event, data }] of events.entries()) {
      if (data === '[DONE]') continue;
      const value = JSON.parse(data) as unknown;
      if (event !== undefined) {
        assert.equal(event, (value as { type?: unknown }).type, `${where}: event name = type`);
      }
      validate(value, true, `event ${i}`);
      values.push(value);
    }
    return { values, last: events.at(-1)?.data };
  }
  assert.match(exchange.contentType, /^application\/json/, `${where}: content type`);
  const value = JSON.parse(text) as unknown;
  validate(value, false, 'body');
  return { values: [value] };
}

/** Takes what the SDK exchanged since the last call, checks it all, and expects `count`. */
async function checkAll(
  spec: OpenAISpec,
  recorder: { take(): Exchange[] },
  count = 1,
): Promise<Checked[]> {
  const exchanges = recorder.take();
  assert.equal(exchanges.length, count, 'exchanges since the last check');
  const checked: Checked[] = [];
  for (const exchange of exchanges) checked.push(await check(spec, exchange));
  return checked;
}

/** Resolves once `GET /v1/models` lists `model`. */
async function modelListed(url: string, model: string): Promise<void> {
  await waitFor(async () => {
    try {
      const body = await (await fetch(`${url}/v1/models`)).json() as { data?: { id: string }[] };
      return body.data?.some((m) => m.id === model) === true;
    } catch {
      return false;
    }
  }, { timeoutMs: 30_000, intervalMs: 50, what: `model "${model}" in /v1/models` });
}

/** Stops every started process (SIGTERM, SIGKILL after the grace) and removes the temp dir. */
async function stopAll(
  processes: ReadonlyArray<RunningServer | RunningMockerProcess>,
  dir: string | undefined,
): Promise<void> {
  await Promise.allSettled(processes.map((p) => p.stop()));
  if (dir) await rm(dir, { recursive: true, force: true });
}

const spec = loadOpenAISpec();

describe(`the official openai client (v7) on ${currentRuntime()}`, () => {
  const recorder = createRecorder();
  const started: Array<RunningServer | RunningMockerProcess> = [];
  let kvDir: string | undefined;
  let client: OpenAI;
  let embedClient: OpenAI;

  before(async () => {
    try {
      kvDir = await mkdtemp(join(tmpdir(), 'switchboard-conformance-'));
      const env = { DYN_FILE_KV: kvDir };
      const file = ['--discovery-backend', 'file'];
      const starts = [
        startFrontend(['--speedup-ratio', '100'], { subcommand: 'demo' }),
        startFrontend(file, { env }),
        startMocker([
          ...file,
          '--event-plane',
          'nats',
          '--model-name',
          EMBED,
          '--embedding',
          '--embedding-dimensions',
          String(DIMENSIONS),
        ], { env }),
      ] as const;
      const settled = await Promise.allSettled(starts);
      for (const s of settled) if (s.status === 'fulfilled') started.push(s.value);
      for (const s of settled) if (s.status === 'rejected') throw s.reason;
      const [demo, frontend] = started as [RunningServer, RunningServer];
      await Promise.all([modelListed(demo.url, MODEL), modelListed(frontend.url, EMBED)]);
      const options = { apiKey: 'unused', maxRetries: 0, timeout: 30_000, fetch: recorder.fetch };
      client = new OpenAI({ ...options, baseURL: `${demo.url}/v1` });
      embedClient = new OpenAI({ ...options, baseURL: `${frontend.url}/v1` });
      recorder.take();
    } catch (error) {
      await stopAll(started.splice(0), kvDir);
      throw error;
    }
  });

  after(async () => {
    await stopAll(started.splice(0), kvDir);
  });

  test('chat.completions.create, non-streaming', async () => {
    const completion = await client.chat.completions.create({
      model: MODEL,
      messages: USER,
      max_tokens: 8,
    });
    assert.equal(completion.object, 'chat.completion');
    assert.equal(completion.model, MODEL);
    assert.equal(completion.choices[0]?.message.role, 'assistant');
    assert.ok((completion.choices[0]?.message.content ?? '').length > 0);
    assert.ok(completion.usage && completion.usage.completion_tokens > 0);
    await checkAll(spec, recorder);
  });

  test('chat.completions.create, streaming with and without include_usage', async () => {
    for (const includeUsage of [false, true]) {
      const stream = await client.chat.completions.create({
        model: MODEL,
        messages: USER,
        max_tokens: 8,
        stream: true,
        ...(includeUsage ? { stream_options: { include_usage: true } } : {}),
      });
      let text = '';
      const finishes: string[] = [];
      let usage: OpenAI.CompletionUsage | null | undefined;
      for await (const chunk of stream) {
        assert.equal(chunk.object, 'chat.completion.chunk');
        text += chunk.choices[0]?.delta.content ?? '';
        const finish = chunk.choices[0]?.finish_reason;
        if (finish) finishes.push(finish);
        if (chunk.usage) usage = chunk.usage;
      }
      assert.ok(text.length > 0, 'streamed text');
      assert.deepEqual(finishes, ['length']);
      if (includeUsage) assert.ok(usage && usage.completion_tokens > 0, 'usage chunk');
      else assert.equal(usage, undefined, 'no usage without include_usage');
      const [checked] = await checkAll(spec, recorder);
      assert.ok(checked!.values.length > 1, 'several chunks');
      assert.equal(checked!.last, '[DONE]');
    }
  });

  test('completions.create, prompt string and array, non-streaming and streaming', async () => {
    const one = await client.completions.create({
      model: MODEL,
      prompt: 'Once upon',
      max_tokens: 4,
    });
    assert.equal(one.object, 'text_completion');
    assert.equal(one.choices.length, 1);
    assert.ok((one.choices[0]?.text ?? '').length > 0);

    const two = await client.completions.create({
      model: MODEL,
      prompt: ['Once upon', 'a time'],
      max_tokens: 4,
    });
    assert.deepEqual(two.choices.map((c) => c.index).sort(), [0, 1]);
    await checkAll(spec, recorder, 2);

    const stream = await client.completions.create({
      model: MODEL,
      prompt: 'Once upon',
      max_tokens: 4,
      stream: true,
      stream_options: { include_usage: true },
    });
    let text = '';
    let usage: OpenAI.CompletionUsage | undefined;
    for await (const chunk of stream) {
      text += chunk.choices[0]?.text ?? '';
      if (chunk.usage) usage = chunk.usage;
    }
    assert.ok(text.length > 0);
    assert.ok(usage && usage.completion_tokens > 0);
    const [checked] = await checkAll(spec, recorder);
    assert.equal(checked!.last, '[DONE]');
  });

  test('models.list and models.retrieve', async () => {
    const ids: string[] = [];
    for await (const model of client.models.list()) ids.push(model.id);
    assert.deepEqual(ids, [MODEL]);
    const model = await client.models.retrieve(MODEL);
    assert.equal(model.id, MODEL);
    assert.equal(model.object, 'model');
    await checkAll(spec, recorder, 2);
  });

  test('responses.create, non-streaming', async () => {
    const response = await client.responses.create({
      model: MODEL,
      input: 'Say hello',
      instructions: 'Be brief.',
      max_output_tokens: 8,
    });
    assert.equal(response.object, 'response');
    // The simulated worker always runs to the limit: the response was cut by max_output_tokens.
    assert.equal(response.status, 'incomplete');
    assert.deepEqual(response.incomplete_details, { reason: 'max_output_tokens' });
    assert.ok(response.output_text.length > 0, 'the SDK assembles output_text');
    assert.ok(response.usage && response.usage.output_tokens > 0);
    await checkAll(spec, recorder);
  });

  test('responses.create, streaming', async () => {
    const stream = await client.responses.create({
      model: MODEL,
      input: [{ role: 'user', content: 'Say hello' }],
      max_output_tokens: 8,
      stream: true,
    });
    const types: string[] = [];
    let deltas = '';
    let completed: OpenAI.Responses.Response | undefined;
    for await (const event of stream) {
      types.push(event.type);
      if (event.type === 'response.output_text.delta') deltas += event.delta;
      if (event.type === 'response.incomplete') completed = event.response;
    }
    assert.equal(types[0], 'response.created');
    // Cut by max_output_tokens (the simulated worker always runs to the limit).
    assert.equal(types.at(-1), 'response.incomplete');
    assert.deepEqual(completed?.incomplete_details, { reason: 'max_output_tokens' });
    assert.ok(deltas.length > 0);
    assert.equal(completed?.output_text ?? outputText(completed), deltas);
    const [checked] = await checkAll(spec, recorder);
    assert.equal(checked!.values.length, types.length, 'every event the SDK saw was validated');
    assert.equal(checked!.last, '[DONE]');
  });

  test('embeddings.create, SDK default (base64) and float', async () => {
    const packed = await embedClient.embeddings.create({ model: EMBED, input: ['a', 'b c'] });
    assert.equal(packed.object, 'list');
    assert.equal(packed.data.length, 2);
    for (const d of packed.data) {
      assert.ok(Array.isArray(d.embedding), 'the SDK decoded base64 to numbers');
      assert.equal(d.embedding.length, DIMENSIONS);
    }
    const floats = await embedClient.embeddings.create({
      model: EMBED,
      input: 'a',
      encoding_format: 'float',
    });
    assert.equal(floats.data[0]?.embedding.length, DIMENSIONS);
    for (const [i, x] of (floats.data[0]?.embedding ?? []).entries()) {
      assert.ok(Math.abs(x - (packed.data[0]?.embedding[i] ?? NaN)) < 1e-6, `component ${i}`);
    }
    await checkAll(spec, recorder, 2);
  });

  test('unknown model: OpenAI.NotFoundError with code model_not_found', async () => {
    const calls: Array<() => Promise<unknown>> = [
      () => client.chat.completions.create({ model: 'no-such-model', messages: USER }),
      () =>
        client.chat.completions.create({ model: 'no-such-model', messages: USER, stream: true }),
      () => client.completions.create({ model: 'no-such-model', prompt: 'x' }),
      () => client.responses.create({ model: 'no-such-model', input: 'x' }),
      () => client.models.retrieve('no-such-model'),
      () => embedClient.embeddings.create({ model: 'no-such-model', input: 'x' }),
    ];
    for (const call of calls) {
      await assert.rejects(call, (error: unknown) => {
        assert.ok(error instanceof OpenAI.NotFoundError, String(error));
        assert.equal(error.status, 404);
        assert.equal(error.code, 'model_not_found');
        return true;
      });
    }
    await checkAll(spec, recorder, calls.length);
  });

  test('temperature out of range: OpenAI.BadRequestError with param temperature', async () => {
    const calls: Array<() => Promise<unknown>> = [
      () => client.chat.completions.create({ model: MODEL, messages: USER, temperature: 3 }),
      () => client.completions.create({ model: MODEL, prompt: 'x', temperature: 3 }),
      () => client.responses.create({ model: MODEL, input: 'x', temperature: 3 }),
    ];
    for (const call of calls) {
      await assert.rejects(call, (error: unknown) => {
        assert.ok(error instanceof OpenAI.BadRequestError, String(error));
        assert.equal(error.status, 400);
        assert.equal(error.param, 'temperature');
        assert.equal(error.type, 'invalid_request_error');
        return true;
      });
    }
    await checkAll(spec, recorder, calls.length);
  });
});

/** The text of a Response's message items (when the SDK did not add `output_text`). */
function outputText(response: OpenAI.Responses.Response | undefined): string {
  let text = '';
  for (const item of response?.output ?? []) {
    if (item.type !== 'message') continue;
    for (const part of item.content) if (part.type === 'output_text') text += part.text;
  }
  return text;
}
