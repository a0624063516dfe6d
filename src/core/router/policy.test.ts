import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { ApiError } from '../errors.ts';
import { policyContract, WORKERS } from '../../../tests/contract/routing-policy.contract.ts';
import {
  createDirectPolicy,
  createInhibitor,
  createRandomPolicy,
  createRoundRobinPolicy,
  selectWorker,
} from './policy.ts';

/** A deterministic [0, 1) sequence for the random policy. */
function sequence(values: number[]) {
  let i = 0;
  return () => values[i++ % values.length] as number;
}

policyContract('round-robin', createRoundRobinPolicy);
policyContract('random', () => createRandomPolicy(sequence([0.1, 0.9, 0.5, 0.3, 0.7])));
policyContract('direct', createDirectPolicy, { backendInstanceId: 'c3' });

describe('policies', () => {
  test('round-robin cycles through the instances in order, per model', () => {
    const policy = createRoundRobinPolicy();
    const picks = Array.from({ length: 6 }, () => policy.pick(WORKERS, { model: 'm' }).instanceId);
    assert.deepEqual(picks, ['a1', 'b2', 'c3', 'd4', 'a1', 'b2']);
    assert.equal(policy.pick(WORKERS, { model: 'other' }).instanceId, 'a1');
  });

  test('random maps the random number onto the instance list', () => {
    const policy = createRandomPolicy(sequence([0, 0.26, 0.5, 0.99]));
    const picks = Array.from({ length: 4 }, () => policy.pick(WORKERS, { model: 'm' }).instanceId);
    assert.deepEqual(picks, ['a1', 'b2', 'c3', 'd4']);
  });

  test('direct needs an instance id (400 naming the field) that exists (404)', () => {
    const policy = createDirectPolicy();
    assert.throws(
      () => policy.pick(WORKERS, { model: 'm' }),
      (e: ApiError) => e.status === 400 && e.param === 'nvext.backend_instance_id',
    );
    assert.throws(
      () => policy.pick(WORKERS, { model: 'm', backendInstanceId: 'ff' }),
      (e: ApiError) => e.status === 404 && /"ff"/.test(e.message),
    );
  });
});

describe('selectWorker()', () => {
  test('503 when the model has no live worker', () => {
    const inhibitor = createInhibitor({ now: () => 0 });
    assert.throws(
      () => selectWorker(createRoundRobinPolicy(), inhibitor, [], { model: 'm' }),
      (e: ApiError) => e.status === 503,
    );
  });

  test('a worker that failed is skipped until its inhibition ends', () => {
    let now = 0;
    const inhibitor = createInhibitor({ now: () => now, durationMs: 5000 });
    const policy = createRoundRobinPolicy();
    inhibitor.report('a1');
    const picks = Array.from(
      { length: 3 },
      () => selectWorker(policy, inhibitor, WORKERS, { model: 'm' }).instanceId,
    );
    assert.ok(!picks.includes('a1'), picks.join());
    now = 5001;
    const later = Array.from(
      { length: 4 },
      () => selectWorker(policy, inhibitor, WORKERS, { model: 'm' }).instanceId,
    );
    assert.ok(later.includes('a1'), later.join());
  });

  test('an inhibition duration of 0 never skips a worker that failed', () => {
    const inhibitor = createInhibitor({ now: () => 0, durationMs: 0 });
    inhibitor.report('a1');
    assert.equal(inhibitor.isInhibited('a1'), false);
    assert.deepEqual(inhibitor.filter(WORKERS), WORKERS);
  });

  test('when every worker is inhibited, routing still uses them', () => {
    const inhibitor = createInhibitor({ now: () => 0 });
    for (const w of WORKERS) inhibitor.report(w.instanceId);
    assert.ok(
      WORKERS.includes(selectWorker(createRoundRobinPolicy(), inhibitor, WORKERS, { model: 'm' })),
    );
  });

  test('an explicit instance id is honoured in round-robin mode too', () => {
    const inhibitor = createInhibitor({ now: () => 0 });
    const picked = selectWorker(createRoundRobinPolicy(), inhibitor, WORKERS, {
      model: 'm',
      backendInstanceId: 'd4',
    });
    assert.equal(picked.instanceId, 'd4');
  });
});
