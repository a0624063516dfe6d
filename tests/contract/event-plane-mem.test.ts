import { createMemEventBus } from '../../src/adapters/events/mem.ts';
import type { EventPlane } from '../../src/core/events/types.ts';
import { eventPlaneContract } from './event-plane.contract.ts';

eventPlaneContract('mem', () => {
  const bus = createMemEventBus();
  const planes: EventPlane[] = [];
  return Promise.resolve({
    plane(options) {
      const plane = bus.plane(options);
      planes.push(plane);
      return plane;
    },
    settle: () => Promise.resolve(),
    async close() {
      await Promise.all(planes.map((plane) => plane.close()));
    },
  });
});
