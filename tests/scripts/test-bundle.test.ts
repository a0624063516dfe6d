/**
 * scripts/test-bundle.ts: the bundle the test runner starts Node children from behaves like
 * `node --import tsx src/main.ts`, including what it finds relative to its modules'
 * `import.meta.url` (the KServe .proto file, the preprocessing worker thread's entry) and through
 * `import.meta.resolve` (the Swagger UI assets). The bundle always runs on Node, whatever runs
 * this file.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { join } from 'node:path';
import process from 'node:process';
import { after, before, describe, test } from 'node:test';
import { buildTestBundles } from '../../scripts/test-bundle.ts';
import { freePort, ROOT } from '../helpers/process.ts';
import { MODEL } from '../helpers/stack.ts';
import { waitFor } from '../helpers/wait.ts';

describe('the test bundle of src/main.ts', () => {
  let dir = '';
  let bundle = '';
  before(async () => {
    // Inside the repository, as the runner's: the bundle imports npm packages from node_modules.
    await mkdir(join(ROOT, '.tmp'), { recursive: true });
    dir = await mkdtemp(join(ROOT, '.tmp', 'bundle-test-'));
    const built = await buildTestBundles(ROOT, dir);
    assert.ok('bundles' in built, 'error' in built ? built.error : '');
    bundle = built.bundles['src/main.ts']!;
    assert.ok(bundle, JSON.stringify(built.bundles));
  });
  after(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  test('serves chat through a preprocessing thread, /docs assets, and KServe gRPC', async () => {
    const port = await freePort();
    const child = spawn('node', [
      '--experimental-websocket',
      bundle,
      'demo',
      '--http-host',
      '127.0.0.1',
      '--http-port',
      String(port),
      '--workers',
      '1',
      '--dyn-preprocess-workers',
      '1',
      '--kserve-grpc-server',
      '--kserve-grpc-port',
      '0',
      '--grpc-metrics-port',
      '0',
    ], { cwd: ROOT, env: { ...process.env, NO_COLOR: '1' }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => void (stderr += d.toString()));
    child.stdout.resume();
    const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
    const url = `http://127.0.0.1:${port}`;
    try {
      await waitFor(async () => {
        if (child.exitCode !== null) throw new Error(`the bundle exited:\n${stderr}`);
        const models = await fetch(`${url}/v1/models`).then((r) => r.text()).catch(() => '');
        return models.includes(MODEL);
      }, {
        timeoutMs: 60_000,
        intervalMs: 100,
        what: `the bundled demo ready; stderr:\n${stderr}`,
      });

      const chat = await fetch(`${url}/v1/chat/completions`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({
          model: MODEL,
          messages: [{ role: 'user', content: 'Hello!' }],
          max_tokens: 3,
        }),
      });
      const body = await chat.text();
      assert.equal(chat.status, 200, body);
      assert.equal(
        (JSON.parse(body) as { usage: { completion_tokens: number } }).usage.completion_tokens,
        3,
      );

      const docs = await fetch(`${url}/docs`);
      const page = await docs.text();
      assert.equal(docs.status, 200, page);
      const asset = /(?:src|href)="([^"]*swagger-ui[^"]*\.(?:css|js))"/.exec(page)?.[1];
      assert.ok(asset, page.slice(0, 500));
      assert.equal((await fetch(new URL(asset, `${url}/docs`))).status, 200, asset);

      // The .proto file, found next to src/adapters/kserve-server.ts, loaded; the preprocessing thread
      // started from its entry next to src/adapters/threads/preprocess-pool.ts.
      assert.match(stderr, /"msg":"KServe gRPC listening"/);
      assert.match(stderr, /"msg":"loaded tokenizer and chat template".*"worker_threads":1/);
    } finally {
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
      await exited;
      clearTimeout(timer);
    }
  });
});
