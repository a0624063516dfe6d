import { createNatsEventPlane, type NatsEventPlane } from '../../src/adapters/events/nats.ts';
import type { EventPlane } from '../../src/core/events/types.ts';
import { eventPlaneContract } from './event-plane.contract.ts';

/** The nats-server of scripts/services.sh: TCP (what a stock server offers) and its websocket. */
const SERVERS: [string, string][] = [
  ['nats', 'nats://127.0.0.1:4222'],
  ['nats-ws', 'ws://127.0.0.1:4280'],
];
for (const [name, servers] of SERVERS) {
  eventPlaneContract(name, () => {
    const planes: NatsEventPlane[] = [];
    return Promise.resolve({
      plane(options) {
        const plane = createNatsEventPlane({ servers, ...options });
        planes.push(plane);
        return plane;
      },
      settle: (plane: EventPlane) => (plane as NatsEventPlane).flush(),
      async close() {
        await Promise.all(planes.map((plane) => plane.close()));
      },
    });
  });
}
