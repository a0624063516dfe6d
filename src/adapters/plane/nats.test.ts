import assert from 'node:assert/strict';
import { test } from 'node:test';
import { natsInstanceSubject, natsServers } from './nats.ts';
import { isNoResponders, natsTransport } from './nats-connect.ts';

test('natsServers() keeps nats:// URLs and their ports (TCP), prefers NATS_WS_SERVER, defaults to 4222', () => {
  assert.deepEqual(natsServers({}), ['nats://127.0.0.1:4222']);
  assert.deepEqual(natsServers({ natsServer: 'nats://10.0.0.5:4333' }), ['nats://10.0.0.5:4333']);
  assert.deepEqual(natsServers({ natsServer: 'nats://user:pw@nats.svc:4222' }), [
    'nats://user:pw@nats.svc:4222',
  ]);
  assert.deepEqual(natsServers({ natsServer: 'tls://a:4222, b:4223' }), [
    'tls://a:4222',
    'nats://b:4223',
  ]);
  assert.deepEqual(natsServers({ natsServer: 'wss://edge:443' }), ['wss://edge:443']);
  assert.deepEqual(
    natsServers({ natsServer: 'nats://a:4222', natsWsServer: 'ws://a:8080' }),
    ['ws://a:8080'],
  );
});

test('natsTransport() is tcp for nats:// and tls://, ws for ws:// and wss://, and refuses a mix', () => {
  assert.equal(natsTransport(['nats://a:4222', 'tls://b:4222']), 'tcp');
  assert.equal(natsTransport(['ws://a:4280', 'wss://b']), 'ws');
  assert.throws(() => natsTransport(['nats://a:4222', 'ws://b:4280']), /mix TCP/);
  assert.throws(() => natsTransport(['http://a:4222']), /unknown scheme "http"/);
});

test("isNoResponders() knows a 503 status message and both clients' request errors", () => {
  assert.equal(isNoResponders({ headers: { code: 503 } }), true);
  assert.equal(isNoResponders({ code: '503' }), true);
  assert.equal(isNoResponders({ name: 'RequestError', cause: { name: 'NoResponders' } }), true);
  assert.equal(isNoResponders({ headers: { code: 200 } }), false);
  assert.equal(isNoResponders(new Error('timeout')), false);
});

test('natsInstanceSubject() is {ns}_{component}.{endpoint}-{instance_id:x}', () => {
  assert.equal(
    natsInstanceSubject(
      { namespace: 'dynamo', component: 'backend', endpoint: 'generate' },
      '694d98147d54be25',
    ),
    'dynamo_backend.generate-694d98147d54be25',
  );
  assert.equal(
    natsInstanceSubject({ namespace: 'Team.A', component: 'x', endpoint: 'generate' }, '1'),
    'team_a_x.generate-1',
  );
});
