/**
 * Access control (docs/security.md), one test per option, in process on every runtime: off by
 * default (Dynamo-compatible), API keys, the admin key, /health detail, CORS and the Host
 * allow-list. Routing-header trust runs end to end in tests/e2e/abuse.test.ts.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { addWorker, testApp, testCard } from '../../tests/helpers/app.ts';
import { matchesAny } from './access.ts';

const bearer = (key: string) => ({ authorization: `Bearer ${key}` });

async function errorOf(res: Response) {
  return (await res.json() as { error: { code: string; message: string } }).error;
}

describe('access control', () => {
  test('by default everything is open, as in Dynamo: no key, any Host, /health in detail', async () => {
    const { app, core, json } = testApp();
    addWorker(core, testCard('m1'));
    assert.equal((await app.request('/v1/models')).status, 200);
    assert.equal((await app.request('http://any.example:1234/v1/models')).status, 200);
    const health = await (await app.request('/health')).json() as { instances: unknown[] };
    assert.equal(health.instances.length, 1);
    const set = await json('/busy_threshold', { model: 'm1', active_decode_blocks_threshold: 0.5 });
    assert.equal(set.status, 200);
    const preflight = await app.request('/v1/models', {
      method: 'OPTIONS',
      headers: { origin: 'https://app.example', 'access-control-request-method': 'POST' },
    });
    assert.equal(preflight.headers.get('access-control-allow-origin'), null);
  });

  test('--api-key (repeatable) and DYN_HTTP_API_KEYS: Bearer or x-api-key on API routes', async () => {
    for (
      const options of [
        { argv: ['--api-key', 'k1', '--api-key', 'k2'] },
        { env: { DYN_HTTP_API_KEYS: 'k1, k2' } },
      ]
    ) {
      const { app, core } = testApp(options);
      assert.deepEqual(core.config.apiKeys, ['k1', 'k2']);
      const missing = await app.request('/v1/models');
      assert.equal(missing.status, 401);
      assert.equal(missing.headers.get('www-authenticate'), 'Bearer');
      assert.equal((await errorOf(missing)).code, 'invalid_api_key');
      const wrong = await app.request('/v1/models', { headers: bearer('k3') });
      assert.equal(wrong.status, 401);
      assert.equal((await errorOf(wrong)).message, 'Incorrect API key provided');
      assert.equal((await app.request('/v1/models', { headers: bearer('k1') })).status, 200);
      assert.equal((await app.request('/v1/models', { headers: bearer('k2') })).status, 200);
      assert.equal(
        (await app.request('/v1/models', { headers: { 'x-api-key': 'k2' } })).status,
        200,
      );
      // A POST is refused before its body is read or validated.
      const chat = await app.request('/v1/chat/completions', { method: 'POST', body: '{' });
      assert.equal(chat.status, 401);
      // Probes and the scrape stay open.
      assert.equal((await app.request('/live')).status, 200);
      assert.equal((await app.request('/health')).status, 200);
      assert.equal((await app.request('/metrics')).status, 200);
    }
  });

  test('with API keys and no admin key the admin API is closed: an API key never opens it', async () => {
    const { app, core, json } = testApp({ argv: ['--api-key', 'k1'] });
    addWorker(core, testCard('m1'));
    const body = { model: 'm1', active_decode_blocks_threshold: 0.5 };
    const res = await json('/busy_threshold', body, bearer('k1'));
    assert.equal(res.status, 403);
    assert.match((await res.json() as { error: string }).error, /--admin-api-key/);
    assert.equal((await app.request('/busy_threshold', { headers: bearer('k1') })).status, 403);
    assert.equal(core.thresholds.get('m1').active_decode_blocks_threshold, null);
    // /health answers, without the workers' addresses.
    const health = await (await app.request('/health', { headers: bearer('k1') })).json() as {
      instances: unknown[];
      endpoints: unknown[];
    };
    assert.deepEqual([health.instances, health.endpoints], [[], []]);
  });

  test('--admin-api-key opens the admin API and /health detail; API keys do not', async () => {
    const { app, core, json } = testApp({ argv: ['--api-key', 'k1', '--admin-api-key', 'adm'] });
    addWorker(core, testCard('m1'));
    const body = { model: 'm1', active_decode_blocks_threshold: 0.5 };
    assert.equal((await json('/busy_threshold', body, bearer('k1'))).status, 401);
    assert.equal((await json('/busy_threshold', body)).status, 401);
    assert.equal((await json('/busy_threshold', body, bearer('adm'))).status, 200);
    const detail = await (await app.request('/health', { headers: bearer('adm') })).json() as {
      instances: unknown[];
    };
    assert.equal(detail.instances.length, 1);
    const plain = await (await app.request('/health')).json() as { instances: unknown[] };
    assert.deepEqual(plain.instances, []);
    // An admin key alone (no API keys) locks only the admin side.
    const only = testApp({ argv: ['--admin-api-key', 'adm'] });
    assert.equal((await only.app.request('/v1/models')).status, 200);
    assert.equal((await only.app.request('/busy_threshold')).status, 401);
  });

  test('DELETE /busy_threshold unsets thresholds, over the CLI defaults too', async () => {
    const { core, json, app } = testApp({ argv: ['--active-decode-blocks-threshold', '0.9'] });
    addWorker(core, testCard('m1'));
    await json('/busy_threshold', { model: 'm1', active_prefill_tokens_threshold: 100 });
    const del = (body: unknown) =>
      app.request('/busy_threshold', {
        method: 'DELETE',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(body),
      });
    const one = await del({ model: 'm1', thresholds: ['active_prefill_tokens_threshold'] });
    assert.equal(one.status, 200);
    assert.deepEqual(await one.json(), {
      model: 'm1',
      active_decode_blocks_threshold: 0.9,
      active_prefill_tokens_threshold: null,
      active_prefill_tokens_threshold_frac: null,
    });
    const all = await (await del({ model: 'm1' })).json() as Record<string, unknown>;
    assert.equal(all.active_decode_blocks_threshold, null);
    assert.equal((await del({ model: 'm1', thresholds: ['nope'] })).status, 400);
  });

  test('--cors-origin answers preflights for the listed origins only', async () => {
    const { app } = testApp({ argv: ['--cors-origin', 'https://app.example', '--api-key', 'k'] });
    const preflight = (origin: string) =>
      app.request('/v1/chat/completions', {
        method: 'OPTIONS',
        headers: {
          origin,
          'access-control-request-method': 'POST',
          'access-control-request-headers': 'authorization, content-type',
        },
      });
    const ok = await preflight('https://app.example');
    assert.equal(ok.status, 204);
    assert.equal(ok.headers.get('access-control-allow-origin'), 'https://app.example');
    assert.match(ok.headers.get('access-control-allow-headers') ?? '', /authorization/);
    const other = await preflight('https://evil.example');
    assert.equal(other.headers.get('access-control-allow-origin'), null);
    const get = await app.request('/v1/models', {
      headers: { origin: 'https://app.example', ...bearer('k') },
    });
    assert.equal(get.headers.get('access-control-allow-origin'), 'https://app.example');
    const any = testApp({ env: { DYN_HTTP_CORS_ORIGINS: '*' } });
    const wild = await any.app.request('/v1/models', { headers: { origin: 'https://x.example' } });
    assert.equal(wild.headers.get('access-control-allow-origin'), '*');
  });

  test('--allowed-host refuses other Host values with 400 (DNS rebinding); probes stay open', async () => {
    const { app } = testApp({
      argv: ['--allowed-host', 'api.example', '--allowed-host', 'localhost:8000'],
    });
    assert.equal((await app.request('http://api.example/v1/models')).status, 200);
    assert.equal((await app.request('http://api.example:9999/v1/models')).status, 200);
    assert.equal((await app.request('http://localhost:8000/v1/models')).status, 200);
    assert.equal((await app.request('http://localhost:8001/v1/models')).status, 400);
    const evil = await app.request('http://evil.example/v1/models');
    assert.equal(evil.status, 400);
    assert.match((await errorOf(evil)).message, /Host "evil.example" is not allowed/);
    assert.equal((await app.request('http://10.0.0.7:8000/live')).status, 200);
    assert.equal((await app.request('http://10.0.0.7:8000/health')).status, 200);
  });

  test('matchesAny() finds a key among several, and only an exact one', async () => {
    const digest = async (s: string) =>
      new Uint8Array(await crypto.subtle.digest('SHA-256', new TextEncoder().encode(s)));
    const keys = [await digest('alpha'), await digest('beta')];
    assert.equal(await matchesAny('beta', keys), true);
    assert.equal(await matchesAny('bet', keys), false);
    assert.equal(await matchesAny('betaa', keys), false);
    assert.equal(await matchesAny('', keys), false);
  });
});
