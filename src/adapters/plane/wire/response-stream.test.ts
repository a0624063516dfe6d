import assert from 'node:assert/strict';
import { test } from 'node:test';
import { PlaneError } from '../../../core/plane/errors.ts';
import {
  decodeRequest,
  encodeComplete,
  encodeControl,
  encodeHandshake,
  encodeItem,
  encodePrologue,
  encodeRequest,
  parseResponseFrame,
} from './messages.ts';
import { openResponseStream, pumpResponses } from './response-stream.ts';
import { decodeTwoPart, type TwoPartMessage } from './two-part.ts';
import type { EndpointHandler } from '../../../core/plane/types.ts';

const json = (b: Uint8Array) => new TextDecoder().decode(b);

test("response frames carry Dynamo's JSON: prologue, item, completion, control", () => {
  const header = (bytes: Uint8Array) => json(decodeTwoPart(bytes).header);
  const body = (bytes: Uint8Array) => json(decodeTwoPart(bytes).body);
  assert.equal(header(encodeHandshake('s-1')), '{"subject":"s-1","stream_type":"response"}');
  assert.equal(header(encodePrologue(null)), '{"error":null}');
  assert.equal(header(encodePrologue('boom')), '{"error":"boom"}');
  assert.equal(body(encodeItem({ t: [1] })), '{"data":{"t":[1]},"complete_final":false}');
  assert.equal(body(encodeComplete()), '{"complete_final":true}');
  assert.equal(header(encodeControl('kill')), '"kill"');
  assert.equal(decodeTwoPart(encodeItem(1)).header.length, 0);
  assert.equal(decodeTwoPart(encodePrologue(null)).body.length, 0);
});

test('parseResponseFrame() classifies every frame kind', () => {
  const kind = (bytes: Uint8Array) => parseResponseFrame(decodeTwoPart(bytes));
  assert.deepEqual(kind(encodeHandshake('s')), {
    kind: 'handshake',
    subject: 's',
    streamType: 'response',
  });
  assert.deepEqual(kind(encodePrologue(null)), { kind: 'prologue', error: null });
  assert.deepEqual(kind(encodeItem('x')), { kind: 'item', data: 'x' });
  assert.deepEqual(kind(encodeComplete()), { kind: 'complete' });
  assert.deepEqual(kind(encodeControl('sentinel')), { kind: 'control', action: 'sentinel' });
});

test('encodeRequest() / decodeRequest() round-trip the control message and a unicode body', () => {
  const control = { id: 'r-1', request_type: 'single_in', response_type: 'many_out' } as const;
  const body = { prompt: 'héllo 世界 🚀', n: [1, 2] };
  const decoded = decodeRequest(encodeRequest(control, body));
  assert.deepEqual(decoded.control, control);
  assert.deepEqual(decoded.body, body);
  assert.throws(
    () => decodeRequest(new Uint8Array(5)),
    (e: unknown) => e instanceof PlaneError && e.message.startsWith('Decode error'),
  );
});

/** Runs `handler` through the pump and collects the frames it wrote. */
async function pump(handler: EndpointHandler, controller = new AbortController()) {
  const frames: TwoPartMessage[] = [];
  const outcome = await pumpResponses(handler, { q: 1 }, {
    id: 'r-1',
    headers: {},
    controller,
    send: (frame) => {
      frames.push(decodeTwoPart(frame));
      return Promise.resolve();
    },
  });
  return { outcome, frames };
}

async function* iterate(frames: TwoPartMessage[]): AsyncGenerator<TwoPartMessage> {
  yield* frames;
}

function open(frames: AsyncIterator<TwoPartMessage>, signal = new AbortController().signal) {
  const calls: string[] = [];
  const stream = openResponseStream(frames, {
    signal,
    cancel: (how) => calls.push(how),
    release: () => calls.push('release'),
  });
  return { stream, calls };
}

