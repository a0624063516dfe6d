import assert from 'node:assert/strict';
import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { OPTIONS } from '../../src/core/config.ts';
import { currentRuntime, freePort, runEntry, startFrontend } from '../helpers/process.ts';

describe(`CLI on ${currentRuntime()}`, () => {
  test('--help lists every flag with its env var and default, and the env-only knobs', async () => {
    const { code, stdout } = await runEntry('src/main.ts', ['--help']);
    assert.equal(code, 0);
    for (const o of OPTIONS) {
      if (o.flag) {
        const line = stdout.split('\n').find((l) =>
          l.includes(`--${o.flag}`) && l.includes(`[env: ${o.env[0]}]`)
        );
        assert.ok(line, `--help shows --${o.flag} with [env: ${o.env[0]}]`);
        assert.match(line, /\(default: /);
      } else {
        assert.ok(stdout.includes(o.env[0] ?? '?'), `--help shows ${o.env[0]}`);
      }
    }
  });

  test('a bad flag exits 2 with every problem and how to fix it, no stack trace', async () => {
    const { code, stderr } = await runEntry('src/main.ts', [
      '--router-mode',
      'foo',
      '--http-prot',
      '9000',
      '--tls-cert-path',
      '/tmp/c.pem',
    ]);
    assert.equal(code, 2);
    assert.match(stderr, /Unknown flag "--http-prot"; did you mean --http-port\?/);
    assert.match(
      stderr,
      /--router-mode \(DYN_ROUTER_MODE\): must be one of round-robin, random, kv, direct/,
    );
    assert.match(stderr, /--tls-key-path \(DYN_TLS_KEY_PATH\): required/);
    assert.doesNotMatch(stderr, /\n\s+at /);
  });

  test('mocker: an unknown parser name exits 2; a bad --script file is one line, exit 1', async () => {
    const parser = await runEntry('src/main.ts', [
      'mocker',
      '--model-path',
      'tests/fixtures/model',
      '--dyn-reasoning-parser',
      'granite',
    ]);
    assert.equal(parser.code, 2);
    assert.match(parser.stderr, /--dyn-reasoning-parser \(DYN_REASONING_PARSER\): must be one of/);
    const dir = await mkdtemp(join(tmpdir(), 'switchboard-cli-'));
    const script = join(dir, 'script.json');
    await writeFile(script, '{"rules": [{"match": "(", "output": "x"}]}');
    const bad = await runEntry('src/main.ts', [
      'mocker',
      '--model-path',
      'tests/fixtures/model',
      '--discovery-backend',
      'mem',
      '--script',
      script,
    ]);
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /script\.json: rules\.0\.match is not a regular expression/);
    assert.doesNotMatch(bad.stderr, /\n\s+at /);
  });

  test('an invalid env var is reported under its name', async () => {
    const { code, stderr } = await runEntry('src/main.ts', [], { env: { DYN_HTTP_PORT: '99999' } });
    assert.equal(code, 2);
    assert.match(
      stderr,
      /DYN_HTTP_PORT\): must be from 1 to 65535 \(got "99999" from DYN_HTTP_PORT\)/,
    );
  });

  test('--dump-config-to writes the resolved configuration and keeps serving', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'sb-dump-'));
    const path = join(dir, 'nested', 'config.json');
    const server = await startFrontend(['--dump-config-to', path, '--router-mode', 'random'], {
      env: { DYN_MIGRATION_LIMIT: '3' },
    });
    try {
      const text = await readFile(path, 'utf8');
      assert.equal(text.trim().split('\n').length, 1, 'one line of JSON');
      const dump = JSON.parse(text) as {
        config: Record<string, unknown>;
        environment: Record<string, string>;
        system_info: Record<string, string>;
      };
      assert.equal(dump.config.routerMode, 'random');
      assert.equal(dump.config.migrationLimit, 3);
      assert.equal(dump.config.httpPort, server.port);
      assert.equal(dump.environment.DYN_MIGRATION_LIMIT, '3');
      assert.equal(dump.system_info.runtime, currentRuntime());
      assert.equal((await fetch(`${server.url}/live`)).status, 200);
    } finally {
      await server.stop();
    }
  });

  test('a port in use is reported with the flag to change it', async () => {
    const port = await freePort();
    const blocker = createServer();
    await new Promise<void>((resolve) => blocker.listen(port, '127.0.0.1', resolve));
    try {
      const { code, stderr } = await runEntry('src/main.ts', [
        '--http-host',
        '127.0.0.1',
        '--http-port',
        String(port),
      ]);
      assert.equal(code, 1);
      assert.match(stderr, new RegExp(`port ${port} already in use\\. Use --http-port`));
    } finally {
      blocker.close();
    }
  });

  test('--router-durable-kv-events starts with a deprecation warning', async () => {
    const server = await startFrontend(['--router-durable-kv-events']);
    try {
      assert.match(
        server.stderr(),
        /"level":"warn","msg":"--router-durable-kv-events is deprecated/,
      );
    } finally {
      await server.stop();
    }
  });
});
