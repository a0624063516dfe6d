/**
 * What workers are told, seen by workers that record every request: image and video parts as
 * Dynamo's `multi_modal_data` (chat and Responses), a 400 for media a text-only template cannot
 * render or a URL that cannot be forwarded, model aliases resolved to the primary model, and a
 * LoRA model routed to the workers that registered it with `routing.lora_name` set.
 */
import assert from 'node:assert/strict';
import { cp, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { ModelCard } from '../../src/core/discovery/model-card.ts';
import { modelCardFor } from '../../src/core/discovery/model-dir.ts';
import type { PreprocessedRequest } from '../../src/core/plane/worker.ts';
import { createInfra } from '../../src/runtime/infra.ts';
import { readModelDir } from '../../src/runtime/model-dir.ts';
import { createWorkerRuntime, type WorkerRuntime } from '../../src/worker/runtime.ts';
import { MODEL_PATH, type Stack, startStack } from '../helpers/stack.ts';
import { waitFor } from '../helpers/wait.ts';

const PNG =
  'data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==';

/** A Qwen-style template that renders image and video placeholders. */
const VISION_TEMPLATE = '{% for m in messages %}<|im_start|>{{ m.role }}\n' +
  '{% if m.content is string %}{{ m.content }}{% else %}{% for p in m.content %}' +
  "{% if p.type == 'image' %}<|vision_start|><|image_pad|><|vision_end|>" +
  "{% elif p.type == 'video' %}<|vision_start|><|video_pad|><|vision_end|>" +
  '{% else %}{{ p.text }}{% endif %}{% endfor %}{% endif %}<|im_end|>\n{% endfor %}' +
  '{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}';

interface Recorder {
  worker: WorkerRuntime;
  requests: PreprocessedRequest[];
}

describe('what workers are told: media, aliases, LoRA', { timeout: 120_000 }, () => {
  let stack: Stack;
  let visionDir: string;
  const recorders: Recorder[] = [];

  /** A worker that records each request and answers two tokens. */
  async function startWorker(component: string, cards: ModelCard[]): Promise<Recorder> {
    const infra = createInfra(
      { discoveryBackend: 'mem', requestPlane: 'tcp', eventPlane: 'nats' },
      { env: {}, logger: stack.logger, local: stack.bus },
    );
    const store = await infra.store();
    const worker = createWorkerRuntime({
      store,
      plane: infra.planeServer(),
      events: infra.events(store),
      logger: stack.logger,
    });
    const requests: PreprocessedRequest[] = [];
    const endpoint = { namespace: 'dynamo', component, endpoint: 'generate' };
    const [first, ...more] = cards;
    await worker.serve(endpoint, async function* (request) {
      requests.push(request as PreprocessedRequest);
      yield { data: { token_ids: [9707], finish_reason: null } };
      yield { data: { token_ids: [0], finish_reason: 'stop' } };
    }, first);
    for (const card of more) await worker.addModel(endpoint, card);
    const recorder = { worker, requests };
    recorders.push(recorder);
    return recorder;
  }

  const cardOf = async (dir: string, name: string, extra: Partial<ModelCard> = {}) => ({
    ...await modelCardFor(await readModelDir(dir), { name, kvCacheBlockSize: 16 }),
    ...extra,
  });

  const chat = (model: string, content: unknown) =>
    stack.post('/v1/chat/completions', {
      model,
      messages: [{ role: 'user', content }],
      max_tokens: 2,
    });

  let vision: Recorder;
  let text: Recorder;
  let loraA: Recorder;
  let baseOnly: Recorder;

  before(async () => {
    stack = await startStack({ mockers: [] });
    visionDir = await mkdtemp(join(tmpdir(), 'switchboard-vision-'));
    await cp(MODEL_PATH, visionDir, { recursive: true });
    const config = JSON.parse(await readFile(join(visionDir, 'tokenizer_config.json'), 'utf8'));
    config.chat_template = VISION_TEMPLATE;
    await writeFile(join(visionDir, 'tokenizer_config.json'), JSON.stringify(config));

    vision = await startWorker('vision', [await cardOf(visionDir, 'vl')]);
    text = await startWorker('text', [
      await cardOf(MODEL_PATH, 'textual', { aliases: ['textual-alias', 'gpt-4o-mini'] }),
    ]);
    // Two workers serve the base model; only the first also serves the LoRA adapter.
    const base = await cardOf(MODEL_PATH, 'base');
    loraA = await startWorker('base', [
      base,
      await cardOf(MODEL_PATH, 'base:sql', { lora: { name: 'sql-adapter' } }),
    ]);
    baseOnly = await startWorker('base', [base]);
    const models = stack.frontend.core.models;
    await waitFor(
      () =>
        models.instances('vl').length === 1 && models.instances('textual').length === 1 &&
        models.instances('base').length === 2 && models.instances('base:sql').length === 1,
      { timeoutMs: 10_000, what: 'the recording workers in discovery' },
    );
  });

  after(async () => {
    await Promise.allSettled(recorders.map((r) => r.worker.close()));
    await stack?.close();
    if (visionDir) await rm(visionDir, { recursive: true, force: true });
  });

  test('chat image and video parts reach the worker as multi_modal_data', async () => {
    const response = await chat('vl', [
      { type: 'text', text: 'Compare' },
      { type: 'image_url', image_url: { url: 'https://example.com/cat.png' } },
      { type: 'image_url', image_url: { url: PNG } },
      { type: 'video_url', video_url: { url: 'https://example.com/clip.mp4' } },
    ]);
    assert.equal(response.status, 200, await response.clone().text());
    const request = vision.requests.at(-1);
    assert.deepEqual(request?.multi_modal_data, {
      image_url: [{ Url: 'https://example.com/cat.png' }, { Url: PNG }],
      video_url: [{ Url: 'https://example.com/clip.mp4' }],
    });
    // The template rendered a placeholder per part: the prompt holds the vision tokens.
    assert.ok((request?.token_ids.length ?? 0) > 5);
  });

  test('a Responses input_image reaches the worker the same way', async () => {
    const response = await stack.post('/v1/responses', {
      model: 'vl',
      input: [{
        role: 'user',
        content: [{ type: 'input_text', text: 'What is it?' }, {
          type: 'input_image',
          image_url: PNG,
        }],
      }],
      max_output_tokens: 2,
      store: false,
    });
    assert.equal(response.status, 200, await response.clone().text());
    assert.deepEqual(vision.requests.at(-1)?.multi_modal_data, { image_url: [{ Url: PNG }] });
  });

  test('text-only requests carry no multi_modal_data', async () => {
    assert.equal((await chat('vl', 'hello')).status, 200);
    assert.equal(vision.requests.at(-1)?.multi_modal_data, undefined);
  });

  test('a text-only template answers 400 saying it cannot render images', async () => {
    const before = text.requests.length;
    const response = await chat('textual', [
      { type: 'text', text: 'see' },
      { type: 'image_url', image_url: { url: PNG } },
    ]);
    assert.equal(response.status, 400);
    const body = await response.json() as { error: { message: string; param: string } };
    assert.match(body.error.message, /chat template cannot render image content/);
    assert.doesNotMatch(body.error.message, /UndefinedValue|not a function/);
    assert.equal(text.requests.length, before, 'nothing reached the worker');
  });

  test('media that cannot be forwarded is a 400 naming the part', async () => {
    const cases: Array<[unknown, string, RegExp]> = [
      [
        { type: 'image_url', image_url: { url: 'file:///etc/passwd' } },
        'messages[0].content[0].image_url.url',
        /unsupported URL scheme/,
      ],
      [
        { type: 'image_url', image_url: { url: 'data:text/plain;base64,aGk=' } },
        'messages[0].content[0].image_url.url',
        /unsupported media type "text\/plain"/,
      ],
      [
        { type: 'input_audio', input_audio: { data: 'AAAA', format: 'wav' } },
        'messages[0].content[0].type',
        /Unsupported content part type "input_audio"/,
      ],
    ];
    for (const [part, param, message] of cases) {
      const response = await chat('vl', [part]);
      assert.equal(response.status, 400, JSON.stringify(part));
      const body = await response.json() as { error: { message: string; param: string } };
      assert.equal(body.error.param, param);
      assert.match(body.error.message, message);
    }
  });

  test('an alias resolves to its model on every route and is listed in /v1/models', async () => {
    const response = await chat('textual-alias', 'hi');
    assert.equal(response.status, 200);
    const body = await response.json() as { model: string };
    assert.equal(body.model, 'textual', 'answers carry the primary name');
    assert.equal(text.requests.at(-1)?.model, 'textual', 'so does the worker request');
    const completion = await stack.post('/v1/completions', {
      model: 'gpt-4o-mini',
      prompt: 'x',
      max_tokens: 2,
    });
    assert.equal(completion.status, 200);
    const responses = await stack.post('/v1/responses', {
      model: 'textual-alias',
      input: 'x',
      max_output_tokens: 2,
      store: false,
    });
    assert.equal(responses.status, 200);
    const list = await (await fetch(`${stack.url}/v1/models`)).json() as {
      data: Array<{ id: string; context_window?: number }>;
    };
    const ids = list.data.map((m) => m.id);
    for (const id of ['textual', 'textual-alias', 'gpt-4o-mini']) assert.ok(ids.includes(id), id);
    const one = await (await fetch(`${stack.url}/v1/models/textual-alias`)).json() as {
      id: string;
    };
    assert.equal(one.id, 'textual-alias');
  });

  test('a LoRA model goes only to workers that serve it, with routing.lora_name', async () => {
    const before = baseOnly.requests.length;
    for (let i = 0; i < 4; i++) assert.equal((await chat('base:sql', `q${i}`)).status, 200);
    assert.equal(baseOnly.requests.length, before, 'the worker without the adapter got none');
    const sent = loraA.requests.slice(-4);
    assert.equal(sent.length, 4);
    for (const request of sent) {
      assert.equal(request.routing?.lora_name, 'sql-adapter');
      assert.equal(request.model, 'base:sql');
    }
    // The base model is not an adapter: no lora_name, and both workers take its requests.
    for (let i = 0; i < 4; i++) assert.equal((await chat('base', `b${i}`)).status, 200);
    assert.ok(baseOnly.requests.length > before, 'round robin reached the base-only worker');
    assert.equal(baseOnly.requests.at(-1)?.routing?.lora_name, undefined);
  });
});
