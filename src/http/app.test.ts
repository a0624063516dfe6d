import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { createRoute } from '@hono/zod-openapi';
import { addWorker, testApp, testCard } from '../../tests/helpers/app.ts';
import { routes as manifest } from '../../routes/_manifest.gen.ts';
import type { RouteModule } from './types.ts';

describe('infrastructure endpoints', () => {
  test('/health and /live answer 200 when ready and 503 while draining', async () => {
    const { app, core } = testApp();
    assert.deepEqual(await (await app.request('/live')).json(), {
      status: 'live',
      message: 'Service is live',
    });
    const healthy = await app.request('/health');
    assert.equal(healthy.status, 200);
    const body = await healthy.json() as Record<string, unknown>;
    assert.equal(body.status, 'healthy');
    assert.equal(body.initial_discovery_complete, true);
    assert.deepEqual(body.instances, []);
    core.lifecycle.startDraining();
    assert.equal((await app.request('/live')).status, 503);
    const draining = await app.request('/health');
    assert.equal(draining.status, 503);
    assert.equal((await draining.json() as { status: string }).status, 'shutting_down');
  });

  test('/health writes a 64-bit instance_id exactly (5141444950165349785, not ...349000)', async () => {
    const { app, core } = testApp();
    const id = 5141444950165349785n;
    addWorker(core, testCard('m1'), id.toString(16));
    const text = await (await app.request('/health')).text();
    assert.match(text, /"instance_id":5141444950165349785,/);
    assert.match(text, new RegExp(`"instance_id_hex":"${id.toString(16)}"`));
  });

  test('/health is 503 not_ready before initial discovery completes', async () => {
    const { app } = testApp({ starting: true });
    const res = await app.request('/health');
    assert.equal(res.status, 503);
    assert.equal((await res.json() as { status: string }).status, 'not_ready');
  });

  test('/v1/models is an empty list with no workers, and 503 while draining', async () => {
    const { app, core } = testApp();
    assert.deepEqual(await (await app.request('/v1/models')).json(), { object: 'list', data: [] });
    addWorker(core, testCard('m1'));
    assert.deepEqual(await (await app.request('/v1/models')).json(), {
      object: 'list',
      data: [{
        id: 'm1',
        object: 'model',
        created: 1700000000,
        owned_by: 'switchboard',
        context_window: 4096,
      }],
    });
    core.lifecycle.startDraining();
    const res = await app.request('/v1/models');
    assert.equal(res.status, 503);
    assert.equal(
      (await res.json() as { error: { type: string } }).error.type,
      'service_unavailable',
    );
  });

  test('/metrics exposes the frontend families under the prefix, HTTP counters live', async () => {
    const { app } = testApp({ argv: ['--metrics-prefix', 'my-front end'] });
    await app.request('/live');
    const res = await app.request('/metrics');
    assert.match(res.headers.get('content-type') ?? '', /text\/plain/);
    const text = await res.text();
    assert.match(
      text,
      /^my_front_end_http_requests_total\{method="GET",route="\/live",status="200"\} 1$/m,
    );
    assert.match(text, /^# TYPE my_front_end_time_to_first_token_seconds histogram$/m);
    assert.match(text, /^# TYPE my_front_end_requests_total counter$/m);
  });
});

describe('errors', () => {
  test('an unknown path gets a JSON 404 in OpenAI shape', async () => {
    const { app } = testApp();
    const res = await app.request('/v1/nothing-here', { method: 'POST' });
    assert.equal(res.status, 404);
    assert.deepEqual(await res.json(), {
      error: {
        message: 'Route not found: POST /v1/nothing-here',
        type: 'not_found_error',
        param: null,
        code: 'route_not_found',
      },
    });
  });

  test('an internal error is a generic 500 with no stack or internal message', async () => {
    const boom: RouteModule = {
      route: createRoute({ method: 'get', path: '/boom', responses: {} }),
      handler: () => {
        throw new Error('secret: password=hunter2 at /srv/app.ts:12');
      },
    };
    const { app, logs } = testApp({ routes: [boom] });
    const res = await app.request('/boom');
    assert.equal(res.status, 500);
    const text = await res.text();
    assert.doesNotMatch(text, /hunter2|app\.ts|at /);
    assert.deepEqual(JSON.parse(text), {
      error: {
        message: 'Internal server error',
        type: 'internal_server_error',
        param: null,
        code: 'internal_error',
      },
    });
    assert.ok(logs.some((l) => l.msg === 'request failed'), 'the original error is logged');
  });
});

describe('JSON intake (POST /busy_threshold)', () => {
  test("415 for a non-JSON content type, in the route's envelope", async () => {
    const { app } = testApp();
    const res = await app.request('/busy_threshold', {
      method: 'POST',
      headers: { 'content-type': 'text/plain' },
      body: '{"model":"m"}',
    });
    assert.equal(res.status, 415);
    assert.deepEqual(await res.json(), {
      error: 'Expected request with Content-Type application/json',
    });
  });

  test('400 for malformed JSON', async () => {
    const { json } = testApp();
    const res = await json('/busy_threshold', '{"model":');
    assert.equal(res.status, 400);
    assert.match((await res.json() as { error: string }).error, /Failed to parse the request body/);
  });

  test('413 for a body over DYN_HTTP_BODY_LIMIT_MB', async () => {
    const { json } = testApp({ env: { DYN_HTTP_BODY_LIMIT_MB: '0.001' } });
    const res = await json('/busy_threshold', { model: 'x'.repeat(5000) });
    assert.equal(res.status, 413);
    assert.deepEqual(await res.json(), {
      error: 'Request body exceeds the limit of 0.001 MB set by DYN_HTTP_BODY_LIMIT_MB',
    });
  });
});

describe('/busy_threshold', () => {
  test('set, get and list thresholds of a discovered model', async () => {
    const { app, core, json } = testApp();
    addWorker(core, testCard('llama'));
    const empty = await json('/busy_threshold', { model: 'llama' });
    assert.deepEqual(await empty.json(), {
      model: 'llama',
      active_decode_blocks_threshold: null,
      active_prefill_tokens_threshold: null,
      active_prefill_tokens_threshold_frac: null,
    });
    const set = await json('/busy_threshold', {
      model: 'llama',
      active_decode_blocks_threshold: 0.85,
      active_prefill_tokens_threshold: 1000,
    });
    assert.equal(set.status, 200);
    assert.deepEqual(await set.json(), {
      model: 'llama',
      active_decode_blocks_threshold: 0.85,
      active_prefill_tokens_threshold: 1000,
      active_prefill_tokens_threshold_frac: null,
    });
    await json('/busy_threshold', { model: 'llama', active_prefill_tokens_threshold_frac: 0.5 });
    assert.deepEqual(await (await app.request('/busy_threshold')).json(), {
      thresholds: [{
        model: 'llama',
        active_decode_blocks_threshold: 0.85,
        active_prefill_tokens_threshold: 1000,
        active_prefill_tokens_threshold_frac: 0.5,
      }],
    });
  });

  test('an alias sets and reads the thresholds of its model, kept under the primary name', async () => {
    const { core, json } = testApp();
    addWorker(core, testCard('llama', { aliases: ['llama-alias'] }));
    const set = await json('/busy_threshold', {
      model: 'llama-alias',
      active_decode_blocks_threshold: 0.7,
    });
    assert.equal(set.status, 200);
    assert.deepEqual(await set.json(), {
      model: 'llama',
      active_decode_blocks_threshold: 0.7,
      active_prefill_tokens_threshold: null,
      active_prefill_tokens_threshold_frac: null,
    });
    const read = await json('/busy_threshold', { model: 'llama' });
    assert.equal(
      (await read.json() as Record<string, unknown>).active_decode_blocks_threshold,
      0.7,
    );
  });

  test('404 for a model that was never discovered; 400 for a fraction over 1', async () => {
    const { json } = testApp();
    const missing = await json('/busy_threshold', {
      model: 'ghost',
      active_decode_blocks_threshold: 0.5,
    });
    assert.equal(missing.status, 404);
    assert.deepEqual(await missing.json(), {
      error: "Model 'ghost' not found. Thresholds can only be set for discovered models.",
    });
    const bad = await json('/busy_threshold', {
      model: 'ghost',
      active_decode_blocks_threshold: 2,
    });
    assert.equal(bad.status, 400);
    assert.match((await bad.json() as { error: string }).error, /between 0 and 1/);
  });

  test('CLI thresholds are the defaults a model starts with', async () => {
    const { json } = testApp({ argv: ['--active-decode-blocks-threshold', '0.9'] });
    const res = await json('/busy_threshold', { model: 'any' });
    assert.equal((await res.json() as Record<string, unknown>).active_decode_blocks_threshold, 0.9);
  });

  test('DYN_DISABLE_FRONTEND_ADMIN_API removes the route', async () => {
    const { app } = testApp({ env: { DYN_DISABLE_FRONTEND_ADMIN_API: 'true' } });
    assert.equal((await app.request('/busy_threshold')).status, 404);
  });
});

describe('request ids and paths', () => {
  test('x-request-id is echoed when given and generated when not', async () => {
    const { app, logs } = testApp();
    const given = await app.request('/live', { headers: { 'x-request-id': 'abc-123' } });
    assert.equal(given.headers.get('x-request-id'), 'abc-123');
    const generated = await app.request('/live');
    assert.equal(generated.headers.get('x-request-id'), 'req-1');
    const access = logs.filter((l) => l.msg === 'request');
    assert.deepEqual(access.map((l) => [l.method, l.path, l.status, l.request_id]), [
      ['GET', '/live', 200, 'abc-123'],
      ['GET', '/live', 200, 'req-1'],
    ]);
    assert.equal(typeof access[0]?.duration_ms, 'number');
  });

  test('DYN_HTTP_SVC_*_PATH moves routes, and /openapi.json shows the moved paths', async () => {
    const { app } = testApp({
      env: { DYN_HTTP_SVC_HEALTH_PATH: '/healthz', DYN_HTTP_SVC_MODELS_PATH_ENV: '/api/models' },
    });
    assert.equal((await app.request('/healthz')).status, 200);
    assert.equal((await app.request('/health')).status, 404);
    assert.equal((await app.request('/api/models')).status, 200);
    const doc = await (await app.request('/openapi.json')).json() as { paths: object };
    const paths = Object.keys(doc.paths);
    assert.ok(paths.includes('/healthz') && paths.includes('/api/models'), paths.join());
    assert.ok(!paths.includes('/health'));
  });

  test('/openapi.json is OpenAPI 3.1 listing every manifest route but the hidden asset one', async () => {
    const { app } = testApp({ argv: ['--enable-anthropic-api'] });
    const doc = await (await app.request('/openapi.json')).json() as {
      openapi: string;
      paths: Record<string, Record<string, unknown>>;
    };
    assert.equal(doc.openapi, '3.1.0');
    for (const { route, options } of manifest) {
      if (route.hide) continue;
      assert.ok(
        doc.paths[route.path]?.[route.method],
        `${route.method} ${route.path}${options ? '' : ''}`,
      );
    }
  });
});

describe('/docs', () => {
  test('serves a page that loads Swagger UI from /docs, not a CDN', async () => {
    const assets = {
      get: (name: string) =>
        Promise.resolve(
          name === 'swagger-ui.css'
            ? { body: new TextEncoder().encode('css'), contentType: 'text/css' }
            : undefined,
        ),
    };
    const { app } = testApp({ assets });
    const page = await (await app.request('/docs')).text();
    assert.match(page, /src="\/docs\/swagger-ui-bundle\.js"/);
    assert.doesNotMatch(page, /https?:\/\//);
    assert.equal(await (await app.request('/docs/swagger-ui.css')).text(), 'css');
    assert.match(
      await (await app.request('/docs/swagger-initializer.js')).text(),
      /\/openapi\.json/,
    );
    assert.equal((await app.request('/docs/nope.js')).status, 404);
  });
});
