/**
 * The discovery contract on the kubernetes backend, against a fake API server (no cluster runs
 * here), plus the CR layout, readiness from EndpointSlices and watch recovery.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import {
  createKubernetesStore,
  inClusterConfig,
  type KubernetesStoreOptions,
  podInstanceId,
} from '../../src/adapters/discovery/kubernetes.ts';
import { createDiscovery, encodeInstanceValue } from '../../src/core/discovery/discovery.ts';
import type { KvStore, KvWatchEvent } from '../../src/core/discovery/types.ts';
import { follow } from '../helpers/wait.ts';
import { discoveryContract, trackHandles } from './discovery.contract.ts';
import { type FakeKubeApi, startFakeKubeApi } from './discovery-kubernetes-fake.ts';

const FAST = { backoff: { minMs: 20, maxMs: 200 } };

discoveryContract('kubernetes (fake API server)', async () => {
  const api = await startFakeKubeApi({ autoReady: true });
  const handles = trackHandles();
  let pods = 0;
  return {
    connect: async () =>
      handles.add(
        await createKubernetesStore({
          baseUrl: api.url,
          token: api.token,
          namespace: api.namespace,
          podName: `worker-${++pods}`,
          podUid: `pod-uid-${pods}`,
          ...FAST,
        }),
      ),
    close: async () => {
      await handles.closeAll();
      await api.stop();
    },
  };
});

function stateOf(events: KvWatchEvent[]): Map<string, string> {
  const state = new Map<string, string>();
  for (const event of events) {
    if (event.kind === 'snapshot') {
      state.clear();
      for (const e of event.entries) state.set(e.key, e.value);
    } else if (event.kind === 'put') state.set(event.key, event.value);
    else state.delete(event.key);
  }
  return state;
}

describe('kubernetes store', () => {
  let api: FakeKubeApi;
  const handles = trackHandles();
  const stop = new AbortController();
  const open = async (pod: string, options: Partial<KubernetesStoreOptions> = {}) =>
    handles.add(
      await createKubernetesStore({
        baseUrl: api.url,
        token: api.token,
        namespace: api.namespace,
        podName: pod,
        ...FAST,
        ...options,
      }),
    ) as KvStore;
  before(async () => {
    api = await startFakeKubeApi();
  });
  after(async () => {
    stop.abort();
    await handles.closeAll();
    await api?.stop();
  });

  test('a store that only reads (a frontend) never writes nor deletes a CR: the reader role of deploy/kubernetes/rbac.yaml suffices', async () => {
    const store = await open('reader-pod');
    const watching = new AbortController();
    const events = store.watch('v1/instances/', watching.signal)[Symbol.asyncIterator]();
    assert.equal((await events.next()).value?.kind, 'snapshot');
    await store.list('v1/mdc/');
    watching.abort();
    await store.close();
    const own = api.requests.filter((r) => r.includes('/dynamoworkermetadatas/reader-pod'));
    assert.deepEqual(own, [], 'no apply, no delete of its own CR');
    assert.ok(
      api.requests.some((r) => r.startsWith('GET ') && r.includes('dynamoworkermetadatas')),
    );
  });

  test('writes one DynamoWorkerMetadata per pod, owned by the pod, values as JSON objects', async () => {
    const store = await open('layout-pod', { podUid: 'uid-123' });
    const ep = { namespace: 'dynamo', component: 'backend', endpoint: 'generate' };
    const discovery = createDiscovery(store);
    await discovery.registerEndpoint(ep, { tcp: '10.0.0.1:5000/x/generate' });
    await store.put(
      'v1/instances/dynamo/backend/generate/ffffffffffffffff',
      encodeInstanceValue({ endpoint: ep, instanceId: 'ffffffffffffffff' }, {
        tcp: 'h:1/f/generate',
      }),
    );
    await discovery.registerModel(ep, { display_name: 'llama' }, 'lora-a');
    const cr = api.getCr('layout-pod') as {
      apiVersion: string;
      kind: string;
      metadata: { ownerReferences: { kind: string; name: string; uid: string }[] };
      spec: { data: Record<string, Record<string, Record<string, unknown>>> };
    };
    assert.equal(cr.apiVersion, 'nvidia.com/v1alpha1');
    assert.equal(cr.kind, 'DynamoWorkerMetadata');
    assert.deepEqual(
      cr.metadata.ownerReferences.map((o) => [o.kind, o.name, o.uid]),
      [['Pod', 'layout-pod', 'uid-123']],
    );
    const id = store.instanceId;
    assert.equal(id, podInstanceId('layout-pod'));
    assert.ok(BigInt(`0x${id}`) < 2n ** 53n);
    const endpoints = cr.spec.data.endpoints ?? {};
    assert.deepEqual(
      Object.keys(endpoints).sort(),
      [
        `dynamo/backend/generate/${id}`,
        'dynamo/backend/generate/ffffffffffffffff',
      ].sort(),
    );
    assert.equal(endpoints[`dynamo/backend/generate/${id}`]?.type, 'Endpoint');
    // The u64 survives the trip into the CR and back as an exact integer.
    assert.equal(
      endpoints['dynamo/backend/generate/ffffffffffffffff']?.instance_id,
      2n ** 64n - 1n,
    );
    assert.deepEqual(Object.keys(cr.spec.data.model_cards ?? {}), [
      `dynamo/backend/generate/${id}/lora-a`,
    ]);
    assert.deepEqual(cr.spec.data.event_channels, {});
    await store.close();
    assert.equal(api.getCr('layout-pod'), undefined);
  });

  test('sends the bearer token; a wrong one is refused with KubernetesApiError', async () => {
    const store = await open('auth-pod', { token: () => Promise.resolve('wrong') });
    await assert.rejects(store.list('v1'), { name: 'KubernetesApiError', status: 401 });
  });

  test("exposes a pod's entries only while an EndpointSlice lists it Ready", async () => {
    const worker = await open('ready-pod');
    const frontend = await open('frontend-pod');
    const key = `v1/instances/rdy/backend/generate/${worker.instanceId}`;
    await worker.put(key, '{"v":1}');
    assert.deepEqual(await frontend.list('v1/instances/rdy'), []);
    const watched = follow(frontend.watch('v1/instances/rdy', stop.signal));
    await watched.until((e) => e.length > 0, { what: 'snapshot' });
    assert.deepEqual(watched.items[0], { kind: 'snapshot', entries: [] });

    api.setPodReady('ready-pod', true);
    await watched.until((e) => stateOf(e).get(key) === '{"v":1}', { what: 'ready' });
    assert.deepEqual(await frontend.list('v1/instances/rdy'), [{ key, value: '{"v":1}' }]);
    api.setPodReady('ready-pod', false);
    await watched.until((e) => !stateOf(e).has(key), { what: 'not ready' });

    const ignoring = await open('frontend-2', { requireReady: false });
    assert.deepEqual((await ignoring.list('v1/instances/rdy')).map((e) => e.key), [key]);
  });

  test('watches resume after the API server ends them, and re-list after 410 Gone', async () => {
    const worker = await open('resume-pod', { requireReady: false });
    const frontend = await open('resume-frontend', { requireReady: false });
    const k1 = `v1/instances/res/backend/generate/${worker.instanceId}`;
    const k2 = `v1/instances/res/backend/load_metrics/${worker.instanceId}`;
    await worker.put(k1, '{"v":1}');
    const watched = follow(frontend.watch('v1/instances/res', stop.signal));
    await watched.until((e) => stateOf(e).has(k1), { what: 'k1' });

    api.endWatches();
    await worker.put(k2, '{"v":2}');
    await watched.until((e) => stateOf(e).has(k2), { what: 'k2 after the watch ended' });

    const seen = api.requests.length;
    api.endWatches();
    await worker.delete(k2); // happens while nobody watches...
    api.compact(); // ...and then falls out of the history
    await watched.until((e) => !stateOf(e).has(k2), { what: 'k2 gone after a re-list' });
    assert.ok(
      api.requests.slice(seen).some((r) => r.startsWith('GET ') && !r.includes('watch=')),
      'expected a re-list',
    );
    assert.equal(stateOf(watched.items).get(k1), '{"v":1}');
  });

  test('refuses values that are not JSON objects and keys outside its buckets', async () => {
    const store = await open('strict-pod');
    await assert.rejects(store.put('v1/instances/a/b/c/1', 'not json'), {
      name: 'KubernetesApiError',
    });
    await assert.rejects(store.put('v1/other/a/b/c/1', '{}'), { name: 'KubernetesApiError' });
  });
});

describe('inClusterConfig()', () => {
  test('reads the service account and the pod environment', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'switchboard-sa-'));
    try {
      await writeFile(join(dir, 'token'), 'tok-1\n');
      await writeFile(join(dir, 'namespace'), 'team-a\n');
      const config = await inClusterConfig({
        KUBERNETES_SERVICE_HOST: '10.96.0.1',
        KUBERNETES_SERVICE_PORT: '443',
        POD_NAME: 'worker-0',
        POD_UID: 'uid-0',
      }, { serviceAccountDir: dir });
      assert.equal(config.baseUrl, 'https://10.96.0.1:443');
      assert.equal(config.namespace, 'team-a');
      assert.equal(config.podName, 'worker-0');
      assert.equal(config.podUid, 'uid-0');
      assert.equal(await config.token(), 'tok-1');
      await writeFile(join(dir, 'token'), 'tok-2\n');
      assert.equal(await config.token(), 'tok-2');
      assert.equal(config.caFile, join(dir, 'ca.crt'));
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
