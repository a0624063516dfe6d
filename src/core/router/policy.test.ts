import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { ApiError } from '../errors.ts';
import { policyContract, WORKERS } from '../../../tests/contract/routing-policy.contract.ts';
import {
  createDirectPolicy,
  createInhibitor,
  createLeastLoadedPolicy,
  createPolicy,
  createPowerOfTwoPolicy,
  createRandomPolicy,
  createRoundRobinPolicy,
  selectWorker,
} from './policy.ts';
import { createLoadTracker } from './load.ts';

/** A deterministic [0, 1) sequence for the random policy. */
function sequence(values: number[]) {
  let i = 0;
  return () => values[i++ % values.length] as number;
}

policyContract('round-robin', createRoundRobinPolicy);
policyContract('random', () => createRandomPolicy(sequence([0.1, 0.9, 0.5, 0.3, 0.7])));
policyContract('direct', createDirectPolicy, { backendInstanceId: 'c3' });
policyContract('least-loaded', () => createLeastLoadedPolicy(createLoadTracker()));
policyContract(
  'power-of-two-choices',
  () => createPowerOfTwoPolicy(createLoadTracker(), sequence([0.1, 0.9, 0.5, 0.3, 0.7])),
);

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

describe('least-loaded', () => {
  test('picks the worker with the fewest requests in flight', () => {
    const load = createLoadTracker();
    const policy = createLeastLoadedPolicy(load);
    load.start('a1');
    load.start('b2');
    load.start('b2');
    load.start('d4');
    assert.equal(policy.pick(WORKERS, { model: 'm' }).instanceId, 'c3');
  });

  test('compares tokens when every request in flight carries them', () => {
    const load = createLoadTracker();
    const policy = createLeastLoadedPolicy(load);
    // a1: one 10k-token prompt; b2: three short ones. Tokens decide: b2 is less loaded.
    load.start('a1', 10_000);
    for (let i = 0; i < 3; i++) load.start('b2', 100);
    assert.equal(policy.pick(WORKERS.slice(0, 2), { model: 'm' }).instanceId, 'b2');
    // Output tokens count as they stream.
    const lease = load.start('c3', 100);
    lease.tokens(150);
    assert.deepEqual(load.of('c3'), { requests: 1, tokens: 250, untokenized: 0 });
    assert.equal(policy.pick(WORKERS.slice(1, 3), { model: 'm' }).instanceId, 'c3');
  });

  test('falls back to request counts when some request has no token count', () => {
    const load = createLoadTracker();
    const policy = createLeastLoadedPolicy(load);
    load.start('a1', 10_000);
    load.start('b2');
    load.start('b2', 1);
    assert.equal(policy.pick(WORKERS.slice(0, 2), { model: 'm' }).instanceId, 'a1');
  });

  test('a released request no longer counts; ties go round-robin', () => {
    const load = createLoadTracker();
    const policy = createLeastLoadedPolicy(load);
    const lease = load.start('a1', 50);
    const picks = Array.from({ length: 3 }, () => policy.pick(WORKERS, { model: 'm' }).instanceId);
    assert.deepEqual(picks, ['b2', 'c3', 'd4']);
    lease.release();
    lease.release();
    assert.deepEqual(load.of('a1'), { requests: 0, tokens: 0, untokenized: 0 });
    const idle = Array.from({ length: 4 }, () => policy.pick(WORKERS, { model: 'm' }).instanceId);
    assert.deepEqual(new Set(idle), new Set(['a1', 'b2', 'c3', 'd4']));
  });
});

describe('power-of-two-choices', () => {
  test('of two distinct random workers the less loaded wins, the first drawn on a tie', () => {
    const load = createLoadTracker();
    // Draws: 0.0 -> a1 (index 0); 0.5 of the 3 others -> index 1 -> b2 (j >= i shifts up).
    const policy = createPowerOfTwoPolicy(load, sequence([0, 0.5]));
    assert.equal(policy.pick(WORKERS, { model: 'm' }).instanceId, 'a1');
    load.start('a1');
    assert.equal(policy.pick(WORKERS, { model: 'm' }).instanceId, 'c3');
  });

  test('never draws the same worker twice', () => {
    const load = createLoadTracker();
    load.start('b2');
    // Both draws land on index 1: the second is shifted to index 2, so b2 meets c3 and loses.
    const policy = createPowerOfTwoPolicy(load, sequence([0.3, 0.4]));
    assert.equal(policy.pick(WORKERS, { model: 'm' }).instanceId, 'c3');
  });
});

describe('createPolicy()', () => {
  test('builds the policy of every non-KV --router-mode', () => {
    for (
      const mode of [
        'round-robin',
        'random',
        'direct',
        'least-loaded',
        'power-of-two-choices',
      ] as const
    ) {
      assert.equal(createPolicy(mode).mode, mode);
    }
    assert.equal(createPolicy('kv').mode, 'round-robin');
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
