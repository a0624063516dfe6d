import { createNatsPlaneClient, createNatsPlaneServer } from '../../src/adapters/plane/nats.ts';
import { requestPlaneContract } from './request-plane.contract.ts';

/** The nats-server of scripts/services.sh: TCP (what a stock server offers) and its websocket. */
const SERVERS: [string, string][] = [
  ['nats', 'nats://127.0.0.1:4222'],
  ['nats-ws', 'ws://127.0.0.1:4280'],
];
for (const [name, servers] of SERVERS) {
  requestPlaneContract(name, ({ maxInFlight }) =>
    Promise.resolve({
      client: createNatsPlaneClient({ servers, livenessIntervalMs: 200 }),
      server: createNatsPlaneServer({ servers, maxInFlight, livenessIntervalMs: 500 }),
      deadAddress: () =>
        Promise.resolve({ nats_tcp: `test_nobody.generate-${crypto.randomUUID().slice(0, 8)}` }),
      unknownEndpoint: (address) => ({
        nats_tcp: ('nats_tcp' in address ? address.nats_tcp : '') + '-missing',
      }),
    }));
}
