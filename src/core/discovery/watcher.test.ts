import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { resolveConfig } from '../config.ts';
import { createJsonLogger } from '../logger.ts';
import { createModelRegistry, type WorkerInstance } from './models.ts';
import {
  applyCardOverrides,
  type DiscoveryFeed,
  type InstanceEvent,
  type ModelEvent,
  startModelWatcher,
} from './watcher.ts';

/** An async queue standing in for a discovery watch. */
function channel<T>() {
  const items: T[] = [];
  let wake: (() => void) | undefined;
  return {
    push(item: T) {
      items.push(item);
      wake?.();
    },
    async *iterate(signal: AbortSignal): AsyncIterable<T> {
      while (!signal.aborted) {
        const item = items.shift();
        if (item !== undefined) yield item;
        else await new Promise<void>((resolve) => (wake = resolve));
      }
    },
  };
}

const ep = (namespace: string) => ({ namespace, component: 'backend', endpoint: 'generate' });
const card = (name: string) => ({
  display_name: name,
  kv_cache_block_size: 16,
  model_type: 'Chat | Completions',
  model_input: 'Tokens',
});
const instance = (namespace: string, id: string): WorkerInstance => ({
  instanceId: id,
  endpoint: ep(namespace),
  transport: { tcp: `127.0.0.1:1/${id}/generate` },
});

function config(argv: string[] = []) {
  const result = resolveConfig({ argv, env: {} });
  if (!result.ok) throw new Error(result.errors.join());
  return result.config;
}

async function until(check: () => boolean) {
  for (let i = 0; i < 1000 && !check(); i++) await new Promise((r) => setTimeout(r, 1));
  assert.ok(check());
}

describe('startModelWatcher()', () => {
  test('loads the initial state, then follows added and removed cards and instances', async () => {
    const models = channel<ModelEvent>();
    const instances = channel<InstanceEvent>();
    const feed: DiscoveryFeed = {
      listModels: () =>
        Promise.resolve([{ source: { ...ep('dynamo'), instanceId: 'a' }, card: card('m') }]),
      listInstances: () => Promise.resolve([instance('dynamo', 'a')]),
      watchModels: (signal) => models.iterate(signal),
      watchInstances: (signal) => instances.iterate(signal),
    };
    const registry = createModelRegistry();
    const logs: Record<string, unknown>[] = [];
    const logger = createJsonLogger({ write: (l) => logs.push(JSON.parse(l)) });
    const abort = new AbortController();
    await startModelWatcher({ feed, registry, config: config(), logger, signal: abort.signal });
    assert.deepEqual(registry.instances('m').map((i) => i.instanceId), ['a']);

    models.push({ kind: 'added', source: { ...ep('dynamo'), instanceId: 'b' }, card: card('m') });
    instances.push({ kind: 'added', instance: instance('dynamo', 'b') });
    await until(() => registry.instances('m').length === 2);

    models.push({
      kind: 'added',
      source: { ...ep('dynamo'), instanceId: 'c' },
      card: { ...card('m'), kv_cache_block_size: 32 },
    });
    await until(() => logs.some((l) => l.msg === 'refused a worker whose model card disagrees'));

    models.push({ kind: 'removed', source: { ...ep('dynamo'), instanceId: 'a' } });
    models.push({ kind: 'removed', source: { ...ep('dynamo'), instanceId: 'b' } });
    await until(() => registry.list().length === 0);
    assert.ok(logs.some((l) => l.msg === 'removed model' && l.model === 'm'));
    abort.abort();
    models.push({ kind: 'removed', source: { ...ep('dynamo'), instanceId: 'z' } });
  });

  test('cards outside the namespace filter are ignored', async () => {
    const never = channel<never>();
    const feed: DiscoveryFeed = {
      listModels: () =>
        Promise.resolve([
          { source: { ...ep('prod-a'), instanceId: 'a' }, card: card('m1') },
          { source: { ...ep('staging'), instanceId: 'b' }, card: card('m2') },
        ]),
      listInstances: () => Promise.resolve([]),
      watchModels: (signal) => never.iterate(signal),
      watchInstances: (signal) => never.iterate(signal),
    };
    const registry = createModelRegistry();
    const abort = new AbortController();
    await startModelWatcher({
      feed,
      registry,
      config: config(['--namespace-prefix', 'prod']),
      logger: createJsonLogger({ write: () => {} }),
      signal: abort.signal,
    });
    assert.deepEqual(registry.list().map((m) => m.name), ['m1']);
    abort.abort();
    never.push(undefined as never);
  });
});

test('applyCardOverrides() renames, resizes blocks and points the tokenizer at --model-path', () => {
  const out = applyCardOverrides(
    { ...card('m'), model_input: 'Tokens', runtime_config: {} },
    { modelName: 'served', kvCacheBlockSize: 32, modelPath: '/models/q/' },
  );
  assert.equal(out.display_name, 'served');
  assert.equal(out.kv_cache_block_size, 32);
  assert.equal(out.tokenizer?.hf_tokenizer_json?.path, '/models/q/tokenizer.json');
});
