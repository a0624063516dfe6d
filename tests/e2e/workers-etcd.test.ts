/**
 * etcd discovery across processes on the current runtime: a frontend and mockers as separate
 * processes on the shared etcd (each test in its own random namespace), lease expiry of a killed
 * worker, and a restart of a private etcd under a running frontend and worker.
 */
import assert from 'node:assert/strict';
import process from 'node:process';
import { describe, test } from 'node:test';
import { currentRuntime, startFrontend, startMocker } from '../helpers/process.ts';
import { waitFor } from '../helpers/wait.ts';
import { startPrivateEtcd } from '../helpers/etcd.ts';
import {
  chat,
  health,
  instanceIds,
  modelIds,
  randomNamespace,
  sameIds,
  SEEN_MS,
  START_MS,
  tracker,
} from './_workers.ts';

const SHARED_ETCD = process.env.ETCD_ENDPOINTS?.split(',')[0] ?? 'http://127.0.0.1:2379';
const ETCD = ['--discovery-backend', 'etcd'];

/** The keys under `prefix`, through etcd's JSON gateway. */
async function etcdKeys(url: string, prefix: string): Promise<string[]> {
  const bytes = new TextEncoder().encode(prefix);
  const end = bytes.slice();
  end[end.length - 1] = (end[end.length - 1] ?? 0) + 1;
  const b64 = (b: Uint8Array) => btoa(String.fromCharCode(...b));
  const response = await fetch(`${url}/v3/kv/range`, {
    method: 'POST',
    body: JSON.stringify({ key: b64(bytes), range_end: b64(end), keys_only: true }),
  });
  const body = await response.json() as { kvs?: { key: string }[] };
  return (body.kvs ?? []).map((kv) => atob(kv.key));
}

/** The lease `key` is attached to, and the seconds it has left; undefined if there is no key. */
async function leaseLeft(url: string, key: string) {
  const range = await fetch(`${url}/v3/kv/range`, {
    method: 'POST',
    body: JSON.stringify({ key: btoa(key) }),
  });
  const lease = (await range.json() as { kvs?: { lease?: string }[] }).kvs?.[0]?.lease;
  if (!lease) return undefined;
  const ttl = await fetch(`${url}/v3/lease/timetolive`, {
    method: 'POST',
    body: JSON.stringify({ ID: lease }),
  });
  return { lease, ttl: Number((await ttl.json() as { TTL?: string }).TTL ?? -1) };
}

