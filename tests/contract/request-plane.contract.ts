/**
 * The request-plane contract: every transport (tcp, http, nats) runs these same tests through
 * `RequestPlaneClient` and `RequestPlaneServer`, and nothing else.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { EndpointId, TransportAddress } from '../../src/core/discovery/types.ts';
import { PlaneError, type PlaneErrorKind } from '../../src/core/plane/errors.ts';
import type {
  EndpointHandler,
  HandlerContext,
  PlaneRequest,
  RequestPlaneClient,
  RequestPlaneServer,
} from '../../src/core/plane/types.ts';
import { waitFor } from '../helpers/wait.ts';

export interface PlaneFixtureOptions {
  /** Passed to the server: requests past it are refused as overloaded. */
  maxInFlight?: number;
}

export interface PlaneFixture {
  client: RequestPlaneClient;
  server: RequestPlaneServer;
  /** An address of this transport that nobody serves. */
  deadAddress(): Promise<TransportAddress>;
  /** `address` with its endpoint renamed to one the server does not serve. */
  unknownEndpoint(address: TransportAddress): TransportAddress;
  /** Frees whatever the fixture holds beyond the client and server. @default nothing */
  close?(): Promise<void>;
}

export type PlaneFixtureFactory = (options: PlaneFixtureOptions) => Promise<PlaneFixture>;

/** Upper bound on any single wait; the tests never sleep, they wait for events up to this. */
const WAIT_MS = 10_000;

const ENDPOINT: EndpointId = { namespace: 'test', component: 'backend', endpoint: 'generate' };

function instanceId(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(8));
  return [...bytes].map((b) => b.toString(16).padStart(2, '0')).join('').replace(/^0+/, '') ||
    '1';
}

/** Resolves with `promise`, or fails the test after `ms` saying what never happened. */
function within<T>(promise: Promise<T>, what: string, ms = WAIT_MS): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`Timed out after ${ms} ms waiting for ${what}`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/** Records each handler context, so a test can wait for the handler to start or abort. */
function contexts() {
  const seen: HandlerContext[] = [];
  return {
    record: (context: HandlerContext) => void seen.push(context),
    /** The first context, once a handler received it. */
    first: () => waitFor(() => seen[0], { timeoutMs: WAIT_MS, what: 'the handler to start' }),
    /** Resolves once the first handler's signal aborted. */
    async aborted(): Promise<void> {
      const context = await waitFor(() => seen[0], { timeoutMs: WAIT_MS, what: 'the handler' });
      await waitFor(() => context.signal.aborted, {
        timeoutMs: WAIT_MS,
        what: 'the handler signal to abort',
      });
    },
  };
}

/** Waits (forever) until `signal` aborts, then throws its reason, as engines do. */
function untilAborted(signal: AbortSignal): Promise<never> {
  return new Promise((_, reject) => {
    if (signal.aborted) reject(signal.reason);
    else signal.addEventListener('abort', () => reject(signal.reason), { once: true });
  });
}

async function collect(items: AsyncIterable<unknown>): Promise<unknown[]> {
  const out: unknown[] = [];
  for await (const item of items) out.push(item);
  return out;
}

function request(body: unknown, headers: Record<string, string> = {}): PlaneRequest {
  return { id: crypto.randomUUID(), headers, body };
}

const isPlaneError = (kind: PlaneErrorKind, message?: RegExp) => (error: unknown) => {
  assert.ok(error instanceof PlaneError, `expected a PlaneError, got ${String(error)}`);
  assert.equal(error.kind, kind, `kind of "${error.message}"`);
  if (message) assert.match(error.message, message);
  return true;
};

