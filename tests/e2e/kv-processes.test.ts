/**
 * KV routing across processes on real infrastructure: a frontend and a mocker as separate
 * processes on the shared etcd, with KV events over NATS and over ZMQ. The frontend's metrics
 * show the events it applied and the cache hits of repeated prompts.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { startPrivateNats } from '../helpers/nats.ts';
import { currentRuntime, startFrontend, startMocker } from '../helpers/process.ts';
import { metricValue } from '../helpers/stack.ts';
import { waitFor } from '../helpers/wait.ts';
import { instanceIds, randomNamespace, sameIds, SEEN_MS, START_MS, tracker } from './_workers.ts';

const ETCD = ['--discovery-backend', 'etcd'];

describe(`kv events across processes on ${currentRuntime()}`, () => {
  // `nats-stock`: a stock nats-server as deployments run it (TCP only, no websocket listener) with
  // a password, reached through NATS_SERVER=nats://... and Dynamo's NATS_AUTH_* variables.
  for (const variant of ['nats', 'zmq', 'nats-stock']) {
    const plane = variant === 'zmq' ? 'zmq' : 'nats';
    test(`events over ${variant}: repeated prompts hit the cache the index learned`, async () => {
      const t = tracker();
      const stock = variant === 'nats-stock'
        ? await startPrivateNats({
          noWebSocket: true,
          config: 'authorization { user: "dyn", password: "s3cret" }',
        })
        : undefined;
      const env: Record<string, string> = stock
        ? { NATS_SERVER: stock.url, NATS_AUTH_USERNAME: 'dyn', NATS_AUTH_PASSWORD: 's3cret' }
        : {};
      try {
        const ns = randomNamespace();
        const events = ['--event-plane', plane];
        const [frontend, mocker] = await t.all(
          [
            startFrontend([...ETCD, ...events, '--namespace', ns, '--router-mode', 'kv'], {
              timeoutMs: START_MS,
              env,
            }),
            startMocker([
              ...ETCD,
              ...events,
              '--endpoint',
              `dyn://${ns}.backend.generate`,
              '--model-name',
              'kv-model',
              '--num-workers',
              '2',
              '--block-size',
              '16',
              '--speedup-ratio',
              '100',
            ], { env }),
          ] as const,
        );
        await waitFor(async () => sameIds(await instanceIds(frontend.url), mocker.workers), {
          timeoutMs: SEEN_MS,
          intervalMs: 50,
          what: 'both workers in /health',
        });
        const prompt = Array.from({ length: 200 }, (_, i) => `word${i}`).join(' ');
        const complete = async () => {
          const res = await fetch(`${frontend.url}/v1/completions`, {
            method: 'POST',
            headers: { 'content-type': 'application/json' },
            body: JSON.stringify({ model: 'kv-model', prompt, max_tokens: 2 }),
          });
          assert.equal(res.status, 200, await res.text());
        };
        const metrics = async () => await (await fetch(`${frontend.url}/metrics`)).text();
        await complete();
        await waitFor(
          async () =>
            metricValue(await metrics(), 'dynamo_component_kv_cache_events_applied', {
              event_type: 'stored',
              status: 'ok',
            }) > 0,
          { timeoutMs: 15_000, intervalMs: 100, what: `a stored event applied via ${plane}` },
        );
        for (let i = 0; i < 3; i++) await complete();
        const text = await metrics();
        // The repeats found the prompt's blocks on the worker they went to.
        const hits = metricValue(text, 'dynamo_component_router_kv_hit_rate_sum');
        assert.ok(hits > 2.5, `hit rate sum ${hits} over 4 requests`);
        assert.equal(metricValue(text, 'dynamo_component_router_requests_total'), 4);
      } finally {
        await t.cleanup();
        await stock?.stop();
      }
    });
  }
});
