/**
 * The `KvStore` contract every discovery backend passes (mem, file, etcd, kubernetes), plus the
 * discovery layer's records and events on top of each backend. `discovery-<backend>.test.ts`
 * runs it with a factory for that backend.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  createDiscovery,
  encodeInstanceValue,
  type InstanceEvent,
  type ModelEvent,
} from '../../src/core/discovery/discovery.ts';
import type { EndpointId, KvStore, KvWatchEvent } from '../../src/core/discovery/types.ts';
import { follow } from '../helpers/wait.ts';

/** A fresh backend in which each `connect()` acts as a separate process. */
export interface DiscoveryCluster {
  connect(): Promise<KvStore>;
  /** Closes every handle still open, then the backend. */
  close(): Promise<void>;
}

export interface DiscoveryContractOptions {
  /** How long to wait for a change to reach a watcher. @default 5000 */
  timeoutMs?: number;
}

/** Tracks handles so a cluster can close them all, even when a test fails. */
export function trackHandles(): { add(store: KvStore): KvStore; closeAll(): Promise<void> } {
  const open = new Set<KvStore>();
  return {
    add(store) {
      open.add(store);
      return store;
    },
    async closeAll() {
      await Promise.allSettled([...open].map((s) => s.close()));
      open.clear();
    },
  };
}

function uniqueNamespace(): string {
  return `t${crypto.getRandomValues(new Uint32Array(2)).join('')}`;
}

const watchedPut = (key: string, value?: string) => (events: KvWatchEvent[]) =>
  events.some((e) =>
    e.kind === 'put' && e.key === key && (value === undefined || e.value === value)
  );
const watchedDelete = (key: string) => (events: KvWatchEvent[]) =>
  events.some((e) => e.kind === 'delete' && e.key === key);

