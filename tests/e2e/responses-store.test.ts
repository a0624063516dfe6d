/**
 * Stored responses through the official `openai` client against real frontends with simulated
 * workers: `store` and `previous_response_id`, retrieval, input items, deletion, input-token
 * counts and compaction, with the in-memory store of one frontend and with the NATS JetStream
 * key-value store two frontend replicas share (the real nats-server on 127.0.0.1:4222).
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { jetstreamManager } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import OpenAI from 'openai';
import { type RunningServer, startFrontend } from '../helpers/process.ts';
import { waitFor } from '../helpers/wait.ts';

const MODEL = 'Qwen/Qwen3-0.6B';
const BUCKET = `switchboard_test_${crypto.randomUUID().replaceAll('-', '')}`;

interface Item {
  type: string;
  id?: string;
  content?: Array<{ text?: string }>;
}

/** The fields these tests read from the JSON bodies they get. */
interface Body {
  object?: string;
  id?: string;
  deleted?: boolean;
  input_tokens?: number;
  error?: { param: string | null; code: string | null };
  data?: Item[];
  has_more?: boolean;
  last_id?: string | null;
  output?: Item[];
  usage?: { input_tokens: number };
}

async function json(url: string, init?: RequestInit): Promise<{ status: number; body: Body }> {
  const response = await fetch(url, init);
  return { status: response.status, body: await response.json() as Body };
}

/** Resolves once `url` lists the model (the demo's workers registered). */
function modelListed(url: string) {
  return waitFor(async () => {
    const body = await (await fetch(`${url}/v1/models`)).json() as { data?: { id: string }[] };
    return body.data?.some((m) => m.id === MODEL) === true;
  }, { timeoutMs: 60_000, intervalMs: 100, what: `${MODEL} on ${url}` });
}

const post = (url: string, body: unknown) =>
  json(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });

