/**
 * The edge profile on real edge runtimes, against a real etcd and real mocker workers on the
 * HTTP request plane: `deno serve` with only `--allow-net --allow-env` running
 * `deploy/deno/main.ts`, and Cloudflare's workerd running the esbuild bundle that
 * `deploy/cloudflare/wrangler.toml` deploys (its compatibility date, WASM rule and variables).
 * Both fetch the tokenizer from an HTTP server and read discovery per request. The runtimes are
 * spawned, so the test does the same under every runner.
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import process from 'node:process';
import { after, before, describe, test } from 'node:test';
import { buildEdgeBundle } from '../../scripts/build-edge.ts';
import {
  DENO_BIN,
  type EdgeHost,
  readWranglerConfig,
  serveModelFiles,
  startDenoEdge,
  startWorkerdEdge,
  WORKERD_BIN,
  type WranglerConfig,
} from '../helpers/edge.ts';
import { currentRuntime, type RunningMockerProcess, startMocker } from '../helpers/process.ts';
import { waitFor } from '../helpers/wait.ts';
import { MODEL_PATH, randomNamespace, START_MS } from './_workers.ts';

const ETCD = process.env.ETCD_ENDPOINTS?.split(',')[0] ?? 'http://127.0.0.1:2379';
const NATS_WS = process.env.NATS_WS_SERVER ?? 'ws://127.0.0.1:4280';

async function chat(url: string, stream: boolean, content = 'Tell me about the edge') {
  return await fetch(`${url}/v1/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({
      model: 'edge-model',
      messages: [{ role: 'user', content }],
      max_tokens: 6,
      stream,
    }),
  });
}

async function servesChat(host: EdgeHost) {
  await waitFor(async () => {
    const body = await (await fetch(`${host.url}/v1/models`)).json() as { data: { id: string }[] };
    return body.data.some((m) => m.id === 'edge-model');
  }, { timeoutMs: 30_000, intervalMs: 100, what: 'edge-model in /v1/models' });

  const plain = await chat(host.url, false);
  const body = await plain.json() as {
    choices: { message: { content: string }; finish_reason: string }[];
    usage: { completion_tokens: number };
  };
  assert.equal(plain.status, 200, JSON.stringify(body));
  assert.equal(body.usage.completion_tokens, 6);
  assert.equal(body.choices[0]?.finish_reason, 'length');

  const streamed = await chat(host.url, true);
  assert.equal(streamed.status, 200);
  assert.match(streamed.headers.get('content-type') ?? '', /text\/event-stream/);
  const text = await streamed.text();
  const events = text.split('\n\n').filter((e) => e.startsWith('data: '));
  assert.equal(events.at(-1), 'data: [DONE]');
  const chunks = events.slice(0, -1).map((e) =>
    JSON.parse(e.slice(6)) as {
      choices: { delta: { content?: string } }[];
    }
  );
  assert.equal(chunks.filter((c) => c.choices[0]?.delta.content).length, 6);

  // A client that goes away mid-stream: the handler keeps serving others.
  const aborted = new AbortController();
  const partial = await fetch(`${host.url}/v1/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({
      model: 'edge-model',
      messages: [{ role: 'user', content: 'long' }],
      max_tokens: 200,
      stream: true,
    }),
    signal: aborted.signal,
  });
  const reader = partial.body!.getReader();
  await reader.read();
  aborted.abort();
  await reader.cancel().catch(() => {});
  assert.equal((await chat(host.url, false)).status, 200);

  const metrics = await (await fetch(`${host.url}/metrics`)).text();
  assert.match(metrics, /dynamo_frontend_requests_total\{[^}]*model="edge-model"[^}]*\} \d/);
  return metrics;
}

const missing = !existsSync(DENO_BIN)
  ? `no deno binary at ${DENO_BIN}`
  : !existsSync(WORKERD_BIN)
  ? `no workerd binary at ${WORKERD_BIN} (npm ci installs it)`
  : undefined;

describe(`edge profile (runner: ${currentRuntime()})`, { skip: missing }, () => {
  const ns = randomNamespace();
  let mocker: RunningMockerProcess | undefined;
  let files: Awaited<ReturnType<typeof serveModelFiles>> | undefined;
  let dir = '';
  let wrangler: WranglerConfig;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'switchboard-edge-'));
    [mocker, files, wrangler] = await Promise.all([
      startMocker([
        '--discovery-backend',
        'etcd',
        '--request-plane',
        'http',
        '--endpoint',
        `dyn://${ns}.backend.generate`,
        '--model-name',
        'edge-model',
        '--num-workers',
        '2',
        '--speedup-ratio',
        '10',
      ], { env: { ETCD_ENDPOINTS: ETCD }, timeoutMs: START_MS }),
      serveModelFiles(MODEL_PATH),
      readWranglerConfig(),
    ]);
  });
  after(async () => {
    await Promise.allSettled([mocker?.stop(), files?.close()]);
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  const vars = () => ({
    ETCD_ENDPOINTS: ETCD,
    DYN_MODEL_PATH: files!.url,
    DYN_NAMESPACE: ns,
    SWITCHBOARD_DISCOVERY_MAX_AGE_MS: '500',
  });

  test('Deno with only --allow-net --allow-env serves chat completions, streaming and not', async () => {
    const host = await startDenoEdge({ ...vars(), DYN_ROUTER_MODE: 'round-robin' });
    try {
      await servesChat(host);
      assert.doesNotMatch(host.output(), /PermissionDenied|NotCapable/);
    } finally {
      await host.stop();
    }
  });

  test(
    "Deno edge with a NATS WebSocket: precise KV routing from the workers' events; SIGTERM ends it",
    async () => {
      const host = await startDenoEdge({
        ...vars(),
        DYN_ROUTER_MODE: 'kv',
        NATS_WS_SERVER: NATS_WS,
      });
      try {
        const prompt = Array.from({ length: 300 }, (_, i) => `edge${i}`).join(' ');
        const complete = async () => {
          const res = await fetch(`${host.url}/v1/completions`, {
            method: 'POST',
            headers: { 'content-type': 'application/json' },
            body: JSON.stringify({ model: 'edge-model', prompt, max_tokens: 2 }),
          });
          assert.equal(res.status, 200, await res.text());
        };
        const metric = async (name: string) => {
          const text = await (await fetch(`${host.url}/metrics`)).text();
          return text.split('\n').filter((l) => l.startsWith(name))
            .reduce((sum, l) => sum + Number(l.split(' ').pop()), 0);
        };
        await complete();
        await waitFor(async () => (await metric('dynamo_component_kv_cache_events_applied')) > 0, {
          timeoutMs: 15_000,
          intervalMs: 100,
          what: 'KV events over the NATS WebSocket',
        });
        for (let i = 0; i < 3; i++) await complete();
        const hits = await metric('dynamo_component_router_kv_hit_rate_sum');
        assert.ok(hits > 2.5, `the repeats found their prefix cached (hit rate sum ${hits})`);
        assert.doesNotMatch(host.output(), /PermissionDenied|NotCapable/);
        // `deno serve` exits once its drain leaves nothing running: the open NATS WebSocket must
        // be closed on SIGTERM, or the host lingers until it is killed.
        assert.equal(await host.stop(), 'exited', host.output());
      } finally {
        await host.stop();
      }
    },
  );

  test('Deno refuses a configuration the edge cannot run, naming the alternative', async () => {
    const host = startDenoEdge({ ...vars(), DYN_REQUEST_PLANE: 'tcp' });
    await assert.rejects(host, /--request-plane tcp.*--request-plane http/s);
  });

  test('workerd runs the wrangler bundle with approximate KV routing', async () => {
    assert.equal(basename(wrangler.main), 'worker.js');
    assert.deepEqual(wrangler.wasmGlobs, ['**/*.wasm']);
    assert.match(wrangler.compatibilityDate, /^\d{4}-\d{2}-\d{2}$/);
    await buildEdgeBundle(dir);
    const host = await startWorkerdEdge(dir, { ...wrangler.vars, ...vars() }, wrangler);
    try {
      assert.equal(wrangler.vars.DYN_ROUTER_MODE, 'kv');
      const metrics = await servesChat(host);
      const placed = /dynamo_component_router_requests_total\{[^}]*\} (\d+)/.exec(metrics);
      assert.ok(Number(placed?.[1]) >= 2, `KV router placed requests: ${placed?.[0]}`);
      assert.doesNotMatch(host.output(), /Wasm code generation disallowed/);
    } finally {
      await host.stop();
    }
  });
});
