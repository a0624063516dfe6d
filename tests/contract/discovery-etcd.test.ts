/**
 * The discovery contract on etcd (the shared one from `scripts/services.sh`, or `ETCD_ENDPOINTS`),
 * plus lease expiry and etcd restarts against a private etcd this file starts and kills.
 */
import assert from 'node:assert/strict';
import process from 'node:process';
import { after, before, describe, test } from 'node:test';
import { createEtcdStore, type EtcdStoreOptions } from '../../src/adapters/discovery/etcd.ts';
import type { KvStore, KvWatchEvent } from '../../src/core/discovery/types.ts';
import { follow, waitFor } from '../helpers/wait.ts';
import { discoveryContract, trackHandles } from './discovery.contract.ts';
import { type PrivateEtcd, startPrivateEtcd } from '../helpers/etcd.ts';

const SHARED = process.env.ETCD_ENDPOINTS ?? 'http://127.0.0.1:2379';
const FAST = { backoff: { minMs: 50, maxMs: 500 }, requestTimeoutMs: 2000 };

discoveryContract('etcd', () => {
  const handles = trackHandles();
  return Promise.resolve({
    connect: async () => handles.add(await createEtcdStore({ endpoints: SHARED, ...FAST })),
    close: () => handles.closeAll(),
  });
});

/** The state a watcher has built from its events. */
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

/** The lease id (decimal) `key` is attached to. */
async function leaseOf(url: string, key: string): Promise<string | undefined> {
  const response = await fetch(`${url}/v3/kv/range`, {
    method: 'POST',
    body: JSON.stringify({ key: btoa(key) }),
  });
  const body = await response.json() as { kvs?: { lease?: string }[] };
  return body.kvs?.[0]?.lease;
}

/** A fetch that can be cut, as if the process froze or lost its network. */
function cuttableFetch(): { fetch: typeof fetch; cut(): void } {
  let cut = false;
  const wrapped = (input: RequestInfo | URL, init?: RequestInit) =>
    cut ? Promise.reject(new TypeError('network cut by the test')) : fetch(input, init);
  return { fetch: wrapped as typeof fetch, cut: () => void (cut = true) };
}

describe('etcd store', () => {
  const handles = trackHandles();
  const stop = new AbortController();
  const open = async (options: EtcdStoreOptions = {}): Promise<KvStore> =>
    handles.add(await createEtcdStore({ endpoints: SHARED, ...FAST, ...options }));
  after(async () => {
    stop.abort();
    await handles.closeAll();
  });

  test('exactly one of 10 concurrent creators of a key wins', async () => {
    const stores = await Promise.all(Array.from({ length: 10 }, () => open()));
    const key = `v1/mdc/t${Date.now()}/backend/generate/${stores[0]?.instanceId}`;
    const results = await Promise.all(stores.map((s, i) => s.create(key, `{"i":${i}}`)));
    assert.equal(results.filter(Boolean).length, 1);
  });

  test('the instance id is the lease id in lower-case hex', async () => {
    const store = await open();
    const reply = await fetch(`${SHARED}/v3/lease/timetolive`, {
      method: 'POST',
      body: JSON.stringify({ ID: BigInt(`0x${store.instanceId}`).toString() }),
    });
    const body = await reply.json() as { TTL?: string; grantedTTL?: string };
    assert.equal(body.grantedTTL, '10');
    assert.ok(Number(body.TTL) > 0);
  });

  test('the key of a process that stops keeping its lease alive disappears', async () => {
    const network = cuttableFetch();
    const crashed = await open({ fetch: network.fetch, leaseTtlSecs: 2 });
    const watcher = await open();
    const key = `v1/instances/t${Date.now()}/backend/generate/${crashed.instanceId}`;
    await crashed.put(key, '{"v":1}');
    const watched = follow(watcher.watch(key, stop.signal));
    await watched.until((e) => stateOf(e).has(key), { what: 'the key' });
    network.cut();
    await watched.until((e) => e.some((x) => x.kind === 'delete' && x.key === key), {
      timeoutMs: 10_000,
      what: 'the lease to expire',
    });
  });
});

describe('etcd store across etcd restarts', () => {
  let etcd: PrivateEtcd;
  const handles = trackHandles();
  const stop = new AbortController();
  const open = async (options: EtcdStoreOptions = {}): Promise<KvStore> =>
    handles.add(await createEtcdStore({ endpoints: etcd.url, ...FAST, ...options }));
  before(async () => {
    etcd = await startPrivateEtcd();
  });
  after(async () => {
    stop.abort();
    await handles.closeAll();
    await etcd?.stop();
  });

  test('a restart with its data loses no live key, and watches resume', async () => {
    const worker = await open({ leaseTtlSecs: 3 });
    const frontend = await open();
    const k1 = `v1/instances/ns/backend/generate/${worker.instanceId}`;
    const k2 = `v1/instances/ns/backend/load_metrics/${worker.instanceId}`;
    await worker.put(k1, '{"v":1}');
    const watched = follow(frontend.watch('v1/instances/ns', stop.signal));
    await watched.until((e) => stateOf(e).has(k1), { what: 'the key' });

    await etcd.restart();
    await waitFor(() => worker.put(k2, '{"v":2}').then(() => true, () => false), {
      timeoutMs: 15_000,
      intervalMs: 100,
      what: 'a write after the restart',
    });
    await watched.until((e) => stateOf(e).get(k2) === '{"v":2}', {
      timeoutMs: 15_000,
      what: 'the watch to resume',
    });
    assert.ok(
      !watched.items.some((e) => e.kind === 'delete' && e.key === k1),
      'the live key was reported deleted',
    );
    assert.equal(stateOf(watched.items).get(k1), '{"v":1}');
    assert.deepEqual((await frontend.list(k1)).map((e) => e.value), ['{"v":1}']);
  });

  test('a restart that loses all data: the worker re-writes its keys under a new lease', async () => {
    const worker = await open({ leaseTtlSecs: 3 });
    const frontend = await open();
    const key = `v1/instances/ns2/backend/generate/${worker.instanceId}`;
    await worker.put(key, '{"v":1}');
    const watched = follow(frontend.watch('v1/instances/ns2', stop.signal));
    await watched.until((e) => stateOf(e).has(key), { what: 'the key' });

    await etcd.restart({ wipe: true });
    await watched.until((e) => e.length > 1 && stateOf(e).get(key) === '{"v":1}', {
      timeoutMs: 20_000,
      what: 'the key to be re-written and seen again',
    });
    // Same key, same instance id, now under a new lease the new etcd knows.
    assert.deepEqual(await frontend.list(key), [{ key, value: '{"v":1}' }]);
    const lease = await leaseOf(etcd.url, key);
    assert.ok(lease !== undefined && lease !== BigInt(`0x${worker.instanceId}`).toString());
    await worker.close();
    await watched.until((e) => !stateOf(e).has(key), {
      timeoutMs: 10_000,
      what: 'the key to go with the revoked lease',
    });
  });
});
