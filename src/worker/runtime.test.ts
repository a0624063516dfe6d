import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createMemKvServer, createMemStore } from '../adapters/discovery/mem.ts';
import { createMemEventBus } from '../adapters/events/mem.ts';
import { silentLogger } from '../core/logger.ts';
import type { RequestPlaneServer } from '../core/plane/types.ts';
import { waitFor } from '../../tests/helpers/wait.ts';
import { createWorkerRuntime } from './runtime.ts';

const ENDPOINT = { namespace: 'dynamo', component: 'backend', endpoint: 'generate' };

/** A request plane that records what the runtime asks of it; `drain()` ends when told to. */
function fakePlane(onDrain: () => void) {
  const calls: string[] = [];
  let finishDrain = () => {};
  const plane: RequestPlaneServer = {
    serve: () => Promise.resolve({ tcp: '127.0.0.1:1/1/generate' }),
    drain() {
      calls.push('drain');
      onDrain();
      return new Promise<void>((resolve) => finishDrain = resolve);
    },
    close() {
      calls.push('close');
      return Promise.resolve();
    },
  };
  return { plane, calls, finishDrain: () => finishDrain() };
}

function runtimeOn(plane: RequestPlaneServer) {
  const server = createMemKvServer();
  const runtime = createWorkerRuntime({
    store: createMemStore({ server }),
    plane,
    events: createMemEventBus().plane(),
    logger: silentLogger,
  });
  return { runtime, registered: () => server.list('v1/instances/').length };
}

test('WorkerRuntime.close() leaves discovery before draining and closes once the requests finished', async () => {
  let registeredAtDrain = -1;
  const fake = fakePlane(() => registeredAtDrain = registered());
  const { runtime, registered } = runtimeOn(fake.plane);
  await runtime.serve(ENDPOINT, async function* () {});
  assert.equal(registered(), 1);

  const closing = runtime.close({ drainTimeoutMs: 600_000 });
  assert.equal(runtime.close(), closing, 'a second close() is the same shutdown');
  await waitFor(() => fake.calls.includes('drain'), { what: 'the drain to start' });
  assert.equal(registeredAtDrain, 0, 'deregistered before draining');
  assert.deepEqual(fake.calls, ['drain'], 'not closed while requests run');

  fake.finishDrain();
  await closing;
  assert.deepEqual(fake.calls, ['drain', 'close']);
});

test('WorkerRuntime.close() closes the plane (cancelling what runs) once the drain timeout passes', async () => {
  const fake = fakePlane(() => {});
  const { runtime } = runtimeOn(fake.plane);
  await runtime.serve(ENDPOINT, async function* () {});
  await runtime.close({ drainTimeoutMs: 1 });
  assert.deepEqual(fake.calls, ['drain', 'close']);
});

test('WorkerRuntime.close() without a drain timeout closes at once', async () => {
  const fake = fakePlane(() => {});
  const { runtime } = runtimeOn(fake.plane);
  await runtime.serve(ENDPOINT, async function* () {});
  await runtime.close();
  assert.deepEqual(fake.calls, ['close']);
});

test('WorkerRuntime.publishLoad() sends the first report at once, then coalesces to the latest per interval', async () => {
  const bus = createMemEventBus();
  const seen: number[] = [];
  bus.plane().subscribe('namespace.dynamo.kv_metrics', (e) => {
    seen.push((e.payload as { active_decode_blocks: number }).active_decode_blocks);
  });
  const fake = fakePlane(() => {});
  const runtime = createWorkerRuntime({
    store: createMemStore({ server: createMemKvServer() }),
    plane: fake.plane,
    events: bus.plane(),
    logger: silentLogger,
    loadReportIntervalMs: 50,
  });
  const load = (blocks: number) => ({
    activeLoad: { worker_id: runtime.workerId, dp_rank: 0, active_decode_blocks: blocks },
    forwardPass: {} as never,
  });
  // A burst of per-step reports: the first goes out, the rest collapse into the last one.
  for (let blocks = 1; blocks <= 10; blocks++) await runtime.publishLoad(ENDPOINT, load(blocks));
  await waitFor(() => seen.length === 2, { what: 'the trailing report' });
  assert.deepEqual(seen, [1, 10]);
  fake.finishDrain();
  await runtime.close();
});

test('WorkerRuntime.publishLoad() with a 0 interval sends every report', async () => {
  const bus = createMemEventBus();
  const seen: number[] = [];
  bus.plane().subscribe('namespace.dynamo.kv_metrics', (e) => {
    seen.push((e.payload as { active_decode_blocks: number }).active_decode_blocks);
  });
  const runtime = createWorkerRuntime({
    store: createMemStore({ server: createMemKvServer() }),
    plane: fakePlane(() => {}).plane,
    events: bus.plane(),
    logger: silentLogger,
    loadReportIntervalMs: 0,
  });
  for (let blocks = 1; blocks <= 3; blocks++) {
    await runtime.publishLoad(ENDPOINT, {
      activeLoad: { worker_id: runtime.workerId, dp_rank: 0, active_decode_blocks: blocks },
      forwardPass: {} as never,
    });
  }
  await waitFor(() => seen.length === 3, { what: 'every report' });
  assert.deepEqual(seen, [1, 2, 3]);
  await runtime.close();
});