describe(`etcd discovery across processes on ${currentRuntime()}`, () => {
  test('workers appear; SIGTERM revokes their lease at once; SIGKILLed ones go within the lease TTL', async () => {
    const t = tracker();
    try {
      const ns = randomNamespace();
      const ttlSecs = 2;
      const env = { ETCD_LEASE_TTL: String(ttlSecs) };
      const [frontend, a, b] = await t.all(
        [
          startFrontend([...ETCD, '--namespace', ns], { env, timeoutMs: START_MS }),
          startMocker([
            ...ETCD,
            '--endpoint',
            `dyn://${ns}.backend.generate`,
            '--model-name',
            'model-a',
            '--num-workers',
            '2',
          ], { env }),
          startMocker([
            ...ETCD,
            '--endpoint',
            `dyn://${ns}.other.generate`,
            '--model-name',
            'model-b',
          ], { env }),
        ] as const,
      );
      assert.equal(a.workers.length, 2);

      await waitFor(
        async () => sameIds(await instanceIds(frontend.url), [...a.workers, ...b.workers]),
        {
          timeoutMs: SEEN_MS,
          intervalMs: 50,
          what: 'the 3 instances of both mockers in /health',
        },
      );
      assert.deepEqual(await modelIds(frontend.url), ['model-a', 'model-b']);
      for (const model of ['model-a', 'model-b']) {
        const answer = await chat(frontend.url, model);
        assert.equal(answer.status, 200, model);
        assert.equal(answer.completionTokens, 4, model);
      }
      const h = await health(frontend.url);
      assert.deepEqual(h?.endpoints, [
        `dyn://${ns}.backend.cache_control`,
        `dyn://${ns}.backend.generate`,
        `dyn://${ns}.backend.worker_kv_indexer_query`,
        `dyn://${ns}.other.cache_control`,
        `dyn://${ns}.other.generate`,
        `dyn://${ns}.other.worker_kv_indexer_query`,
      ]);

      // SIGTERM: the mocker revokes its leases before it exits, so its keys are gone at once...
      assert.equal(await a.stop(), 0);
      const left = [
        ...await etcdKeys(SHARED_ETCD, `v1/instances/${ns}/`),
        ...await etcdKeys(SHARED_ETCD, `v1/mdc/${ns}/`),
      ];
      for (const id of a.workers) {
        assert.ok(!left.some((key) => key.includes(`/${id}`)), `keys of ${id} deleted: ${left}`);
      }
      // ...and the frontend drops the model and its instances, keeping the other mocker's.
      await waitFor(async () => sameIds(await instanceIds(frontend.url), b.workers), {
        timeoutMs: 10_000,
        intervalMs: 50,
        what: 'only the second mocker left in /health',
      });
      assert.deepEqual(await modelIds(frontend.url), ['model-b']);

      // SIGKILL: nothing revokes the lease; etcd expires it within the TTL.
      b.kill('SIGKILL');
      assert.equal(await b.exited, 'SIGKILL');
      const bound = { timeoutMs: ttlSecs * 1000 + 10_000, intervalMs: 100 };
      await waitFor(async () => sameIds(await instanceIds(frontend.url), []), {
        ...bound,
        what: `the killed mocker's instance to go within the ${ttlSecs} s lease`,
      });
      await waitFor(async () => sameIds(await modelIds(frontend.url), []), {
        ...bound,
        what: 'no model left in /v1/models',
      });
    } finally {
      await t.cleanup();
    }
  });

  test('etcd killed and restarted on its data: the frontend still lists the live worker', async () => {
    const t = tracker();
    try {
      const etcd = await startPrivateEtcd();
      t.defer(() => etcd.stop());
      const ns = randomNamespace();
      const env = { ETCD_ENDPOINTS: etcd.url, ETCD_LEASE_TTL: '5' };
      const worker = (component: string, name: string) => {
        const endpoint = `dyn://${ns}.${component}.generate`;
        return startMocker([...ETCD, '--endpoint', endpoint, '--model-name', name], { env });
      };
      const [frontend, a] = await t.all(
        [
          startFrontend([...ETCD, '--namespace', ns], { env, timeoutMs: START_MS }),
          worker('backend', 'model-a'),
        ] as const,
      );
      await waitFor(async () => sameIds(await instanceIds(frontend.url), a.workers), {
        timeoutMs: SEEN_MS,
        intervalMs: 50,
        what: 'the worker in /health',
      });

      await etcd.restart();

      // A worker started after the restart shows up, so the frontend watches the new etcd...
      const c = await t.add(worker('late', 'model-c'));
      const key = `v1/instances/${ns}/backend/generate/${a.workers[0]}`;
      let last: { lease: string; ttl: number } | undefined;
      await Promise.all([
        waitFor(
          async () => sameIds(await instanceIds(frontend.url), [...a.workers, ...c.workers]),
          {
            timeoutMs: SEEN_MS,
            intervalMs: 100,
            what: 'the old and the new worker in /health after the restart',
          },
        ),
        // ...and the old worker keeps its lease alive: the time it has left goes up again.
        waitFor(async () => {
          const now = await leaseLeft(etcd.url, key).catch(() => undefined);
          const renewed = now && last?.lease === now.lease && now.ttl > last.ttl;
          last = now;
          return renewed;
        }, {
          timeoutMs: SEEN_MS,
          intervalMs: 100,
          what: `a keepalive of ${key} after the restart`,
        }),
      ]);
      assert.deepEqual(await modelIds(frontend.url), ['model-a', 'model-c']);
      const h = await health(frontend.url);
      assert.equal(h?.status, 'healthy');
      assert.ok(h?.instances.some((i) => i.instance_id_hex === a.workers[0]));
    } finally {
      await t.cleanup();
    }
  });
});
