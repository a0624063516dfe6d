/**
 * A worker that accepts a request but never opens its response stream (the TCP call-home) must
 * not cost the client its request while another worker is free: the frontend gives up on it after
 * the handshake deadline (`--worker-handshake-timeout-secs`), sends the request to another worker
 * before the first token, and counts that in `dynamo_frontend_model_migration_total`. Real
 * processes on the current runtime: a frontend, one healthy mocker and one stalled worker
 * (tests/fixtures/stalled-worker.ts), sharing a file-discovery directory.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { currentRuntime, startFrontend, startMocker } from '../helpers/process.ts';
import { waitFor } from '../helpers/wait.ts';
import { chat, instanceIds, sameIds, SEEN_MS, START_MS, tracker } from './_workers.ts';

const FILE = ['--discovery-backend', 'file', '--event-plane', 'zmq'];

/** The model's new-request migrations, from /metrics. */
async function newRequestMigrations(url: string, model: string): Promise<number> {
  const text = await (await fetch(`${url}/metrics`)).text();
  const line = text.split('\n').find((l) =>
    l.startsWith('dynamo_frontend_model_migration_total{') && l.includes(`model="${model}"`) &&
    l.includes('migration_type="new_request"')
  );
  return line ? Number(line.split(' ').at(-1)) : 0;
}

describe(`a worker that never opens its response stream, on ${currentRuntime()}`, () => {
  for (const mode of ['round-robin', 'kv', 'least-loaded', 'power-of-two-choices']) {
    test(`--router-mode ${mode}: every request is answered by the other worker, none fails`, async () => {
      const t = tracker();
      try {
        const root = await t.dir('handshake');
        const env = { DYN_FILE_KV: root };
        const model = 'handshake';
        const [frontend, good, stalled] = await t.all(
          [
            startFrontend([
              ...FILE,
              '--router-mode',
              mode,
              '--worker-handshake-timeout-secs',
              '1',
            ], { env, timeoutMs: START_MS }),
            startMocker([...FILE, '--model-name', model], { env }),
            startMocker([...FILE, '--model-name', model], {
              env,
              entry: 'tests/fixtures/stalled-worker.ts',
            }),
          ] as const,
        );
        await waitFor(
          async () =>
            sameIds(await instanceIds(frontend.url), [...good.workers, ...stalled.workers]),
          { timeoutMs: SEEN_MS, intervalMs: 50, what: 'both workers in /health' },
        );
        // Until the stalled worker has been tried once, every request may be sent to it.
        for (let i = 0; (await newRequestMigrations(frontend.url, model)) === 0; i++) {
          assert.ok(i < 20, 'the stalled worker was never chosen');
          const answer = await chat(frontend.url, model);
          assert.equal(answer.status, 200, `request ${i}: ${answer.text}`);
          assert.equal(answer.completionTokens, 4);
        }
        const log = await frontend.waitForLog('worker call failed');
        assert.equal(log.instance_id, stalled.workers[0]);
        assert.match(String(log.error), /did not open its response stream within 1000 ms/);
        // And then every request is answered (the stalled worker is skipped while inhibited).
        const answers = await Promise.all(
          Array.from({ length: 4 }, () => chat(frontend.url, model)),
        );
        assert.deepEqual(answers.map((a) => a.status), [200, 200, 200, 200]);
      } finally {
        await t.cleanup();
      }
    });
  }
});
