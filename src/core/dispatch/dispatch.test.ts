import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { WORKERS } from '../../../tests/contract/routing-policy.contract.ts';
import type { WorkerInstance } from '../discovery/models.ts';
import type { ApiError } from '../errors.ts';
import { silentLogger } from '../logger.ts';
import { PlaneError } from '../plane/errors.ts';
import type { RequestPlaneClient } from '../plane/types.ts';
import type { KvBooking, KvRouter } from '../router/kv/types.ts';
import { createLoadTracker } from '../router/load.ts';
import { createInhibitor, createRoundRobinPolicy } from '../router/policy.ts';
import { createSessionTable } from '../router/sessions.ts';
import { createPromMetricFactory } from '../../adapters/prom-metrics.ts';
import { resolveConfig } from '../config.ts';
import { createCore } from '../core.ts';
import { dispatch, type DispatchOptions, routingOf } from './dispatch.ts';

/** The worker id in a fake transport address. */
const idOf = (address: unknown) => (address as { tcp: string }).tcp.split('/')[1] as string;

/** A request plane whose workers answer one item, except those told to fail. */
function fakePlane(failing: Record<string, PlaneError> = {}) {
  const sent: string[] = [];
  const plane: RequestPlaneClient = {
    send(address) {
      const id = idOf(address);
      sent.push(id);
      const error = failing[id];
      if (error) return Promise.reject(error);
      return Promise.resolve((async function* () {
        yield { data: { token_ids: [1, 2] } };
      })());
    },
    close: () => Promise.resolve(),
  };
  return { plane, sent };
}

function options(
  plane: RequestPlaneClient,
  extra: Partial<DispatchOptions> = {},
): DispatchOptions {
  return {
    plane,
    policy: createRoundRobinPolicy(),
    inhibitor: createInhibitor({ now: () => 0 }),
    logger: silentLogger,
    model: 'm',
    instances: WORKERS,
    request: { id: 'r', headers: {}, body: {} },
    signal: new AbortController().signal,
    overloadStatus: 503,
    ...extra,
  };
}

async function drain(stream: AsyncIterable<unknown>) {
  for await (const _ of stream) { /* read to the end */ }
}

const stalled = () =>
  new PlaneError(
    'cannot_connect',
    'Worker "x" did not open its response stream within 5000 ms',
  );

describe('dispatch(): a worker that does not start the request', () => {
  test('is retried on another worker, and each retry is reported', async () => {
    const { plane, sent } = fakePlane({ a1: stalled(), b2: stalled(), c3: stalled() });
    const retried: string[] = [];
    const dispatched = await dispatch(options(plane, {
      onRetry: (failed, error) => {
        assert.match(error.message, /did not open its response stream/);
        retried.push(failed.instanceId);
      },
    }));
    assert.equal(dispatched.instance.instanceId, 'd4');
    assert.deepEqual(sent, ['a1', 'c3', 'b2', 'd4']);
    assert.deepEqual(retried, ['a1', 'c3', 'b2']);
  });

  test('fails with 503 only once every worker has failed, without a last retry report', async () => {
    const failing = Object.fromEntries(WORKERS.map((w) => [w.instanceId, stalled()]));
    const { plane } = fakePlane(failing);
    let retries = 0;
    await assert.rejects(
      dispatch(options(plane, { onRetry: () => retries++ })),
      (e: ApiError) => e.status === 503,
    );
    assert.equal(retries, 3);
  });

  test('a request pinned to a worker is not sent elsewhere', async () => {
    const { plane, sent } = fakePlane({ b2: stalled() });
    await assert.rejects(
      dispatch(options(plane, { backendInstanceId: 'b2' })),
      (e: ApiError) => e.status === 503,
    );
    assert.deepEqual(sent, ['b2']);
  });
});

describe('dispatch(): in-flight accounting', () => {
  test('counts the request and its tokens until its stream ends', async () => {
    const { plane } = fakePlane();
    const load = createLoadTracker();
    const dispatched = await dispatch(options(plane, { load, tokens: 10 }));
    assert.deepEqual(load.of('a1'), { requests: 1, tokens: 10, untokenized: 0 });
    await drain(dispatched.stream);
    assert.deepEqual(load.of('a1'), { requests: 0, tokens: 0, untokenized: 0 });
  });

  test('a failed attempt is not counted; an aborted call is released unread', async () => {
    const { plane } = fakePlane({ a1: stalled() });
    const load = createLoadTracker();
    const controller = new AbortController();
    const { instance } = await dispatch(options(plane, { load, signal: controller.signal }));
    assert.notEqual(instance.instanceId, 'a1');
    assert.equal(load.of('a1').requests, 0);
    assert.deepEqual(load.of(instance.instanceId), { requests: 1, tokens: 0, untokenized: 1 });
    controller.abort();
    assert.equal(load.of(instance.instanceId).requests, 0);
  });
});

