/** The contract every routing policy passes; `src/core/router/policy.test.ts` runs it for each mode. */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { WorkerInstance } from '../../src/core/discovery/models.ts';
import type { RoutingPolicy } from '../../src/core/router/policy.ts';

const worker = (id: string): WorkerInstance => ({
  instanceId: id,
  endpoint: { namespace: 'dynamo', component: 'backend', endpoint: 'generate' },
  transport: { tcp: `127.0.0.1:1/${id}/generate` },
});

export const WORKERS = ['a1', 'b2', 'c3', 'd4'].map(worker);

export function policyContract(name: string, create: () => RoutingPolicy, request = {}) {
  describe(`routing policy contract: ${name}`, () => {
    test('always picks one of the given instances', () => {
      const policy = create();
      for (let i = 0; i < 100; i++) {
        const picked = policy.pick(WORKERS, { model: 'm', ...request });
        assert.ok(WORKERS.includes(picked), `picked ${picked.instanceId}`);
      }
    });

    test('works with a single instance', () => {
      const policy = create();
      const only = WORKERS.slice(0, 1);
      const picked = policy.pick(only, { model: 'm', backendInstanceId: 'a1' });
      assert.equal(picked.instanceId, 'a1');
    });

    test('is independent between models and policy objects', () => {
      const [one, two] = [create(), create()];
      const a = Array.from(
        { length: 8 },
        () => one.pick(WORKERS, { model: 'm', ...request }).instanceId,
      );
      const b = Array.from(
        { length: 8 },
        () => two.pick(WORKERS, { model: 'm', ...request }).instanceId,
      );
      if (one.mode !== 'random') assert.deepEqual(a, b);
    });
  });
}
