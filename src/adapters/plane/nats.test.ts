import assert from 'node:assert/strict';
import { test } from 'node:test';
import { natsInstanceSubject, natsWebSocketServers } from './nats.ts';

test('natsWebSocketServers() prefers NATS_WS_SERVER, keeps ws:// and maps nats:// to port 4280', () => {
  assert.deepEqual(natsWebSocketServers({}), ['ws://127.0.0.1:4280']);
  assert.deepEqual(natsWebSocketServers({ natsServer: 'nats://127.0.0.1:4222' }), [
    'ws://127.0.0.1:4280',
  ]);
  assert.deepEqual(natsWebSocketServers({ natsServer: 'nats://user:pw@nats.svc:4222' }), [
    'ws://nats.svc:4280',
  ]);
  assert.deepEqual(natsWebSocketServers({ natsServer: 'tls://a:4222, nats://b' }), [
    'wss://a:4280',
    'ws://b:4280',
  ]);
  assert.deepEqual(natsWebSocketServers({ natsServer: 'wss://edge:443' }), ['wss://edge:443']);
  assert.deepEqual(
    natsWebSocketServers({ natsServer: 'nats://a:4222', natsWsServer: 'ws://a:8080' }),
    ['ws://a:8080'],
  );
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