describe('dispatch(): session affinity', () => {
  const session = (id: string, table = createSessionTable({ now: () => 0, ttlSecs: 300 })) => ({
    table,
    request: { sessionId: id },
  });

  test('requests of a session stick to the worker of its first request', async () => {
    const { plane, sent } = fakePlane();
    const policy = createRoundRobinPolicy();
    const s = session('s1');
    for (let i = 0; i < 3; i++) await dispatch(options(plane, { policy, session: s }));
    // Another session, and requests without one, are routed by the mode.
    await dispatch(options(plane, { policy, session: session('s2', s.table) }));
    await dispatch(options(plane, { policy }));
    assert.deepEqual(sent, ['a1', 'a1', 'a1', 'b2', 'c3']);
  });

  test('a session whose worker is gone, busy or just failed moves to another one', async () => {
    const s = session('s1');
    s.table.bind(s.request, 'a1');
    const { plane, sent } = fakePlane();
    // Gone: a1 is no longer a candidate.
    await dispatch(options(plane, { session: s, instances: WORKERS.slice(1) }));
    assert.equal(s.table.lookup('s1'), 'b2');
    // Busy: load shedding leaves b2 out.
    await dispatch(options(plane, {
      session: s,
      busy: { isBusy: (w) => w.instanceId === 'b2', markOverloaded() {}, onRejected() {} },
    }));
    assert.equal(s.table.lookup('s1'), 'a1');
    // Failed: a1 does not start the request; it is retried elsewhere and the session follows.
    const failing = fakePlane({ a1: stalled() });
    const retried = await dispatch(options(failing.plane, { session: s }));
    assert.equal(retried.instance.instanceId, 'b2');
    assert.equal(s.table.lookup('s1'), 'b2');
    assert.deepEqual([...sent, ...failing.sent], ['b2', 'a1', 'a1', 'b2']);
  });

  test('action "close" serves the request on the session worker, then forgets the session', async () => {
    const s = session('s1');
    s.table.bind(s.request, 'c3');
    const { plane, sent } = fakePlane();
    await dispatch(
      options(plane, { session: { ...s, request: { sessionId: 's1', action: 'close' } } }),
    );
    assert.deepEqual(sent, ['c3']);
    assert.equal(s.table.lookup('s1'), undefined);
  });

  test('an explicit worker id wins over the session', async () => {
    const s = session('s1');
    s.table.bind(s.request, 'c3');
    const { plane, sent } = fakePlane();
    await dispatch(options(plane, { session: s, backendInstanceId: 'd4' }));
    assert.deepEqual(sent, ['d4']);
    assert.equal(s.table.lookup('s1'), 'c3');
  });

  test('in KV mode the KV router books the session worker, whatever it would have chosen', async () => {
    const asked: string[][] = [];
    const router: KvRouter = {
      route(request) {
        asked.push(request.candidates.map((c) => c.instanceId));
        // This router always prefers the last candidate.
        const instance = request.candidates.at(-1) as WorkerInstance;
        const booking: KvBooking = {
          instance,
          dpRank: 0,
          overlapBlocks: 0,
          requiredBlocks: 0,
          firstToken() {},
          tokens() {},
          free() {},
        };
        return Promise.resolve(booking);
      },
    };
    const s = session('s1');
    const { plane, sent } = fakePlane();
    const kv = { router, request: { requestId: 'r', tokens: [1, 2, 3] } };
    await dispatch(options(plane, { kv, session: s }));
    await dispatch(options(plane, { kv, session: s, instances: [...WORKERS].reverse() }));
    assert.deepEqual(sent, ['d4', 'd4']);
    assert.deepEqual(asked, [['a1', 'b2', 'c3', 'd4'], ['d4']]);
  });
});

describe('routingOf()', () => {
  const coreWith = (argv: string[]) => {
    const resolved = resolveConfig({ argv, env: {} });
    assert.ok(resolved.ok);
    const metrics = createPromMetricFactory();
    return { core: createCore({ logger: silentLogger, metrics }, resolved.config), metrics };
  };
  const call = (sessionId?: string) => ({
    requestId: 'r',
    headers: {},
    signal: new AbortController().signal,
    ...(sessionId ? { nvext: { session_control: { session_id: sessionId, timeout: 60 } } } : {}),
  });

  test('binds sessions per model and pool, with the request timeout', () => {
    const { core } = coreWith([]);
    const decode = routingOf(core, { model: 'm', call: call('s') });
    const prefill = routingOf(core, { model: 'm', call: call('s'), pool: 'prefill' });
    const other = routingOf(core, { model: 'other', call: call('s') });
    const keys = [decode, prefill, other].map((r) => r.session?.request.sessionId);
    assert.equal(new Set(keys).size, 3, `${keys}`);
    assert.equal(decode.session?.request.ttlSecs, 60);
    assert.equal(decode.session?.table, core.sessions);
    assert.equal(routingOf(core, { model: 'm', call: call() }).session, undefined);
  });

  test('only the load-aware modes count load', () => {
    for (const mode of ['least-loaded', 'power-of-two-choices']) {
      const { core } = coreWith(['--router-mode', mode]);
      const routing = routingOf(core, { model: 'm', call: call(), tokens: 7 });
      assert.equal(routing.load, core.load);
      assert.equal(routing.tokens, 7);
    }
    for (const mode of ['round-robin', 'kv', 'random']) {
      const { core } = coreWith(['--router-mode', mode]);
      assert.equal(routingOf(core, { model: 'm', call: call(), tokens: 7 }).load, undefined);
    }
  });

  test('--router-session-affinity-ttl-secs 0 ignores session ids', () => {
    const { core } = coreWith(['--router-session-affinity-ttl-secs', '0']);
    assert.equal(routingOf(core, { model: 'm', call: call('s') }).session, undefined);
  });

  test('each retry counts as a new_request migration of the model', async () => {
    const { core, metrics } = coreWith([]);
    const { onRetry } = routingOf(core, { model: 'm', call: call() });
    onRetry?.(WORKERS[0]!, stalled());
    onRetry?.(WORKERS[1]!, stalled());
    assert.match(
      await metrics.render(),
      /model_migration_total\{model="m",migration_type="new_request"\} 2/,
    );
  });
});
