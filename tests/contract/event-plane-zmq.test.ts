import { createMemKvServer, createMemStore } from '../../src/adapters/discovery/mem.ts';
import { createZmqEventPlane, type ZmqEventPlane } from '../../src/adapters/events/zmq.ts';
import type { KvStore } from '../../src/core/discovery/types.ts';
import type { EventPlane } from '../../src/core/events/types.ts';
import { createNodeNetwork } from '../../src/runtime/net.ts';
import { eventPlaneContract } from './event-plane.contract.ts';

/**
 * Each handle is its own "process": its own discovery store on a shared mem server, its own PUB
 * sockets on 127.0.0.1. A new channel waits (bounded) for its first subscriber, so `settle()` only
 * needs the subscriber's discovery snapshot and connections.
 */
eventPlaneContract('zmq', () => {
  const server = createMemKvServer();
  const network = createNodeNetwork();
  const planes: ZmqEventPlane[] = [];
  const stores: KvStore[] = [];
  return Promise.resolve({
    plane(options) {
      const store = createMemStore({ server });
      stores.push(store);
      const plane = createZmqEventPlane({
        store,
        network,
        firstSubscriberWaitMs: 5_000,
        ...options,
      });
      planes.push(plane);
      return plane;
    },
    settle: (plane: EventPlane) => (plane as ZmqEventPlane).ready(10_000),
    async close() {
      await Promise.all(planes.map((plane) => plane.close()));
      await Promise.all(stores.map((store) => store.close()));
    },
  });
});