describe('stored responses', { timeout: 240_000 }, () => {
  const started: RunningServer[] = [];
  let mem: RunningServer;
  let natsA: RunningServer;
  let natsB: RunningServer;
  let none: RunningServer;
  let client: OpenAI;

  before(async () => {
    const nats = ['--responses-store', 'nats', '--responses-store-bucket', BUCKET];
    const demo = { subcommand: 'demo', timeoutMs: 60_000 };
    const results = await Promise.allSettled([
      startFrontend(['--speedup-ratio', '100'], demo),
      startFrontend(['--speedup-ratio', '100', ...nats], demo),
      startFrontend(nats, { timeoutMs: 60_000 }),
      startFrontend(['--responses-store', 'none'], { timeoutMs: 60_000 }),
    ]);
    for (const r of results) if (r.status === 'fulfilled') started.push(r.value);
    const failed = results.find((r) => r.status === 'rejected');
    if (failed) throw (failed as PromiseRejectedResult).reason;
    [mem, natsA, natsB, none] = started as [
      RunningServer,
      RunningServer,
      RunningServer,
      RunningServer,
    ];
    await Promise.all([modelListed(mem.url), modelListed(natsA.url)]);
    client = new OpenAI({ apiKey: 'unused', baseURL: `${mem.url}/v1`, maxRetries: 0 });
  });

  after(async () => {
    await Promise.all(started.map((s) => s.stop()));
    const nc = await connect({ servers: 'nats://127.0.0.1:4222' });
    await (await jetstreamManager(nc)).streams.delete(`KV_${BUCKET}`).catch(() => false);
    await nc.close();
  });

  test('a stored response is retrieved as created, lists its input items, and is continued', async () => {
    const first = await client.responses.create({
      model: MODEL,
      input: 'Remember the code word papaya.',
      max_output_tokens: 4,
    });
    assert.equal((first as { store?: boolean }).store, true, 'stored by default');
    const again = await client.responses.retrieve(first.id);
    assert.deepEqual(again, first);

    const items = await client.responses.inputItems.list(first.id);
    assert.equal(items.data.length, 1);
    const item = items.data[0] as { type: string; role: string; content: unknown; id: string };
    assert.equal(item.type, 'message');
    assert.equal(item.role, 'user');
    assert.deepEqual(item.content, [{
      type: 'input_text',
      text: 'Remember the code word papaya.',
    }]);
    assert.match(item.id, /^msg_/);

    const second = await client.responses.create({
      model: MODEL,
      previous_response_id: first.id,
      input: 'Which code word?',
      max_output_tokens: 4,
    });
    assert.equal(second.previous_response_id, first.id);
    // The continued response saw the first turn: more input tokens than the question alone.
    const alone = await client.responses.create({
      model: MODEL,
      input: 'Which code word?',
      max_output_tokens: 4,
      store: false,
    });
    assert.equal((alone as { store?: boolean }).store, false);
    assert.ok(second.usage!.input_tokens > alone.usage!.input_tokens + 5);
    await assert.rejects(client.responses.retrieve(alone.id), OpenAI.NotFoundError);
  });

  test('input_tokens counts the continued conversation with the chat template', async () => {
    const first = await client.responses.create({
      model: MODEL,
      input: 'One two three.',
      max_output_tokens: 4,
    });
    const alone = await post(`${mem.url}/v1/responses/input_tokens`, {
      model: MODEL,
      input: 'Four?',
    });
    assert.equal(alone.status, 200);
    assert.equal(alone.body.object, 'response.input_tokens');
    const continued = await post(`${mem.url}/v1/responses/input_tokens`, {
      model: MODEL,
      input: 'Four?',
      previous_response_id: first.id,
    });
    assert.ok((continued.body.input_tokens ?? 0) > (alone.body.input_tokens ?? Infinity));
    // The count is exactly what the model is then given as its prompt.
    const run = await client.responses.create({
      model: MODEL,
      input: 'Four?',
      previous_response_id: first.id,
      max_output_tokens: 2,
    });
    assert.equal(run.usage!.input_tokens, continued.body.input_tokens);
  });

  test('a streamed response is stored before its terminal event reaches the client', async () => {
    const stream = await client.responses.create({
      model: MODEL,
      input: 'Stream it.',
      max_output_tokens: 4,
      stream: true,
    });
    let last: OpenAI.Responses.Response | undefined;
    for await (const event of stream) {
      if (event.type === 'response.incomplete' || event.type === 'response.completed') {
        last = event.response;
        // Still inside the stream: the record must already be there.
        const got = await client.responses.retrieve(last.id);
        assert.equal(got.status, last.status);
        assert.deepEqual(got.output, last.output);
      }
    }
    assert.ok(last, 'a terminal event arrived');
  });

  test('delete forgets a response; unknown ids are 404 with their codes', async () => {
    const r = await client.responses.create({ model: MODEL, input: 'x', max_output_tokens: 2 });
    const deleted = await json(`${mem.url}/v1/responses/${r.id}`, { method: 'DELETE' });
    assert.deepEqual(deleted, {
      status: 200,
      body: { id: r.id, object: 'response', deleted: true },
    });
    await assert.rejects(client.responses.retrieve(r.id), OpenAI.NotFoundError);
    const again = await json(`${mem.url}/v1/responses/${r.id}`, { method: 'DELETE' });
    assert.equal(again.status, 404);
    await assert.rejects(
      client.responses.create({ model: MODEL, input: 'x', previous_response_id: r.id }),
      (e: unknown) => {
        assert.ok(e instanceof OpenAI.NotFoundError);
        assert.equal(e.code, 'previous_response_not_found');
        assert.equal(e.param, 'previous_response_id');
        return true;
      },
    );
    const items = await json(`${mem.url}/v1/responses/${r.id}/input_items`);
    assert.equal(items.status, 404);
  });

  test('input_items pages with limit, order and after; a bad limit is a 400', async () => {
    const r = await client.responses.create({
      model: MODEL,
      input: [
        { role: 'user', content: 'a' },
        { role: 'assistant', content: 'b' },
        { role: 'user', content: 'c' },
      ],
      max_output_tokens: 2,
    });
    const page1 = await json(`${mem.url}/v1/responses/${r.id}/input_items?order=asc&limit=2`);
    assert.equal(page1.body.has_more, true);
    const page2 = await json(
      `${mem.url}/v1/responses/${r.id}/input_items?order=asc&limit=2&after=${page1.body.last_id}`,
    );
    assert.equal(page2.body.has_more, false);
    const texts = [...page1.body.data ?? [], ...page2.body.data ?? []].map((i) =>
      i.content?.[0]?.text
    );
    assert.deepEqual(texts, ['a', 'b', 'c']);
    const bad = await json(`${mem.url}/v1/responses/${r.id}/input_items?limit=0`);
    assert.equal(bad.status, 400);
    assert.equal(bad.body.error?.param, 'limit');
  });

  test('compact summarizes into a compaction item that a later request accepts as input', async () => {
    const first = await client.responses.create({
      model: MODEL,
      input: 'We chose papaya.',
      max_output_tokens: 4,
    });
    const compacted = await post(`${mem.url}/v1/responses/compact`, {
      model: MODEL,
      previous_response_id: first.id,
      input: 'And then?',
    });
    assert.equal(compacted.status, 200);
    assert.equal(compacted.body.object, 'response.compaction');
    const types = (compacted.body.output ?? []).map((i) => i.type);
    assert.deepEqual(types, ['message', 'message', 'compaction']);
    assert.ok((compacted.body.usage?.input_tokens ?? 0) > 0);
    const next = await client.responses.create({
      model: MODEL,
      input: [...(compacted.body.output ?? []) as OpenAI.Responses.ResponseInputItem[], {
        role: 'user',
        content: 'Go on.',
      }],
      max_output_tokens: 2,
    });
    assert.ok(next.id.startsWith('resp_'));
  });

  test('NATS key-value store: a response stored by one replica is read and deleted on another', async () => {
    const a = new OpenAI({ apiKey: 'unused', baseURL: `${natsA.url}/v1`, maxRetries: 0 });
    const b = new OpenAI({ apiKey: 'unused', baseURL: `${natsB.url}/v1`, maxRetries: 0 });
    const created = await a.responses.create({
      model: MODEL,
      input: 'shared',
      max_output_tokens: 2,
    });
    assert.deepEqual(await b.responses.retrieve(created.id), created);
    const items = await b.responses.inputItems.list(created.id);
    assert.equal(items.data.length, 1);
    await b.responses.delete(created.id);
    await assert.rejects(a.responses.retrieve(created.id), OpenAI.NotFoundError);
  });

  test('--responses-store none: store true and previous_response_id are 501, default is not stored', async () => {
    const stored = await post(`${none.url}/v1/responses`, {
      model: MODEL,
      input: 'x',
      store: true,
    });
    assert.equal(stored.status, 501);
    assert.equal(stored.body.error?.param, 'store');
    const chained = await post(`${none.url}/v1/responses`, {
      model: MODEL,
      input: 'x',
      previous_response_id: 'resp_1',
    });
    assert.equal(chained.status, 501);
    assert.equal(chained.body.error?.param, 'previous_response_id');
    const get = await json(`${none.url}/v1/responses/resp_1`);
    assert.equal(get.status, 501);
  });
});
