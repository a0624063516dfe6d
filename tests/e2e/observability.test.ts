/**
 * What an operator sees, against a frontend process on the current runtime: request spans
 * exported over OTLP/HTTP to a fake collector (a local HTTP server here), the client's
 * `traceparent` continued and handed to the worker, and `/metrics` that Prometheus's own
 * `promtool check metrics` accepts, with the reference's families and the `DYN_METRICS_*`
 * bucket variables applied. The worker is a worker runtime in this test process (file
 * discovery, tcp request plane) that records the headers it is called with.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createServer, type IncomingMessage } from 'node:http';
import { after, before, describe, test } from 'node:test';
import { silentLogger } from '../../src/core/logger.ts';
import { modelCardFor } from '../../src/core/discovery/model-dir.ts';
import type { EndpointHandler } from '../../src/core/plane/types.ts';
import { createInfra, createOffEventPlane } from '../../src/runtime/infra.ts';
import { readModelDir } from '../../src/runtime/model-dir.ts';
import { createWorkerRuntime, type WorkerRuntime } from '../../src/worker/runtime.ts';
import { currentRuntime, type RunningServer, startFrontend } from '../helpers/process.ts';
import { waitFor } from '../helpers/wait.ts';
import { testApp } from '../helpers/app.ts';
import { MODEL_PATH, START_MS, tempDir } from './_workers.ts';
import { rm } from 'node:fs/promises';

const MODEL = 'traced-model';
const CLIENT_TRACE = '0af7651916cd43dd8448eb211c80319c';
const CLIENT_SPAN = 'b7ad6b7169203331';

interface OtlpSpan {
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  name: string;
  kind: number;
  startTimeUnixNano: string;
  endTimeUnixNano: string;
  status?: { code: number };
}

/** A fake OTLP/HTTP collector: keeps every span POSTed to /v1/traces. */
async function startCollector() {
  const spans: OtlpSpan[] = [];
  const paths: string[] = [];
  const server = createServer((req: IncomingMessage, res) => {
    let body = '';
    req.on('data', (d: Buffer) => body += d.toString());
    req.on('end', () => {
      paths.push(`${req.method} ${req.url} ${req.headers['content-type']}`);
      const parsed = JSON.parse(body) as {
        resourceSpans: { scopeSpans: { spans: OtlpSpan[] }[] }[];
      };
      for (const rs of parsed.resourceSpans) {
        for (const ss of rs.scopeSpans) spans.push(...ss.spans);
      }
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end('{}');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  return {
    url: `http://127.0.0.1:${port}`,
    spans,
    paths,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

/**
 * Names Dynamo gives these families, which promtool's lint would name otherwise: kept for
 * compatibility with Dynamo's dashboards and alerts (docs/observability.md).
 */
const DYNAMO_NAMES = [
  'dynamo_component_kv_cache_event_warnings counter metrics should have "_total" suffix',
  'dynamo_component_kv_cache_events_applied counter metrics should have "_total" suffix',
  'dynamo_frontend_tokenizer_latency_ms metric names should not contain abbreviated units',
  'dynamo_router_overhead_block_hashing_ms metric names should not contain abbreviated units',
  'dynamo_router_overhead_indexer_find_matches_ms metric names should not contain abbreviated units',
  'dynamo_router_overhead_scheduling_ms metric names should not contain abbreviated units',
  'dynamo_router_overhead_total_ms metric names should not contain abbreviated units',
];

/** `text` with one zero sample under every family that has none (promtool lints only those). */
function withEverySample(text: string): string {
  const lines = text.split('\n');
  const out: string[] = [];
  for (let i = 0; i < lines.length; i++) {
    out.push(lines[i] as string);
    const m = /^# TYPE (\S+) (\S+)$/.exec(lines[i] as string);
    if (!m || (lines[i + 1] ?? '').startsWith(m[1] as string)) continue;
    const name = m[1] as string;
    if (m[2] === 'histogram') {
      out.push(`${name}_bucket{le="+Inf"} 0`, `${name}_sum 0`, `${name}_count 0`);
    } else out.push(`${name} 0`);
  }
  return out.join('\n');
}

/** `promtool check metrics` on `text`: its exit code and output. */
function promtool(text: string): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn('promtool', ['check', 'metrics'], { stdio: ['pipe', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (d: Buffer) => output += d.toString());
    child.stderr.on('data', (d: Buffer) => output += d.toString());
    child.once('error', reject);
    child.once('close', (code) => resolve({ code, output }));
    child.stdin.end(text);
  });
}

describe(`observability on ${currentRuntime()}`, () => {
  let dir: string;
  let collector: Awaited<ReturnType<typeof startCollector>>;
  let frontend: RunningServer;
  let worker: WorkerRuntime;
  const seenHeaders: Record<string, string>[] = [];

  before(async () => {
    dir = await tempDir('observability');
    collector = await startCollector();
    const env = { DYN_FILE_KV: dir };
    // The worker: this process, tcp plane, file discovery, no events.
    const infra = createInfra(
      { discoveryBackend: 'file', requestPlane: 'tcp', eventPlane: 'nats' },
      { env, logger: silentLogger },
    );
    const store = await infra.store();
    worker = createWorkerRuntime({
      store,
      plane: infra.planeServer(),
      events: createOffEventPlane(),
      logger: silentLogger,
    });
    const handler: EndpointHandler = async function* (_body, context) {
      seenHeaders.push({ ...context.headers });
      yield { data: { token_ids: [1000] } };
      yield { data: { token_ids: [1001] } };
      yield {
        data: {
          token_ids: [1002],
          finish_reason: 'length',
          completion_usage: { prompt_tokens: 5, completion_tokens: 3, total_tokens: 8 },
        },
      };
    };
    const files = await readModelDir(MODEL_PATH);
    const card = await modelCardFor(files, { name: MODEL, kvCacheBlockSize: 16 });
    await worker.serve(
      { namespace: 'dynamo', component: 'backend', endpoint: 'generate' },
      handler,
      card,
    );
    frontend = await startFrontend(['--discovery-backend', 'file'], {
      env: {
        ...env,
        OTEL_EXPORTER_OTLP_ENDPOINT: collector.url,
        DYN_METRICS_TTFT_MIN: '0.01',
        DYN_METRICS_TTFT_MAX: '10',
        DYN_METRICS_TTFT_COUNT: '4',
      },
      timeoutMs: START_MS,
    });
    await waitFor(async () => {
      const r = await fetch(`${frontend.url}/v1/models`).catch(() => undefined);
      const body = await r?.json() as { data?: { id: string }[] } | undefined;
      return body?.data?.some((m) => m.id === MODEL);
    }, { timeoutMs: 30_000, intervalMs: 50, what: `${MODEL} in /v1/models` });
  });

  after(async () => {
    await frontend?.stop();
    await worker?.close();
    await collector?.close();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  test("a streamed request's spans reach the OTLP collector under the client's trace, and the worker gets the request span as parent", async () => {
    const response = await fetch(`${frontend.url}/v1/chat/completions`, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        traceparent: `00-${CLIENT_TRACE}-${CLIENT_SPAN}-01`,
      },
      body: JSON.stringify({
        model: MODEL,
        stream: true,
        max_tokens: 3,
        messages: [{ role: 'user', content: 'Hello!' }],
      }),
    });
    assert.equal(response.status, 200);
    await response.text();
    const mine = () => collector.spans.filter((s) => s.traceId === CLIENT_TRACE);
    await waitFor(() => mine().some((s) => s.kind === 2), {
      timeoutMs: 15_000,
      intervalMs: 50,
      what: 'the request span at the collector',
    });
    const root = mine().find((s) => s.kind === 2) as OtlpSpan;
    assert.equal(root.name, 'chat_completions');
    assert.equal(root.parentSpanId, CLIENT_SPAN);
    assert.equal(root.status?.code, 1);
    await waitFor(() => mine().length >= 6, {
      timeoutMs: 15_000,
      intervalMs: 50,
      what: 'the stage spans at the collector',
    });
    const children = mine().filter((s) => s !== root);
    assert.deepEqual(
      children.map((s) => s.name).sort(),
      ['dispatch', 'first_token', 'preprocess', 'route', 'stream'],
    );
    for (const child of children) {
      assert.equal(child.parentSpanId, root.spanId, child.name);
      assert.ok(BigInt(child.startTimeUnixNano) >= BigInt(root.startTimeUnixNano), child.name);
      assert.ok(BigInt(child.endTimeUnixNano) <= BigInt(root.endTimeUnixNano), child.name);
    }
    assert.ok(collector.paths.every((p) => p === 'POST /v1/traces application/json'));
    // The worker was called with the request span as its parent, in the client's trace.
    assert.equal(seenHeaders.at(-1)?.traceparent, `00-${CLIENT_TRACE}-${root.spanId}-01`);
  });

  test('a request without traceparent starts its own trace; the worker gets it too', async () => {
    const before = new Set(collector.spans.map((s) => s.traceId));
    const response = await fetch(`${frontend.url}/v1/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: MODEL, prompt: 'Hi', max_tokens: 3 }),
    });
    assert.equal(response.status, 200);
    await response.json();
    const root = await waitFor(
      () => collector.spans.find((s) => s.kind === 2 && !before.has(s.traceId)),
      { timeoutMs: 15_000, intervalMs: 50, what: 'a new trace at the collector' },
    );
    assert.equal(root.name, 'completions');
    assert.equal(root.parentSpanId, undefined);
    assert.equal(seenHeaders.at(-1)?.traceparent, `00-${root.traceId}-${root.spanId}-01`);
  });

  test('promtool lints every family once it has samples: the only findings are names Dynamo gives them', async () => {
    const { app } = testApp({ argv: ['--router-mode', 'kv'] });
    const checked = await promtool(withEverySample(await (await app.request('/metrics')).text()));
    const findings = checked.output.trim().split('\n').filter(Boolean).sort();
    assert.deepEqual(findings, DYNAMO_NAMES);
    assert.equal(checked.code, 3, 'lint findings only, no parse error');
  });

  test('/metrics passes `promtool check metrics` and has the reference families, DYN_METRICS_TTFT_* applied', async () => {
    const text = await (await fetch(`${frontend.url}/metrics`)).text();
    const checked = await promtool(text);
    assert.equal(checked.code, 0, checked.output);
    assert.equal(checked.output.trim(), '', 'promtool printed no lint problem');
    for (
      const family of [
        'dynamo_frontend_worker_last_time_to_first_token_seconds',
        'dynamo_frontend_worker_last_input_sequence_tokens',
        'dynamo_frontend_worker_last_inter_token_latency_seconds',
        'dynamo_frontend_stage_duration_seconds_bucket',
      ]
    ) {
      assert.match(text, new RegExp(`^${family}\\{`, 'm'), family);
    }
    for (const stage of ['preprocess', 'route', 'transport_roundtrip']) {
      assert.match(text, new RegExp(`stage_duration_seconds_count\\{stage="${stage}"\\} [1-9]`));
    }
    for (
      const family of [
        'dynamo_frontend_model_migration_duration_seconds',
        'dynamo_frontend_model_migration_max_seq_len_exceeded_total',
        'dynamo_frontend_admission_rejection_total',
        'dynamo_frontend_admission_gate_limit',
        'dynamo_frontend_kv_hit_rate',
        'dynamo_frontend_images_per_request',
        'dynamo_frontend_videos_per_request',
        'dynamo_frontend_audio_per_request',
        'dynamo_frontend_image_tokens_per_request',
        'dynamo_frontend_worker_waiting_requests',
      ]
    ) {
      assert.match(text, new RegExp(`^# TYPE ${family} `, 'm'), family);
    }
    // (0.01, 10, 4): 0, 0.1, 1, 10 instead of the 18 default buckets.
    const les = [
      ...text.matchAll(/^dynamo_frontend_time_to_first_token_seconds_bucket\{le="([^"]+)"/gm),
    ]
      .map((m) => m[1]);
    assert.deepEqual([...new Set(les)], ['0', '0.1', '1', '10', '+Inf']);
  });
});