async function collect(items: AsyncIterable<unknown>): Promise<unknown[]> {
  const out: unknown[] = [];
  for await (const item of items) out.push(item);
  return out;
}

test('pumpResponses() + openResponseStream() deliver every item in order', async () => {
  const { outcome, frames } = await pump(async function* (body) {
    yield body;
    yield 2;
    yield { three: 3 };
  });
  assert.equal(outcome, 'completed');
  assert.equal(frames.length, 5);
  const { stream, calls } = open(iterate(frames));
  assert.deepEqual(await collect(await stream), [{ q: 1 }, 2, { three: 3 }]);
  assert.deepEqual(calls, ['release']);
});

test('a handler that throws before its first item fails openResponseStream() as kind worker', async () => {
  // deno-lint-ignore require-yield
  const { outcome, frames } = await pump(async function* () {
    await Promise.resolve();
    throw new Error('Model "x" is not loaded');
  });
  assert.equal(outcome, 'failed');
  const { stream, calls } = open(iterate(frames));
  await assert.rejects(
    stream,
    (e: unknown) =>
      e instanceof PlaneError && e.kind === 'worker' && e.message === 'Model "x" is not loaded',
  );
  assert.deepEqual(calls, ['release']);
});

test('a handler that throws mid-stream yields an error item, then completes', async () => {
  const { frames } = await pump(async function* () {
    yield 1;
    throw new Error('engine fault');
  });
  const items = await collect(await open(iterate(frames)).stream);
  assert.deepEqual(items, [1, { event: 'error', comment: ['engine fault'] }]);
});

test('frames that end without the completion marker throw kind disconnected', async () => {
  const { frames } = await pump(async function* () {
    yield 1;
    yield 2;
  });
  const { stream, calls } = open(iterate(frames.slice(0, -1)));
  await assert.rejects(
    collect(await stream),
    (e: unknown) =>
      e instanceof PlaneError && e.kind === 'disconnected' &&
      e.message === 'Stream ended before generation completed',
  );
  assert.deepEqual(calls, ['release']);
});

test('aborting the signal kills the stream and throws its reason', async () => {
  const controller = new AbortController();
  let release!: () => void;
  const hang = new Promise<void>((r) => (release = r));
  async function* frames(): AsyncGenerator<TwoPartMessage> {
    yield decodeTwoPart(encodePrologue(null));
    yield decodeTwoPart(encodeItem(1));
    await hang;
  }
  const { stream, calls } = open(frames(), controller.signal);
  const iterator = (await stream)[Symbol.asyncIterator]();
  assert.deepEqual(await iterator.next(), { done: false, value: 1 });
  const pending = iterator.next();
  controller.abort(new Error('client went away'));
  await assert.rejects(pending, /client went away/);
  assert.deepEqual(calls, ['kill', 'release']);
  release();
});

test('ending iteration early stops the worker', async () => {
  const { frames } = await pump(async function* () {
    yield 1;
    yield 2;
  });
  const { stream, calls } = open(iterate(frames));
  for await (const _ of await stream) break;
  assert.deepEqual(calls, ['stop', 'release']);
});

test('pumpResponses() aborts the handler signal and stops when a send fails', async () => {
  const controller = new AbortController();
  let seen: AbortSignal | undefined;
  const outcome = await pumpResponses(
    async function* (_body, context) {
      seen = context.signal;
      yield 1;
      yield 2;
    },
    null,
    {
      id: 'r',
      headers: {},
      controller,
      send: () => Promise.reject(new Error('socket closed')),
    },
  );
  assert.equal(outcome, 'aborted');
  assert.equal(seen?.aborted, true);
});

test('pumpResponses() stops waiting on a handler that ignores its aborted signal', async () => {
  const controller = new AbortController();
  const never = new Promise<never>(() => {});
  const result = pump(async function* () {
    yield 1;
    await never;
  }, controller);
  controller.abort();
  const { outcome } = await result;
  assert.equal(outcome, 'aborted');
});
