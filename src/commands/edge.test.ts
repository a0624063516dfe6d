import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { createEdgeHandler, EdgeConfigError, resolveEdgeConfig } from './edge.ts';
import { silentLogger } from '../core/logger.ts';

const refused = (env: Record<string, string>, pattern: RegExp) =>
  assert.throws(
    () => createEdgeHandler({ env, logger: silentLogger }),
    (error: unknown) => error instanceof EdgeConfigError && pattern.test(error.message),
  );

describe('createEdgeHandler()', () => {
  test('defaults to the http request plane and etcd, from env bindings', () => {
    const { config } = resolveEdgeConfig({ env: { DYN_ROUTER_MODE: 'random', OTHER: 1 } });
    assert.equal(config.requestPlane, 'http');
    assert.equal(config.discoveryBackend, 'etcd');
    assert.equal(config.routerMode, 'random');
  });

  test('a configuration object wins over env bindings', () => {
    const { config } = resolveEdgeConfig({
      env: { DYN_ROUTER_MODE: 'random' },
      config: { routerMode: 'direct' },
    });
    assert.equal(config.routerMode, 'direct');
  });

  test('refuses what the edge cannot run, naming the alternative', () => {
    refused({ DYN_REQUEST_PLANE: 'tcp' }, /--request-plane tcp.*--request-plane http/s);
    refused({ DYN_REQUEST_PLANE: 'nats' }, /--request-plane nats.*--request-plane http/s);
    refused({ DYN_DISCOVERY_BACKEND: 'file' }, /--discovery-backend etcd/);
    refused({ DYN_ROUTER_MODE: 'kv' }, /--no-router-kv-events/);
    refused({ DYN_ROUTER_MODE: 'kv', DYN_EVENT_PLANE: 'zmq' }, /ZMQ needs raw sockets/);
    refused({ DYN_ROUTER_REPLICA_SYNC: 'true' }, /--router-replica-sync/);
    refused({ DYN_PREPROCESS_WORKERS: '2' }, /inline/);
    refused({ DYN_ROUTER_EVENT_THREADS: '4' }, /use 1/);
    refused({ DYN_MODEL_PATH: '/models/llama' }, /http\(s\) URL/);
    refused({ DYN_KSERVE_GRPC_SERVER: 'true' }, /CLI profile/);
    refused({ DYN_RESPONSES_STORE: 'nats' }, /--responses-store nats.*use mem/s);
  });

  test('approximate KV routing and precise KV routing with an event plane are accepted', async () => {
    const approx = createEdgeHandler({
      env: { DYN_ROUTER_MODE: 'kv', DYN_ROUTER_USE_KV_EVENTS: 'false' },
      logger: silentLogger,
    });
    assert.ok(approx.core.kv);
    await approx.close();
    const subjects: string[] = [];
    const precise = createEdgeHandler({
      env: { DYN_ROUTER_MODE: 'kv' },
      logger: silentLogger,
      events: () =>
        ({
          subscribe: (subject: string) => {
            subjects.push(subject);
            return () => {};
          },
          publish: () => Promise.resolve(),
          close: () => Promise.resolve(),
        }) as never,
    });
    assert.deepEqual(subjects, ['namespace.*.component.*.kv-events']);
    await precise.close();
  });

  test('answers 503 (not ready) while etcd cannot be read, and /live regardless', async () => {
    const handler = createEdgeHandler({
      env: { ETCD_ENDPOINTS: 'http://127.0.0.1:1' },
      logger: silentLogger,
    });
    const live = await handler.fetch(new Request('http://edge/live'));
    assert.equal(live.status, 200);
    const models = await handler.fetch(
      new Request('http://edge/v1/chat/completions', {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ model: 'm', messages: [{ role: 'user', content: 'hi' }] }),
      }),
    );
    assert.equal(models.status, 503);
    await handler.close();
  });
});
