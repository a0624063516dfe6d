/**
 * README's "on one machine without servers": a frontend and `switchboard mocker` as separate
 * processes on file discovery and the tcp request plane, with NATS and etcd unreachable (both
 * pointed at closed ports). The worker's events are optional there: it runs with them off and
 * says so once. A frontend that does need events names the flag that needs them and the server.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  currentRuntime,
  freePort,
  runEntry,
  startFrontend,
  startMocker,
} from '../helpers/process.ts';
import { waitFor } from '../helpers/wait.ts';
import { chat, instanceIds, MODEL_PATH, sameIds, SEEN_MS, START_MS, tracker } from './_workers.ts';

const FILE = ['--discovery-backend', 'file'];
const MODEL = 'no-servers-model';

/** An environment where neither NATS (TCP or WebSocket) nor etcd answers. */
async function noServers(kvDir: string): Promise<Record<string, string>> {
  const [nats, natsWs, etcd] = await Promise.all([freePort(), freePort(), freePort()]);
  return {
    DYN_FILE_KV: kvDir,
    NATS_SERVER: `nats://127.0.0.1:${nats}`,
    NATS_WS_SERVER: `ws://127.0.0.1:${natsWs}`,
    ETCD_ENDPOINTS: `http://127.0.0.1:${etcd}`,
  };
}

const logLines = (stderr: string) =>
  stderr.split('\n').filter((l) => l.startsWith('{')).map((l) =>
    JSON.parse(l) as Record<string, unknown>
  );

describe(`no servers on ${currentRuntime()}`, () => {
  test('frontend and `mocker --discovery-backend file --request-plane tcp` serve with NATS and etcd unreachable; the worker says once that its events are off', async () => {
    const t = tracker();
    try {
      const env = await noServers(await t.dir('no-servers'));
      const [frontend, mocker] = await t.all(
        [
          startFrontend(FILE, { env, timeoutMs: START_MS }),
          startMocker([
            ...FILE,
            '--model-name',
            MODEL,
            '--request-plane',
            'tcp',
            '--num-workers',
            '2',
          ], {
            env,
          }),
        ] as const,
      );
      await waitFor(async () => sameIds(await instanceIds(frontend.url), mocker.workers), {
        timeoutMs: SEEN_MS,
        intervalMs: 50,
        what: "the mocker's 2 workers in /health",
      });
      for (let i = 0; i < 4; i++) {
        const answer = await chat(frontend.url, MODEL, 8);
        assert.equal(answer.status, 200);
        assert.equal(answer.completionTokens, 8);
      }
      const off = logLines(mocker.stderr()).filter((l) =>
        /NATS is not reachable/.test(String(l.msg))
      );
      assert.equal(off.length, 1, mocker.stderr());
      assert.equal(off[0]?.level, 'warn');
      assert.match(String(off[0]?.msg), new RegExp(env.NATS_WS_SERVER as string));
      assert.match(String(off[0]?.msg), /events and load reports are off/);
      assert.match(String(off[0]?.msg), /--event-plane zmq/);
      // The frontend needed neither server and said nothing about them.
      assert.doesNotMatch(frontend.stderr(), /not reachable/);
    } finally {
      await t.cleanup();
    }
  });

  test('a frontend that needs events (--router-mode kv, or a busy threshold) exits 1 naming the flag, the NATS address and the way out', async () => {
    const t = tracker();
    try {
      const env = await noServers(await t.dir('no-servers'));
      const start = async (args: string[]) =>
        runEntry('src/main.ts', [
          '--http-host',
          '127.0.0.1',
          '--http-port',
          String(await freePort()),
          ...FILE,
          ...args,
        ], { env });
      const [kv, busy] = await Promise.all([
        start(['--router-mode', 'kv']),
        start(['--active-decode-blocks-threshold', '0.5']),
      ]);
      for (
        const [run, flag] of [[kv, '--router-mode kv'], [
          busy,
          '--active-decode-blocks-threshold',
        ]] as const
      ) {
        assert.equal(run.code, 1, run.stderr);
        const lines = run.stderr.split('\n').filter(Boolean);
        assert.equal(lines.length, 1, run.stderr);
        const line = lines[0] ?? '';
        assert.ok(line.includes(flag), line);
        assert.ok(line.includes(env.NATS_WS_SERVER as string), line);
        assert.match(line, /NATS_SERVER/);
        assert.match(line, /--event-plane zmq/);
      }
      assert.match(kv.stderr, /--no-router-kv-events/);
    } finally {
      await t.cleanup();
    }
  });

  test('the same frontend with --router-mode kv --event-plane zmq needs no NATS', async () => {
    const t = tracker();
    try {
      const env = await noServers(await t.dir('no-servers'));
      const zmq = ['--event-plane', 'zmq'];
      const [frontend, mocker] = await t.all(
        [
          startFrontend([...FILE, ...zmq, '--router-mode', 'kv'], { env, timeoutMs: START_MS }),
          startMocker([...FILE, ...zmq, '--model-name', MODEL, '--model-path', MODEL_PATH], {
            env,
          }),
        ] as const,
      );
      await waitFor(async () => sameIds(await instanceIds(frontend.url), mocker.workers), {
        timeoutMs: SEEN_MS,
        intervalMs: 50,
        what: "the mocker's worker in /health",
      });
      const answer = await chat(frontend.url, MODEL, 4);
      assert.equal(answer.status, 200);
      assert.doesNotMatch(mocker.stderr() + frontend.stderr(), /not reachable/);
    } finally {
      await t.cleanup();
    }
  });
});
