/**
 * File discovery across processes on the current runtime: a frontend and mockers as separate
 * processes sharing one `DYN_FILE_KV` directory, and the transports workers on the http and nats
 * request planes register (tcp, the default, is checked by the first test).
 */
import assert from 'node:assert/strict';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { currentRuntime, startFrontend, startMocker } from '../helpers/process.ts';
import { waitFor } from '../helpers/wait.ts';
import {
  chat,
  generateInstances,
  health,
  instanceIds,
  modelIds,
  sameIds,
  SEEN_MS,
  START_MS,
  tracker,
} from './_workers.ts';

const TTL_SECS = 2;
/** Generous: the stale timeout plus a heartbeat, a rescan and a slow machine. */
const STALE_BOUND_MS = TTL_SECS * 1000 + 10_000;
const FILE = ['--discovery-backend', 'file'];

/** Names of the key files in the directory's buckets. */
async function keyFiles(root: string): Promise<string[]> {
  const names: string[] = [];
  for (const bucket of ['instances', 'mdc']) {
    const dir = join(root, 'v1', bucket);
    const entries = await readdir(dir).catch(() => [] as string[]);
    names.push(...entries.filter((n) => !n.startsWith('.')));
  }
  return names;
}

describe(`file discovery across processes on ${currentRuntime()}`, () => {
  test('workers appear; SIGTERM deregisters them at once; SIGKILLed ones go within the TTL', async () => {
    const t = tracker();
    try {
      const root = await t.dir('file-kv');
      const env = { DYN_FILE_KV: root, DYN_FILE_KV_TTL_SECS: String(TTL_SECS) };
      const [frontend, a, b] = await t.all(
        [
          startFrontend(FILE, { env, timeoutMs: START_MS }),
          startMocker([...FILE, '--model-name', 'model-a', '--num-workers', '2'], { env }),
          startMocker([
            ...FILE,
            '--model-name',
            'model-b',
            '--endpoint',
            'dyn://dynamo.other.generate',
          ], { env }),
        ] as const,
      );
      assert.equal(a.workers.length, 2);
      assert.equal(b.workers.length, 1);

      await waitFor(
        async () => sameIds(await instanceIds(frontend.url), [...a.workers, ...b.workers]),
        {
          timeoutMs: SEEN_MS,
          intervalMs: 50,
          what: 'the 3 instances of both mockers in /health',
        },
      );
      assert.deepEqual(await modelIds(frontend.url), ['model-a', 'model-b']);
      // Requests cross process boundaries: frontend -> tcp request plane -> mocker process.
      for (const model of ['model-a', 'model-b']) {
        const answer = await chat(frontend.url, model);
        assert.equal(answer.status, 200, model);
        assert.equal(answer.completionTokens, 4, model);
        assert.ok(answer.text.length > 0, model);
      }
      const h = await health(frontend.url);
      assert.deepEqual(h?.endpoints, [
        'dyn://dynamo.backend.cache_control',
        'dyn://dynamo.backend.generate',
        'dyn://dynamo.backend.worker_kv_indexer_query',
        'dyn://dynamo.other.cache_control',
        'dyn://dynamo.other.generate',
        'dyn://dynamo.other.worker_kv_indexer_query',
      ]);
      for (const instance of h?.instances ?? []) {
        assert.deepEqual(Object.keys(instance.transport), ['tcp'], 'the default request plane');
      }

      // SIGTERM: the mocker deletes its own keys before it exits, so they are gone at once...
      assert.equal(await a.stop(), 0);
      const left = await keyFiles(root);
      for (const id of a.workers) {
        assert.ok(!left.some((name) => name.endsWith(id)), `key of ${id} deleted: ${left}`);
      }
      // ...and the frontend drops the model and its instances, keeping the other mocker's.
      await waitFor(async () => sameIds(await instanceIds(frontend.url), b.workers), {
        timeoutMs: 10_000,
        intervalMs: 50,
        what: 'only the second mocker left in /health',
      });
      assert.deepEqual(await modelIds(frontend.url), ['model-b']);

      // SIGKILL: nothing deregisters; the stale sweep removes the keys within the TTL.
      b.kill('SIGKILL');
      assert.equal(await b.exited, 'SIGKILL');
      await waitFor(async () => sameIds(await instanceIds(frontend.url), []), {
        timeoutMs: STALE_BOUND_MS,
        intervalMs: 100,
        what: `the killed mocker's instance to go within the ${TTL_SECS} s TTL`,
      });
      await waitFor(async () => sameIds(await modelIds(frontend.url), []), {
        timeoutMs: STALE_BOUND_MS,
        intervalMs: 100,
        what: 'no model left in /v1/models',
      });
    } finally {
      await t.cleanup();
    }
  });
});

describe(`request planes on ${currentRuntime()}`, () => {
  test('mockers on the http and nats request planes register http and nats_tcp transports', async () => {
    const t = tracker();
    try {
      const root = await t.dir('file-kv');
      const env = { DYN_FILE_KV: root, DYN_FILE_KV_TTL_SECS: String(TTL_SECS) };
      const mocker = (plane: string) => [
        ...FILE,
        '--request-plane',
        plane,
        '--model-name',
        `via-${plane}`,
        '--endpoint',
        `dyn://dynamo.${plane}.generate`,
      ];
      const [frontend, http, nats] = await t.all(
        [
          startFrontend(FILE, { env, timeoutMs: START_MS }),
          startMocker(mocker('http'), { env }),
          startMocker(mocker('nats'), { env }),
        ] as const,
      );

      const h = await waitFor(async () => {
        const h = await health(frontend.url);
        return sameIds(h && generateInstances(h).map((i) => i.instance_id_hex), [
            ...http.workers,
            ...nats.workers,
          ])
          ? h
          : undefined;
      }, { timeoutMs: SEEN_MS, intervalMs: 50, what: 'both instances in /health' });
      const transportOf = (id: string | undefined) =>
        generateInstances(h).find((i) => i.instance_id_hex === id)?.transport ?? {};
      const httpTransport = transportOf(http.workers[0]);
      assert.deepEqual(Object.keys(httpTransport), ['http'], JSON.stringify(h.instances));
      assert.match(String(httpTransport.http), /^http:\/\/127\.0\.0\.1:\d+\//);
      const natsTransport = transportOf(nats.workers[0]);
      assert.deepEqual(Object.keys(natsTransport), ['nats_tcp'], JSON.stringify(h.instances));
      assert.equal(typeof natsTransport.nats_tcp, 'string');
      assert.deepEqual(await modelIds(frontend.url), ['via-http', 'via-nats']);
      // The frontend runs with the default --request-plane tcp: each worker's published
      // transport decides how it is called.
      for (const model of ['via-http', 'via-nats']) {
        const answer = await chat(frontend.url, model);
        assert.equal(answer.status, 200, `${model}: ${answer.text}`);
        assert.equal(answer.completionTokens, 4, model);
      }
    } finally {
      await t.cleanup();
    }
  });
});
