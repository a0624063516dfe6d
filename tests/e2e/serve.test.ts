import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtemp, readFile } from 'node:fs/promises';
import { request as httpsRequest } from 'node:https';
import { tmpdir } from 'node:os';
import { connect } from 'node:net';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { currentRuntime, type RunningServer, startFrontend } from '../helpers/process.ts';

const SLOW = 'tests/fixtures/slow-frontend.ts';

/**
 * Streams a chunked body over a raw socket until the server answers; returns the status line's
 * code, the answer's text and how much was sent. A raw socket, because some runtimes' HTTP
 * clients buffer the whole body before they report a response.
 */
function chunkedUpload(url: string, chunkBytes: number, maxBytes: number) {
  const { hostname, port, pathname } = new URL(url);
  return new Promise<{ status: number; sent: number; body: string }>((resolve, reject) => {
    let sent = 0;
    let answer = '';
    const socket = connect(Number(port), hostname);
    const chunk = Buffer.alloc(chunkBytes, 0x20);
    const frame = Buffer.concat([
      Buffer.from(`${chunk.length.toString(16)}\r\n`),
      chunk,
      Buffer.from('\r\n'),
    ]);
    const done = () => {
      const status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(answer)?.[1] ?? 0);
      socket.destroy();
      resolve({ status, sent, body: answer });
    };
    socket.on('data', (d: Buffer) => {
      answer += d.toString();
      if (/\r\n\r\n/.test(answer) && /\}\s*$|0\r\n\r\n$/.test(answer)) done();
    });
    socket.on('error', (error) => (answer ? done() : reject(error)));
    socket.on('close', () => (answer ? done() : reject(new Error('closed without an answer'))));
    const pump = () => {
      while (!answer && sent < maxBytes) {
        sent += chunk.length;
        if (!socket.write(frame)) return void socket.once('drain', pump);
      }
    };
    socket.once('connect', () => {
      socket.write(
        `POST ${pathname} HTTP/1.1\r\nHost: ${hostname}:${port}\r\n` +
          'Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n',
      );
      pump();
    });
  });
}

/** Reads an SSE response to its end, collecting `data:` payloads. */
async function readSse(res: Response): Promise<string[]> {
  const text = await res.text();
  return text.split('\n').filter((l) => l.startsWith('data:')).map((l) => l.slice(5).trim());
}

describe(`HTTP serving on ${currentRuntime()}`, () => {
  test('a chunked upload over DYN_HTTP_BODY_LIMIT_MB gets 413 before it is all sent', async () => {
    const server = await startFrontend([], { env: { DYN_HTTP_BODY_LIMIT_MB: '1' } });
    try {
      const result = await chunkedUpload(
        `${server.url}/busy_threshold`,
        64 * 1024,
        256 * 1024 * 1024,
      );
      assert.equal(result.status, 413);
      assert.match(result.body, /exceeds the limit of 1 MB/);
      assert.ok(result.sent < 256 * 1024 * 1024, `sent ${result.sent} bytes`);
      // The server is still healthy afterwards.
      assert.equal((await fetch(`${server.url}/live`)).status, 200);
    } finally {
      await server.stop();
    }
  });

  test('415, 400 and JSON 404 over a real socket', async () => {
    const server = await startFrontend();
    try {
      const post = (type: string, body: string) =>
        fetch(`${server.url}/busy_threshold`, {
          method: 'POST',
          headers: { 'content-type': type },
          body,
        });
      const unsupported = await post('text/plain', '{}');
      assert.equal(unsupported.status, 415);
      const invalid = await post('application/json', '{"model":');
      assert.equal(invalid.status, 400);
      const missing = await fetch(`${server.url}/v2/nothing`);
      assert.equal(missing.status, 404);
      // Errors and unknown paths carry a generated request id too, once.
      for (const res of [unsupported, invalid, missing]) {
        assert.match(res.headers.get('x-request-id') ?? '', /^[0-9a-f-]{36}$/);
      }
      assert.equal(
        (await missing.json() as { error: { code: string } }).error.code,
        'route_not_found',
      );
      const echoed = await fetch(`${server.url}/live`, { headers: { 'x-request-id': 'trace-42' } });
      assert.equal(echoed.headers.get('x-request-id'), 'trace-42');
      await echoed.body?.cancel();
    } finally {
      await server.stop();
    }
  });

  test('HTTPS with --tls-cert-path and --tls-key-path', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'sb-tls-'));
    const [cert, key] = [join(dir, 'cert.pem'), join(dir, 'key.pem')];
    execFileSync('openssl', [
      'req',
      '-x509',
      '-newkey',
      'rsa:2048',
      '-nodes',
      '-keyout',
      key,
      '-out',
      cert,
      '-days',
      '1',
      '-subj',
      '/CN=127.0.0.1',
      '-addext',
      'subjectAltName=IP:127.0.0.1',
    ], { stdio: 'ignore' });
    const server = await startFrontend(['--tls-cert-path', cert, '--tls-key-path', key], {
      tls: true,
    });
    try {
      const ca = await readFile(cert, 'utf8');
      const body = await new Promise<string>((resolve, reject) => {
        httpsRequest(`${server.url}/health`, { ca }, (res) => {
          let text = '';
          res.on('data', (d: Buffer) => (text += d.toString()));
          res.on('end', () => resolve(text));
        }).on('error', reject).end();
      });
      assert.equal((JSON.parse(body) as { status: string }).status, 'healthy');
      const plain = await fetch(`http://127.0.0.1:${server.port}/health`).then(
        () => 'answered',
        () => 'refused',
      );
      assert.equal(plain, 'refused', 'plain HTTP is not served on the TLS port');
    } finally {
      await server.stop();
    }
  });
});

describe(`graceful shutdown on ${currentRuntime()}`, () => {
  const stream = (server: RunningServer, events: number, intervalMs: number) =>
    fetch(`${server.url}/test/stream?events=${events}&interval_ms=${intervalMs}`);

  test('SIGTERM lets an in-flight SSE stream finish, refuses new connections, exits 0', async () => {
    const server = await startFrontend([], { entry: SLOW });
    const res = await stream(server, 20, 50);
    const reading = readSse(res);
    server.kill('SIGTERM');
    await server.waitForLog(/^shutdown started/);
    const late = await fetch(`${server.url}/live`).then((r) => r.status, () => 'refused');
    assert.ok(late === 'refused' || late === 503, `a new request got ${late}`);
    const events = await reading;
    assert.equal(events.length, 21);
    assert.equal(events.at(-1), '[DONE]');
    assert.equal(await server.exited, 0);
    assert.match(server.stderr(), /"msg":"shutdown complete"/);
  });

  test('a stream longer than the drain timeout is cut at the timeout, still exit 0', async () => {
    const server = await startFrontend([], {
      entry: SLOW,
      env: { DYN_HTTP_GRACEFUL_SHUTDOWN_TIMEOUT_SECS: '0.5' },
    });
    const res = await stream(server, 1000, 50);
    const reading = readSse(res).catch(() => ['cut']);
    server.kill('SIGTERM');
    assert.equal(await server.exited, 0);
    const events = await reading;
    assert.notEqual(events.at(-1), '[DONE]');
    assert.match(server.stderr(), /drain timeout reached/);
  });
});