export function requestPlaneContract(transport: string, factory: PlaneFixtureFactory): void {
  /** Runs `body` against a fresh fixture and always tears it down. */
  async function withPlane(
    options: PlaneFixtureOptions,
    body: (fixture: PlaneFixture) => Promise<void>,
  ): Promise<void> {
    const fixture = await factory(options);
    try {
      await body(fixture);
    } finally {
      await fixture.client.close();
      await fixture.server.close();
      await fixture.close?.();
    }
  }

  const serve = (server: RequestPlaneServer, handler: EndpointHandler) =>
    server.serve(ENDPOINT, instanceId(), handler);
  const signal = () => new AbortController().signal;

  test(`${transport}: a unary request gets its one response`, () =>
    withPlane({}, async ({ client, server }) => {
      const address = await serve(server, async function* (body) {
        yield { echo: body };
      });
      const items = await collect(
        await client.send(address, request({ n: 1 }), { signal: signal() }),
      );
      assert.deepEqual(items, [{ echo: { n: 1 } }]);
    }));

  test(`${transport}: a stream of 1000 items arrives complete and in order`, () =>
    withPlane({}, async ({ client, server }) => {
      const address = await serve(server, async function* () {
        for (let i = 0; i < 1000; i++) yield { index: i, token_ids: [i] };
      });
      const items = await collect(await client.send(address, request({}), { signal: signal() }));
      assert.equal(items.length, 1000);
      assert.deepEqual(
        items,
        Array.from({ length: 1000 }, (_, i) => ({ index: i, token_ids: [i] })),
      );
    }));

  test(`${transport}: JSON bodies with unicode, the request id and headers reach the handler`, () =>
    withPlane({}, async ({ client, server }) => {
      const seen = contexts();
      const address = await serve(server, async function* (body, context) {
        seen.record(context);
        yield body;
        yield { reply: 'ça va? 你好 🙂 \u0000 "quoted" \\ \n' };
      });
      const body = { prompt: 'héllo wörld 世界 🚀', nested: { list: [1, 2.5, null, true] } };
      const sent = request(body, {
        'x-request-id': 'req-42',
        traceparent: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01',
      });
      const items = await collect(await client.send(address, sent, { signal: signal() }));
      assert.deepEqual(items, [body, { reply: 'ça va? 你好 🙂 \u0000 "quoted" \\ \n' }]);
      const context = await seen.first();
      assert.equal(context.id, sent.id);
      assert.equal(context.headers['x-request-id'], 'req-42');
      assert.equal(context.headers.traceparent, sent.headers.traceparent);
    }));

  test(`${transport}: 64 concurrent requests to one worker each get their own stream`, () =>
    withPlane({}, async ({ client, server }) => {
      const address = await serve(server, async function* (body) {
        const { n } = body as { n: number };
        for (let i = 0; i < 5; i++) {
          await Promise.resolve();
          yield { n, i };
        }
      });
      const results = await Promise.all(
        Array.from(
          { length: 64 },
          async (_, n) => collect(await client.send(address, request({ n }), { signal: signal() })),
        ),
      );
      results.forEach((items, n) => {
        assert.deepEqual(items, [0, 1, 2, 3, 4].map((i) => ({ n, i })));
      });
    }));

  test(`${transport}: a handler that throws before its first item fails send() as kind worker`, () =>
    withPlane({}, async ({ client, server }) => {
      // deno-lint-ignore require-yield
      const address = await serve(server, async function* () {
        await Promise.resolve();
        throw new Error('Model "ghost" is not loaded');
      });
      await assert.rejects(
        client.send(address, request({}), { signal: signal() }),
        isPlaneError('worker', /^Model "ghost" is not loaded$/),
      );
    }));

  test(`${transport}: a handler that throws mid-stream ends with an error item, then completes`, () =>
    withPlane({}, async ({ client, server }) => {
      const address = await serve(server, async function* () {
        yield 1;
        yield 2;
        throw new Error('engine fault');
      });
      const items = await collect(await client.send(address, request({}), { signal: signal() }));
      assert.deepEqual(items, [1, 2, { event: 'error', comment: ['engine fault'] }]);
    }));

  test(`${transport}: aborting the client signal mid-stream aborts the handler's signal`, () =>
    withPlane({}, async ({ client, server }) => {
      const seen = contexts();
      const address = await serve(server, async function* (_body, context) {
        seen.record(context);
        yield 'first';
        await untilAborted(context.signal);
      });
      const controller = new AbortController();
      const stream = await client.send(address, request({}), { signal: controller.signal });
      const iterator = stream[Symbol.asyncIterator]();
      assert.deepEqual(await iterator.next(), { done: false, value: 'first' });
      const pending = iterator.next();
      const reason = new Error('client went away');
      controller.abort(reason);
      await assert.rejects(pending, (error) => error === reason);
      await seen.aborted();
    }));

  test(`${transport}: aborting before the first item rejects send() and aborts the handler`, () =>
    withPlane({}, async ({ client, server }) => {
      const seen = contexts();
      const address = await serve(server, async function* (_body, context) {
        seen.record(context);
        await untilAborted(context.signal);
        yield 'never';
      });
      const controller = new AbortController();
      const sending = client.send(address, request({}), { signal: controller.signal });
      await seen.first();
      controller.abort(new Error('gave up'));
      await assert.rejects(sending, /gave up/);
      await seen.aborted();
    }));

  test(`${transport}: ending iteration early stops the handler`, () =>
    withPlane({}, async ({ client, server }) => {
      const seen = contexts();
      const address = await serve(server, async function* (_body, context) {
        seen.record(context);
        for (let i = 0; !context.signal.aborted; i++) {
          yield i;
          await new Promise((resolve) => setTimeout(resolve, 1));
        }
      });
      const stream = await client.send(address, request({}), { signal: signal() });
      for await (const item of stream) if (item === 2) break;
      await seen.aborted();
    }));

  test(`${transport}: a worker that dies mid-stream fails iteration as kind disconnected`, () =>
    withPlane({}, async ({ client, server }) => {
      const seen = contexts();
      const address = await serve(server, async function* (_body, context) {
        seen.record(context);
        yield 'first';
        await untilAborted(context.signal);
      });
      const stream = await client.send(address, request({}), { signal: signal() });
      const iterator = stream[Symbol.asyncIterator]();
      assert.deepEqual(await iterator.next(), { done: false, value: 'first' });
      await server.close();
      await assert.rejects(
        within(iterator.next(), 'the stream to fail'),
        isPlaneError('disconnected', /^Stream ended before generation completed$/),
      );
    }));

  test(`${transport}: sending to an address nobody serves fails as cannot_connect`, () =>
    withPlane({}, async (fixture) => {
      const address = await fixture.deadAddress();
      await assert.rejects(
        within(fixture.client.send(address, request({}), { signal: signal() }), 'send() to fail'),
        isPlaneError('cannot_connect'),
      );
    }));

  test(`${transport}: an endpoint the live server does not serve fails send()`, () =>
    withPlane({}, async (fixture) => {
      const address = await serve(fixture.server, async function* () {
        yield 'ok';
      });
      await assert.rejects(
        fixture.client.send(fixture.unknownEndpoint(address), request({}), { signal: signal() }),
        isPlaneError('cannot_connect'),
      );
      // The connection stays usable for the endpoint that exists.
      const items = await collect(
        await fixture.client.send(address, request({}), { signal: signal() }),
      );
      assert.deepEqual(items, ['ok']);
    }));

  test(`${transport}: a worker at its in-flight limit refuses more as kind overloaded`, () =>
    withPlane({ maxInFlight: 1 }, async ({ client, server }) => {
      const seen = contexts();
      const address = await serve(server, async function* (_body, context) {
        seen.record(context);
        yield 'busy';
        await untilAborted(context.signal);
      });
      const controller = new AbortController();
      const first = await client.send(address, request({}), { signal: controller.signal });
      await first[Symbol.asyncIterator]().next();
      await assert.rejects(
        client.send(address, request({}), { signal: signal() }),
        isPlaneError('overloaded', /^Server overloaded:/),
      );
      controller.abort();
      await seen.aborted();
    }));

  test(`${transport}: drain() lets running streams finish and refuses new requests as cannot_connect`, () =>
    withPlane({}, async ({ client, server }) => {
      let release = () => {};
      const gate = new Promise<void>((resolve) => release = resolve);
      let started = 0;
      const address = await serve(server, async function* () {
        started++;
        yield 'first';
        await gate;
        yield 'last';
      });
      const running = await client.send(address, request({}), { signal: signal() });
      const iterator = running[Symbol.asyncIterator]();
      assert.deepEqual(await iterator.next(), { done: false, value: 'first' });

      let drained = false;
      const draining = server.drain().then(() => void (drained = true));
      await assert.rejects(
        within(client.send(address, request({}), { signal: signal() }), 'send() to be refused'),
        isPlaneError('cannot_connect'),
      );
      assert.equal(started, 1, 'the refused request never reached the handler');
      assert.equal(drained, false, 'drain() waits for the running stream');

      release();
      assert.deepEqual(await iterator.next(), { done: false, value: 'last' });
      assert.deepEqual(await iterator.next(), { done: true, value: undefined });
      await within(draining, 'drain() to resolve');
    }));
}
