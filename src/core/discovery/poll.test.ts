import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { resolveConfig } from '../config.ts';
import { silentLogger } from '../logger.ts';
import { createModelRegistry, type WorkerInstance } from './models.ts';
import { createDiscoveryPoller } from './poll.ts';

const config = (() => {
  const r = resolveConfig({ argv: [], env: {} });
  if (!r.ok) throw new Error(r.errors.join());
  return r.config;
})();
const endpoint = { namespace: 'ns', component: 'backend', endpoint: 'generate' };
const card = (name: string) => ({
  display_name: name,
  kv_cache_block_size: 16,
  model_type: 'Chat | Completions',
  model_input: 'Text',
});
const instance = (id: string): WorkerInstance => ({
  instanceId: id,
  endpoint,
  transport: { http: `http://127.0.0.1:1/v1/rpc/generate` },
});

describe('createDiscoveryPoller()', () => {
  test('re-reads only when the snapshot is older than maxAgeMs, and applies the diff', async () => {
    let t = 0;
    let lists = 0;
    let state = { models: ['a'], instances: ['1', '2'] };
    const registry = createModelRegistry();
    const poller = createDiscoveryPoller({
      feed: {
        listModels: () => {
          lists++;
          return Promise.resolve(
            state.instances.flatMap((id) =>
              state.models.map((m) => ({ source: { ...endpoint, instanceId: id }, card: card(m) }))
            ),
          );
        },
        listInstances: () => Promise.resolve(state.instances.map(instance)),
      },
      registry,
      config,
      logger: silentLogger,
      maxAgeMs: 1000,
      now: () => t,
    });
    await poller.refresh();
    assert.deepEqual(registry.list().map((m) => m.name), ['a']);
    assert.equal(registry.instances('a').length, 2);
    state = { models: ['a'], instances: ['1'] };
    t = 999;
    await poller.refresh();
    assert.equal(lists, 1, 'fresh snapshot: no read');
    assert.equal(registry.instances('a').length, 2);
    t = 1000;
    await poller.refresh();
    assert.equal(lists, 2);
    assert.equal(registry.instances('a').length, 1);
    state = { models: [], instances: [] };
    t = 2000;
    await poller.refresh();
    assert.deepEqual(registry.list(), []);
  });

  test('keeps the last snapshot when a read fails, and rejects only before the first', async () => {
    let t = 0;
    let fail = true;
    const registry = createModelRegistry();
    const poller = createDiscoveryPoller({
      feed: {
        listModels: () =>
          fail ? Promise.reject(new Error('etcd down')) : Promise.resolve([
            { source: { ...endpoint, instanceId: '1' }, card: card('a') },
          ]),
        listInstances: () => Promise.resolve([instance('1')]),
      },
      registry,
      config,
      logger: silentLogger,
      maxAgeMs: 10,
      now: () => t,
    });
    await assert.rejects(poller.refresh(), /etcd down/);
    fail = false;
    t = 5000;
    await poller.refresh();
    fail = true;
    t = 10000;
    await poller.refresh();
    assert.deepEqual(registry.list().map((m) => m.name), ['a']);
    assert.ok((poller.ageMs() ?? 0) >= 5000);
  });
});
