/**
 * NATS as operators run it: a stock nats-server (TCP only, no websocket block) with user/password,
 * token or TLS, reached through the same variables Dynamo and the NATS tools read.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { createNatsEventPlane } from '../../src/adapters/events/nats.ts';
import { natsFromEnv } from '../../src/runtime/nats-env.ts';
import { startPrivateNats } from '../helpers/nats.ts';

/** Publishes one event through `env`'s settings and resolves with what a subscriber got. */
async function roundTrip(env: Record<string, string>): Promise<unknown> {
  const { servers, auth } = natsFromEnv(env);
  const plane = createNatsEventPlane({ servers, auth, onError: () => {} });
  try {
    const got = new Promise<unknown>((resolve) => {
      plane.subscribe('test.auth.ping', (event) => resolve(event.payload));
    });
    await plane.flush();
    await plane.publish('test.auth.ping', { hello: 'nats' });
    return await got;
  } finally {
    await plane.close();
  }
}

/** Resolves false when the connection is refused (bad credentials), true when it works. */
async function connects(env: Record<string, string>): Promise<boolean> {
  const { servers, auth } = natsFromEnv(env);
  const plane = createNatsEventPlane({ servers, auth, onError: () => {} });
  try {
    await plane.flush();
    return true;
  } catch {
    return false;
  } finally {
    await plane.close().catch(() => {});
  }
}

describe('NATS over TCP on a stock nats-server (no websocket listener)', () => {
  test('user and password from NATS_AUTH_USERNAME / NATS_AUTH_PASSWORD; a wrong one is refused', async () => {
    const nats = await startPrivateNats({
      noWebSocket: true,
      config: 'authorization { user: "dyn", password: "s3cret" }',
    });
    try {
      const env = { NATS_SERVER: nats.url, NATS_AUTH_USERNAME: 'dyn' };
      assert.deepEqual(await roundTrip({ ...env, NATS_AUTH_PASSWORD: 's3cret' }), {
        hello: 'nats',
      });
      assert.equal(await connects({ ...env, NATS_AUTH_PASSWORD: 'wrong' }), false);
      // The NATS tools' names work too.
      assert.deepEqual(
        await roundTrip({ NATS_URL: nats.url, NATS_USER: 'dyn', NATS_PASSWORD: 's3cret' }),
        { hello: 'nats' },
      );
    } finally {
      await nats.stop();
    }
  });

  test('a token from NATS_AUTH_TOKEN', async () => {
    const nats = await startPrivateNats({
      noWebSocket: true,
      config: 'authorization { token: "t0ken" }',
    });
    try {
      assert.deepEqual(await roundTrip({ NATS_SERVER: nats.url, NATS_AUTH_TOKEN: 't0ken' }), {
        hello: 'nats',
      });
      assert.equal(await connects({ NATS_SERVER: nats.url, NATS_AUTH_TOKEN: 'nope' }), false);
    } finally {
      await nats.stop();
    }
  });

  const dir = mkdtemp(join(tmpdir(), 'switchboard-nats-tls-'));
  after(async () => await rm(await dir, { recursive: true, force: true }));

  test('tls:// with a private CA (NATS_CA) and a client certificate (NATS_CERT, NATS_KEY)', async () => {
    const d = await dir;
    const file = (name: string) => join(d, name);
    const openssl = (...args: string[]) => execFileSync('openssl', args, { stdio: 'ignore' });
    openssl(
      'req',
      '-x509',
      '-newkey',
      'rsa:2048',
      '-nodes',
      '-days',
      '1',
      '-subj',
      '/CN=test-ca',
      '-keyout',
      file('ca.key'),
      '-out',
      file('ca.pem'),
    );
    await writeFile(file('san.ext'), 'subjectAltName=IP:127.0.0.1,DNS:localhost\n');
    for (const who of ['server', 'client']) {
      openssl(
        'req',
        '-newkey',
        'rsa:2048',
        '-nodes',
        '-subj',
        `/CN=${who}`,
        '-keyout',
        file(`${who}.key`),
        '-out',
        file(`${who}.csr`),
      );
      openssl(
        'x509',
        '-req',
        '-in',
        file(`${who}.csr`),
        '-CA',
        file('ca.pem'),
        '-CAkey',
        file('ca.key'),
        '-CAcreateserial',
        '-days',
        '1',
        '-extfile',
        file('san.ext'),
        '-out',
        file(`${who}.pem`),
      );
    }
    const nats = await startPrivateNats({
      noWebSocket: true,
      config: `tls { cert_file: "${file('server.pem')}", key_file: "${file('server.key')}", ` +
        `ca_file: "${file('ca.pem')}", verify: true }`,
    });
    try {
      const url = nats.url.replace('nats://', 'tls://');
      const env = {
        NATS_SERVER: url,
        NATS_CA: file('ca.pem'),
        NATS_CERT: file('client.pem'),
        NATS_KEY: file('client.key'),
      };
      assert.deepEqual(await roundTrip(env), { hello: 'nats' });
      // The server verifies client certificates (verify: true): the round trip proves the
      // client presented NATS_CERT, signed by the CA that NATS_CA let the client trust.
    } finally {
      await nats.stop();
    }
  });

  test('natsFromEnv() names the variable that is wrong', () => {
    assert.throws(() => natsFromEnv({ NATS_CERT: '/x.pem' }), /NATS_CERT and NATS_KEY go together/);
    assert.throws(
      () => natsFromEnv({ NATS_AUTH_CREDENTIALS_FILE: '/nonexistent/user.creds' }),
      /NATS_AUTH_CREDENTIALS_FILE: cannot read "\/nonexistent\/user.creds"/,
    );
    assert.throws(
      () => natsFromEnv({ NATS_SERVER: 'nats://a:4222,ws://b:4280' }),
      /mix TCP/,
    );
  });
});
