/**
 * The workers layer as real processes on the current runtime: the mocker's command line, start-up
 * errors when etcd or NATS is missing, and the one-process demo. Discovery across processes is in
 * workers-file.test.ts and workers-etcd.test.ts.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { MOCKER_OPTIONS } from '../../src/mocker/config.ts';
import { currentRuntime, freePort, runEntry, startFrontend } from '../helpers/process.ts';
import { waitFor } from '../helpers/wait.ts';
import {
  generateInstances,
  health,
  MODEL_PATH,
  modelIds,
  SEEN_MS,
  START_MS,
  tracker,
} from './_workers.ts';

const STACK_TRACE = /\n\s+at /;

/** The non-empty lines a process wrote. */
const lines = (text: string) => text.split('\n').filter((l) => l.trim() !== '');

describe(`mocker CLI on ${currentRuntime()}`, () => {
  test('mocker --help lists every mocker flag with its env var, and the env-only knobs', async () => {
    const { code, stdout } = await runEntry('src/main.ts', ['mocker', '--help']);
    assert.equal(code, 0);
    for (const o of MOCKER_OPTIONS) {
      const env = o.env[0] ?? '?';
      if (o.flag) {
        const line = stdout.split('\n').find((l) =>
          l.includes(`--${o.flag}`) && l.includes(`[env: ${env}]`)
        );
        assert.ok(line, `mocker --help shows --${o.flag} with [env: ${env}]`);
        assert.match(line, /\(default: /);
      } else {
        assert.ok(stdout.includes(env), `mocker --help shows ${env}`);
      }
    }
  });

  test('a bad mocker flag exits 2 with "did you mean" and every other problem', async () => {
    const { code, stderr } = await runEntry('src/main.ts', [
      'mocker',
      '--model-path',
      MODEL_PATH,
      '--num-worker',
      '2',
      '--request-plane',
      'carrier-pigeon',
    ]);
    assert.equal(code, 2);
    assert.match(stderr, /Unknown flag "--num-worker"; did you mean --num-workers\?/);
    assert.match(stderr, /--request-plane \(DYN_REQUEST_PLANE\): must be one of tcp, nats, http/);
    assert.doesNotMatch(stderr, STACK_TRACE);
  });

  test('a --model-path that is not a model directory exits 1 with one line, no stack trace', async () => {
    const t = tracker();
    try {
      const empty = await t.dir('not-a-model');
      const kv = await t.dir('kv');
      const env = { DYN_FILE_KV: kv };
      const file = join(MODEL_PATH, 'config.json'); // a file, not a directory
      const runs = await Promise.all(
        [empty, file].map((path) =>
          runEntry('src/main.ts', ['mocker', '--model-path', path, '--discovery-backend', 'file'], {
            env,
          })
        ),
      );
      for (const [i, path] of [empty, file].entries()) {
        const { code, stderr } = runs[i] as { code: number | string; stderr: string };
        assert.equal(code, 1, stderr);
        assert.deepEqual(lines(stderr), [
          `switchboard: "${path}" is not a model directory: it has no tokenizer.json`,
        ]);
      }
    } finally {
      await t.cleanup();
    }
  });
});

describe(`start-up errors on ${currentRuntime()}`, () => {
  test('etcd or NATS not reachable: exit 1 with one line naming the address and the fix', async () => {
    const t = tracker();
    try {
      const [etcdPort, natsPort, httpPort] = await Promise.all([
        freePort(),
        freePort(),
        freePort(),
      ]);
      const etcd = `http://127.0.0.1:${etcdPort}`;
      const nats = `ws://127.0.0.1:${natsPort}`;
      const [frontend, mocker] = await Promise.all([
        runEntry('src/main.ts', [
          '--http-host',
          '127.0.0.1',
          '--http-port',
          String(httpPort),
          '--discovery-backend',
          'etcd',
        ], { env: { ETCD_ENDPOINTS: etcd } }),
        runEntry('src/main.ts', [
          'mocker',
          '--model-path',
          MODEL_PATH,
          '--discovery-backend',
          'file',
          // Its events are optional on file discovery (tests/e2e/no-servers.test.ts); a NATS
          // request plane is not.
          '--request-plane',
          'nats',
        ], { env: { NATS_WS_SERVER: nats, DYN_FILE_KV: await t.dir('kv') } }),
      ]);

      assert.equal(frontend.code, 1, frontend.stderr);
      assert.equal(lines(frontend.stderr).length, 1, frontend.stderr);
      const etcdLine = lines(frontend.stderr)[0] ?? '';
      assert.ok(etcdLine.includes(etcd), etcdLine);
      assert.match(etcdLine, /ETCD_ENDPOINTS/);
      assert.match(etcdLine, /--discovery-backend file/);
      assert.match(etcdLine, /switchboard demo/);

      assert.equal(mocker.code, 1, mocker.stderr);
      assert.equal(lines(mocker.stderr).length, 1, mocker.stderr);
      const natsLine = lines(mocker.stderr)[0] ?? '';
      assert.ok(natsLine.includes(nats), natsLine);
      assert.match(natsLine, /NATS_SERVER/);
      assert.match(natsLine, /NATS_WS_SERVER/);
    } finally {
      await t.cleanup();
    }
  });
});

describe(`demo on ${currentRuntime()}`, () => {
  test('demo serves Qwen/Qwen3-0.6B from 2 simulated workers on tcp, and SIGTERM exits 0', async () => {
    const t = tracker();
    try {
      const demo = await t.add(startFrontend([], { subcommand: 'demo', timeoutMs: START_MS }));
      const models = await waitFor(
        async () => {
          const ids = await modelIds(demo.url);
          return ids?.includes('Qwen/Qwen3-0.6B') ? ids : undefined;
        },
        { timeoutMs: SEEN_MS, intervalMs: 50, what: 'the demo model in /v1/models' },
      );
      assert.deepEqual(models, ['Qwen/Qwen3-0.6B']);
      const h = await waitFor(
        async () => {
          const h = await health(demo.url);
          return h?.status === 'healthy' && generateInstances(h).length === 2 ? h : undefined;
        },
        { timeoutMs: SEEN_MS, intervalMs: 50, what: '2 demo instances in /health' },
      );
      for (const instance of h.instances) {
        assert.equal(typeof instance.transport.tcp, 'string', JSON.stringify(instance));
      }
      assert.equal(new Set(generateInstances(h).map((i) => i.instance_id_hex)).size, 2);
      assert.equal(await demo.stop(), 0);
    } finally {
      await t.cleanup();
    }
  });
});
