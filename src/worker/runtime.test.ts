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