/** Registers the contract tests for one backend. */
export function discoveryContract(
  name: string,
  open: () => Promise<DiscoveryCluster>,
  options: DiscoveryContractOptions = {},
): void {
  const timeoutMs = options.timeoutMs ?? 5000;

  /** Runs `body` with a fresh cluster, a unique namespace and a signal for watches. */
  async function scenario(
    body: (ctx: { cluster: DiscoveryCluster; ns: string; signal: AbortSignal }) => Promise<void>,
  ): Promise<void> {
    const cluster = await open();
    const watches = new AbortController();
    try {
      await body({ cluster, ns: uniqueNamespace(), signal: watches.signal });
    } finally {
      watches.abort();
      await cluster.close();
    }
  }

  describe(`KvStore contract: ${name}`, () => {
    test('two handles get different lower-case hex u64 instance ids', () =>
      scenario(async ({ cluster }) => {
        const [a, b] = [await cluster.connect(), await cluster.connect()];
        assert.match(a.instanceId, /^[0-9a-f]{1,16}$/);
        assert.match(b.instanceId, /^[0-9a-f]{1,16}$/);
        assert.notEqual(a.instanceId, b.instanceId);
      }));

    test('create() writes a key only when it is absent, whichever handle asks', () =>
      scenario(async ({ cluster, ns }) => {
        const [a, b] = [await cluster.connect(), await cluster.connect()];
        const key = `v1/mdc/${ns}/backend/generate/${a.instanceId}`;
        assert.equal(await a.create(key, '{"v":1}'), true);
        assert.equal(await a.create(key, '{"v":2}'), false);
        assert.equal(await b.create(key, '{"v":3}'), false);
        assert.deepEqual(await b.list(key), [{ key, value: '{"v":1}' }]);
      }));

    test('put() replaces a value and delete() removes it, as another handle sees', () =>
      scenario(async ({ cluster, ns }) => {
        const [a, b] = [await cluster.connect(), await cluster.connect()];
        const key = `v1/instances/${ns}/backend/generate/${a.instanceId}`;
        await a.put(key, '{"v":1}');
        assert.deepEqual(await b.list(key), [{ key, value: '{"v":1}' }]);
        await a.put(key, '{"v":2}');
        assert.deepEqual(await b.list(key), [{ key, value: '{"v":2}' }]);
        await a.delete(key);
        assert.deepEqual(await b.list(key), []);
        await a.delete(key); // deleting a missing key is not an error
      }));

    test('list() matches prefixes at path boundaries only', () =>
      scenario(async ({ cluster, ns }) => {
        const a = await cluster.connect();
        const id = a.instanceId;
        const keys = [
          `v1/instances/${ns}/comp/generate/${id}`,
          `v1/instances/${ns}/comp/load_metrics/${id}`,
          `v1/instances/${ns}/comp2/generate/${id}`,
          `v1/mdc/${ns}/comp/generate/${id}`,
        ];
        for (const key of keys) await a.put(key, '{}');
        const listed = async (prefix: string) => (await a.list(prefix)).map((e) => e.key).sort();
        assert.deepEqual(await listed(`v1/instances/${ns}/comp`), [keys[0], keys[1]]);
        assert.deepEqual(await listed(`v1/instances/${ns}/comp/`), [keys[0], keys[1]]);
        assert.deepEqual(await listed(`v1/instances/${ns}`), [keys[0], keys[1], keys[2]]);
        assert.deepEqual(await listed(`v1/instances/${ns}/co`), []);
        assert.deepEqual(await listed(keys[2] as string), [keys[2]]);
        assert.deepEqual(await listed(`v1/mdc/${ns}`), [keys[3]]);
      }));

    test('watch() starts with a snapshot, then sees puts and deletes from another handle', () =>
      scenario(async ({ cluster, ns, signal }) => {
        const [a, b] = [await cluster.connect(), await cluster.connect()];
        const prefix = `v1/instances/${ns}/backend`;
        const k1 = `${prefix}/generate/${a.instanceId}`;
        const k2 = `${prefix}/load_metrics/${a.instanceId}`;
        const outside = `v1/instances/${ns}/backend2/generate/${a.instanceId}`;
        await a.put(k1, '{"v":1}');
        const watched = follow(b.watch(prefix, signal));
        const [first] = await watched.until((e) => e.length > 0, { timeoutMs, what: 'snapshot' });
        assert.deepEqual(first, { kind: 'snapshot', entries: [{ key: k1, value: '{"v":1}' }] });

        await a.put(outside, '{"v":0}');
        await a.put(k2, '{"v":2}');
        await watched.until(watchedPut(k2, '{"v":2}'), { timeoutMs, what: `put ${k2}` });
        await a.put(k1, '{"v":3}');
        await watched.until(watchedPut(k1, '{"v":3}'), { timeoutMs, what: `update ${k1}` });
        await a.delete(k2);
        await watched.until(watchedDelete(k2), { timeoutMs, what: `delete ${k2}` });
        const keys = watched.items.flatMap((e) =>
          e.kind === 'snapshot' ? e.entries.map((x) => x.key) : [e.key]
        );
        assert.ok(!keys.includes(outside), 'a key beyond the prefix boundary reached the watch');
      }));

    test('watch() ends when its signal aborts', () =>
      scenario(async ({ cluster, ns }) => {
        const a = await cluster.connect();
        const stop = new AbortController();
        const watched = follow(a.watch(`v1/instances/${ns}`, stop.signal));
        await watched.until((e) => e.length > 0, { timeoutMs, what: 'snapshot' });
        stop.abort();
        await watched.done;
      }));

    test("close() removes the handle's keys and watchers see them go", () =>
      scenario(async ({ cluster, ns, signal }) => {
        const [a, b] = [await cluster.connect(), await cluster.connect()];
        const k1 = `v1/instances/${ns}/backend/generate/${a.instanceId}`;
        const k2 = `v1/mdc/${ns}/backend/generate/${a.instanceId}`;
        const kb = `v1/instances/${ns}/backend/generate/${b.instanceId}`;
        await a.put(k1, '{"v":1}');
        assert.equal(await a.create(k2, '{"v":2}'), true);
        await b.put(kb, '{"v":3}');
        const watched = follow(b.watch(`v1`, signal));
        await watched.until((e) => e.length > 0, { timeoutMs, what: 'snapshot' });
        await a.close();
        await watched.until((e) => watchedDelete(k1)(e) && watchedDelete(k2)(e), {
          timeoutMs,
          what: "deletes of the closed handle's keys",
        });
        assert.deepEqual((await b.list(`v1/instances/${ns}`)).map((e) => e.key), [kb]);
        assert.deepEqual(await b.list(`v1/mdc/${ns}`), []);
      }));

    test('u64 instance ids above 2^53 round-trip exactly through JSON values', () =>
      scenario(async ({ cluster, ns }) => {
        const [a, b] = [await cluster.connect(), await cluster.connect()];
        const ep: EndpointId = { namespace: ns, component: 'backend', endpoint: 'generate' };
        const ids: [string, string][] = [
          ['ffffffffffffffff', '18446744073709551615'],
          ['20000000000001', '9007199254740993'], // 2^53 + 1
        ];
        for (const [hex] of ids) {
          const key = `v1/instances/${ns}/backend/generate/${hex}`;
          const tcp = `127.0.0.1:1/${hex}/g`;
          await a.put(key, encodeInstanceValue({ endpoint: ep, instanceId: hex }, { tcp }));
        }
        const values = (await b.list(`v1/instances/${ns}`)).map((e) => e.value).join('\n');
        for (const [, decimal] of ids) assert.ok(values.includes(`"instance_id":${decimal},`));
        const records = await createDiscovery(b).listInstances({ namespace: ns });
        assert.deepEqual(records.map((r) => r.instanceId).sort(), ids.map(([hex]) => hex).sort());
      }));
  });

  describe(`Discovery over ${name}`, () => {
    const card = (name: string) => ({ display_name: name, kv_cache_block_size: 16 });

    test('reports added and removed instances and models registered by another handle', () =>
      scenario(async ({ cluster, ns, signal }) => {
        const [a, b] = [await cluster.connect(), await cluster.connect()];
        const worker = createDiscovery(a);
        const frontend = createDiscovery(b);
        const ep: EndpointId = { namespace: ns, component: 'backend', endpoint: 'generate' };
        const instances = follow<InstanceEvent>(frontend.watchInstances({ namespace: ns }, signal));
        const models = follow<ModelEvent>(frontend.watchModels(ep, signal));

        await worker.registerEndpoint(ep, { tcp: `127.0.0.1:9/${a.instanceId}/generate` });
        await worker.registerModel(ep, card('llama'));
        const [added] = await instances.until((e) => e.length > 0, { timeoutMs, what: 'added' });
        assert.equal(added?.kind, 'added');
        if (added?.kind === 'added') {
          assert.equal(added.record.instanceId, a.instanceId);
          assert.deepEqual(added.record.endpoint, ep);
          assert.deepEqual(added.record.transport, {
            tcp: `127.0.0.1:9/${a.instanceId}/generate`,
          });
        }
        const [model] = await models.until((e) => e.length > 0, { timeoutMs, what: 'model' });
        assert.equal(model?.kind, 'added');
        if (model?.kind === 'added') {
          assert.equal(model.record.card.display_name, 'llama');
          assert.equal(model.record.instanceId, a.instanceId);
          assert.equal(model.record.suffix, undefined);
        }

        await worker.unregisterEndpoint(ep);
        const removed = await instances.until((e) => e.some((x) => x.kind === 'removed'), {
          timeoutMs,
          what: 'removed instance',
        });
        assert.deepEqual(removed.at(-1), {
          kind: 'removed',
          id: {
            key: `v1/instances/${ns}/backend/generate/${a.instanceId}`,
            endpoint: ep,
            instanceId: a.instanceId,
          },
        });

        await a.close();
        await models.until((e) => e.some((x) => x.kind === 'removed'), {
          timeoutMs,
          what: 'removed model',
        });
        assert.deepEqual(await frontend.listModels({ namespace: ns }), []);
      }));

    test('lists records by namespace, component and endpoint', () =>
      scenario(async ({ cluster, ns }) => {
        const [a, b] = [await cluster.connect(), await cluster.connect()];
        const ep = (component: string, endpoint: string): EndpointId => ({
          namespace: ns,
          component,
          endpoint,
        });
        const [da, db] = [createDiscovery(a), createDiscovery(b)];
        await da.registerEndpoint(ep('backend', 'generate'), { tcp: 'h:1/a/generate' });
        await db.registerEndpoint(ep('backend', 'generate'), { tcp: 'h:2/b/generate' });
        await da.registerEndpoint(ep('backend2', 'generate'), { http: 'http://h:3/v1/rpc/g' });
        await da.registerModel(ep('backend', 'generate'), card('m'));
        await da.registerModel(ep('backend', 'generate'), card('m-lora'), 'lora-1');
        const ids = (records: { instanceId: string; endpoint: EndpointId }[]) =>
          records.map((r) => `${r.endpoint.component}:${r.instanceId}`).sort();

        assert.deepEqual(
          ids(await db.listInstances({ namespace: ns })),
          [`backend2:${a.instanceId}`, `backend:${a.instanceId}`, `backend:${b.instanceId}`].sort(),
        );
        assert.deepEqual(
          ids(await db.listInstances({ namespace: ns, component: 'backend' })),
          [`backend:${a.instanceId}`, `backend:${b.instanceId}`].sort(),
        );
        assert.deepEqual(ids(await db.listInstances(ep('backend2', 'generate'))), [
          `backend2:${a.instanceId}`,
        ]);
        const models = await db.listModels({ namespace: ns });
        assert.deepEqual(models.map((m) => m.suffix ?? '').sort(), ['', 'lora-1']);
        assert.ok((await db.listInstances()).length >= 3);
      }));

    test('registerModel() is create-if-absent and refuses a conflicting card', () =>
      scenario(async ({ cluster, ns }) => {
        const [a, b] = [await cluster.connect(), await cluster.connect()];
        const ep: EndpointId = { namespace: ns, component: 'backend', endpoint: 'generate' };
        const [da, db] = [createDiscovery(a), createDiscovery(b)];
        await da.registerModel(ep, card('llama'));
        await da.registerModel(ep, card('llama')); // the same card again is fine
        await assert.rejects(da.registerModel(ep, { ...card('llama'), kv_cache_block_size: 32 }), {
          name: 'ModelConflictError',
        });
        await assert.rejects(db.registerModel(ep, card('mistral')), { name: 'ModelConflictError' });
        await db.registerModel(ep, card('llama'));
        assert.equal((await da.listModels(ep)).length, 2);
      }));
  });
}
