/** `DYN_TCP_RESPONSE_MUX`: the TCP response mux is on by default and `0` turns it off. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Logger } from '../core/logger.ts';
import { createInfra } from './infra.ts';

const silent = {
  debug() {},
  info() {},
  warn() {},
  error() {},
  child() {
    return silent;
  },
} as unknown as Logger;

const ENDPOINT = { namespace: 'test', component: 'backend', endpoint: 'generate' };

async function publishedAddress(env: Record<string, string>): Promise<string> {
  const infra = createInfra(
    { discoveryBackend: 'mem', requestPlane: 'tcp', eventPlane: 'nats' },
    { env, logger: silent },
  );
  const server = infra.planeServer();
  try {
    const address = await server.serve(ENDPOINT, '7', async function* () {});
    return 'tcp' in address ? address.tcp : '';
  } finally {
    await server.close();
  }
}

test('a tcp worker publishes the response mux by default', async () => {
  assert.match(
    await publishedAddress({}),
    /\/7\/generate\?response_transports=tcp_server,tcp_response_mux_v1$/,
  );
});

for (const value of ['0', 'false', 'off']) {
  test(`DYN_TCP_RESPONSE_MUX=${value} publishes the classic call-home only`, async () => {
    assert.match(await publishedAddress({ DYN_TCP_RESPONSE_MUX: value }), /\/7\/generate$/);
  });
}
