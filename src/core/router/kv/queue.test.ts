import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { CancelledError } from '../../errors.ts';
import { createKvScheduler, type QueuePolicy, type ScheduleResult } from './queue.ts';
import { createWorkerSelector, NoEndpointsError } from './selector.ts';
import { createSequenceTracker } from './sequences.ts';
import { workerKey } from './worker-key.ts';

function fakeClock(start = 0) {
  let t = start;
  return {
    now: () => t,
    advance(ms: number) {
      t += ms;
    },
  };
}

const NO_OVERLAP = { scores: new Map<string, number>(), treeSizes: new Map<string, number>() };

function makeScheduler(
  numWorkers: number,
  options: {
    blockSize?: number;
    maxNumBatchedTokens?: number;
    queueThreshold?: number;
    policy?: QueuePolicy;
    activeOverlap?: boolean;
  } = {},
) {
  const clock = fakeClock();
  const blockSize = options.blockSize ?? 16;
  const tracker = createSequenceTracker({ blockSize, now: clock.now, routerId: 1n });
  const selector = createWorkerSelector({ blockSize, random: () => 0 });
  const gauge: number[] = [];
  const scheduler = createKvScheduler({
    tracker,
    selector,
    queueThreshold: options.queueThreshold,
    policy: options.policy,
    activeOverlap: options.activeOverlap,
    now: clock.now,
    onPendingChange: (n) => gauge.push(n),
  });
  const workers = Array.from({ length: numWorkers }, (_, i) => ({
    worker: workerKey(BigInt(i), 0),
    maxNumBatchedTokens: options.maxNumBatchedTokens,
  }));
  const request = (requestId: string, isl: number, extra: { priorityJump?: number } = {}) => ({
    requestId,
    isl,
    overlaps: NO_OVERLAP,
    workers,
    ...extra,
  });
  return { clock, tracker, scheduler, workers, request, gauge };
}

/** Lets settled promises run their callbacks. */
const flush = () => new Promise<void>((resolve) => setTimeout(resolve, 0));

describe('KV scheduler queue (router reference §8.4)', () => {
  test('test_concurrent_flood', async () => {
    const isl = 512;
    const { scheduler, tracker, request, workers } = makeScheduler(4, { maxNumBatchedTokens: isl });
    const ids = new Set(workers.map((w) => w.worker));
    await Promise.all(Array.from({ length: 25 }, async (_, i) => {
      const id = `req-${i}`;
      const result = await scheduler.schedule(request(id, isl));
      assert.ok(ids.has(result.worker));
      await flush();
      scheduler.markPrefillCompleted(id);
      scheduler.free(id);
      scheduler.update();
    }));
    for (const [worker, load] of tracker.activeLoads()) {
      assert.equal(load.activePrefillTokens, 0, `worker ${worker} still has active tokens`);
      assert.equal(load.activeDecodeBlocks, 0);
    }
  });

  test('test_queueing_under_pressure', async () => {
    const isl = 512;
    const { scheduler, tracker, request } = makeScheduler(2, {
      maxNumBatchedTokens: isl,
      queueThreshold: 0,
    });
    const ids = Array.from({ length: 10 }, (_, i) => `pressure-${i}`);
    const results = new Map<string, ScheduleResult>();
    for (const id of ids) {
      void scheduler.schedule(request(id, isl)).then((r) => results.set(id, r));
    }
    await flush();
    assert.equal(results.size, 2, 'one request per idle worker, the rest wait');
    assert.equal(scheduler.pendingCount(), 8);
    for (let round = 0; round < ids.length; round++) {
      scheduler.update();
      for (const id of ids) {
        tracker.markPrefillCompleted(id);
        tracker.free(id);
      }
    }
    scheduler.update();
    await flush();
    assert.equal(results.size, ids.length, 'not all requests were scheduled');
    assert.equal(scheduler.pendingCount(), 0);
  });

  test('test_pending_count', async () => {
    const isl = 512;
    const { scheduler, request, gauge } = makeScheduler(1, {
      maxNumBatchedTokens: isl,
      queueThreshold: 0,
    });
    assert.equal(scheduler.pendingCount(), 0);
    await scheduler.schedule(request('req-1', isl));
    assert.equal(scheduler.pendingCount(), 0, 'an idle worker takes the request at once');

    const second = scheduler.schedule(request('req-2', isl));
    assert.equal(scheduler.pendingCount(), 1);
    const third = scheduler.schedule(request('req-3', isl));
    assert.equal(scheduler.pendingCount(), 2);

    scheduler.markPrefillCompleted('req-1');
    scheduler.free('req-1');
    assert.ok(scheduler.pendingCount() < 2, 'a prefill completion drains the queue');
    await second;

    scheduler.markPrefillCompleted('req-2');
    scheduler.free('req-2');
    await third;
    scheduler.markPrefillCompleted('req-3');
    scheduler.free('req-3');
    assert.equal(scheduler.pendingCount(), 0, 'all requests drained');
    assert.deepEqual(gauge, [1, 2, 1, 0]);
  });
});

describe('KV scheduler', () => {
  test('no eligible worker rejects with NoEndpointsError', async () => {
    const { scheduler, request } = makeScheduler(0, { queueThreshold: 0 });
    await assert.rejects(scheduler.schedule(request('lonely', 512)), NoEndpointsError);
    assert.equal(scheduler.pendingCount(), 0, 'no workers never counts as all busy');
  });

  test('books the chosen worker and routes the prompt to the best cache', async () => {
    const { scheduler, tracker, workers } = makeScheduler(3, { blockSize: 4 });
    const [w0, w1] = workers.map((w) => w.worker) as [string, string];
    const result = await scheduler.schedule({
      requestId: 'r',
      isl: 16,
      tokenSeq: BigUint64Array.of(1n, 2n, 3n, 4n),
      overlaps: { scores: new Map([[w0, 1], [w1, 3]]), treeSizes: new Map() },
      workers,
    });
    assert.deepEqual(result, {
      worker: w1,
      overlapBlocks: 3,
      requiredBlocks: 4,
      cost: 1 + 4,
      queuedMs: 0,
    });
    assert.equal(tracker.workerOf('r'), w1);
    assert.deepEqual(scheduler.activeLoad(w1), { activeDecodeBlocks: 4, activePrefillTokens: 4 });
    scheduler.addOutputBlock('r');
    assert.equal(scheduler.activeLoad(w1)?.activeDecodeBlocks, 5);
    scheduler.free('r');
    assert.deepEqual(scheduler.activeLoad(w1), { activeDecodeBlocks: 0, activePrefillTokens: 0 });
  });

  test('activeOverlap credits the prefix a request in flight holds, before any event', async () => {
    for (const activeOverlap of [false, true]) {
      const { scheduler, workers } = makeScheduler(2, { blockSize: 4, activeOverlap });
      const [w0, w1] = workers.map((w) => w.worker) as [string, string];
      const ask = (requestId: string, ...hashes: bigint[]) =>
        scheduler.schedule({
          requestId,
          isl: hashes.length * 4,
          tokenSeq: BigUint64Array.of(...hashes),
          overlaps: NO_OVERLAP,
          workers,
        });
      // A long prompt lands on w0 (ties go to the first); a short unrelated one then on w1.
      assert.equal((await ask('doc', 1n, 2n, 3n, 4n, 5n, 6n)).worker, w0);
      assert.equal((await ask('other', 9n)).worker, w1);
      // The next turn shares the document's 6 blocks and adds 2. No event has said w0 caches
      // them. Without the option w0 is the busier worker; with it, w0's in-flight copy wins.
      const next = await ask('next', 1n, 2n, 3n, 4n, 5n, 6n, 7n, 8n);
      assert.equal(next.worker, activeOverlap ? w0 : w1, `activeOverlap ${activeOverlap}`);
      assert.equal(next.overlapBlocks, activeOverlap ? 6 : 0);
    }
  });

  test('an indexed overlap larger than the in-flight prefix wins', async () => {
    const { scheduler, workers } = makeScheduler(2, { blockSize: 4, activeOverlap: true });
    const [w0, w1] = workers.map((w) => w.worker) as [string, string];
    await scheduler.schedule({
      requestId: 'a',
      isl: 4,
      tokenSeq: BigUint64Array.of(1n),
      overlaps: NO_OVERLAP,
      workers: [{ worker: w0 }],
    });
    const result = await scheduler.schedule({
      requestId: 'b',
      isl: 12,
      tokenSeq: BigUint64Array.of(1n, 2n, 3n),
      overlaps: { scores: new Map([[w0, 3]]), treeSizes: new Map() },
      workers,
    });
    assert.equal(result.worker, w0);
    assert.equal(result.overlapBlocks, 3);
    assert.notEqual(result.worker, w1);
  });

  test('booked load steers the next request to another worker', async () => {
    const { scheduler, request } = makeScheduler(2);
    const first = await scheduler.schedule(request('a', 256));
    const second = await scheduler.schedule(request('b', 256));
    assert.notEqual(first.worker, second.worker);
  });

  test('a query-only request chooses a worker and books nothing', async () => {
    const { scheduler, tracker, request } = makeScheduler(2);
    await scheduler.schedule({ ...request('q', 64), updateStates: false });
    assert.equal(tracker.workerOf('q'), undefined);
  });

  test('fcfs releases by priority jump, then by arrival', async () => {
    const { scheduler, clock, request } = makeScheduler(1, {
      maxNumBatchedTokens: 100,
      queueThreshold: 0,
    });
    await scheduler.schedule(request('busy', 64));
    const order: string[] = [];
    const wait = (id: string, jump = 0) =>
      scheduler.schedule(request(id, 64, { priorityJump: jump })).then(() => order.push(id));
    const all = [wait('a')];
    clock.advance(1000);
    all.push(wait('b'));
    clock.advance(1000);
    all.push(wait('urgent', 5));
    all.push(wait('c'));
    let previous = 'busy';
    for (let i = 0; i < 4; i++) {
      scheduler.free(previous);
      await flush();
      previous = order[order.length - 1] as string;
    }
    await Promise.all(all);
    assert.deepEqual(order, ['urgent', 'a', 'b', 'c']);
  });

  test('wspt releases the shortest prompt first', async () => {
    const { scheduler, request } = makeScheduler(1, {
      maxNumBatchedTokens: 100,
      queueThreshold: 0,
      policy: 'wspt',
    });
    await scheduler.schedule(request('busy', 64));
    const order: string[] = [];
    const all = [['long', 4096], ['short', 16], ['mid', 512]].map(([id, isl]) =>
      scheduler.schedule(request(id as string, isl as number)).then(() => order.push(id as string))
    );
    let previous = 'busy';
    for (let i = 0; i < 3; i++) {
      scheduler.free(previous);
      await flush();
      previous = order[order.length - 1] as string;
    }
    await Promise.all(all);
    assert.deepEqual(order, ['short', 'mid', 'long']);
  });

  test('a worker is busy only above threshold x max_num_batched_tokens', async () => {
    const { scheduler, request } = makeScheduler(1, {
      maxNumBatchedTokens: 1000,
      queueThreshold: 0.5,
    });
    await scheduler.schedule(request('a', 500));
    await scheduler.schedule(request('b', 1));
    assert.equal(scheduler.pendingCount(), 0, '500 tokens is not above 0.5 x 1000');
    void scheduler.schedule(request('c', 1));
    assert.equal(scheduler.pendingCount(), 1, '501 tokens is');
  });

  test('workers without max_num_batched_tokens never queue', async () => {
    const { scheduler, request } = makeScheduler(1, { queueThreshold: 0.5 });
    for (let i = 0; i < 5; i++) await scheduler.schedule(request(`r${i}`, 100_000));
    assert.equal(scheduler.pendingCount(), 0);
  });

  test('bypassQueue schedules even when every worker is busy', async () => {
    const { scheduler, request } = makeScheduler(1, { maxNumBatchedTokens: 10, queueThreshold: 0 });
    await scheduler.schedule(request('a', 64));
    const pinned = await scheduler.schedule({ ...request('b', 64), bypassQueue: true });
    assert.equal(pinned.queuedMs, 0);
    assert.equal(scheduler.pendingCount(), 0);
  });

  test('aborting a queued request rejects it with CancelledError and leaves the queue', async () => {
    const { scheduler, request, tracker, clock } = makeScheduler(1, {
      maxNumBatchedTokens: 10,
      queueThreshold: 0,
    });
    await scheduler.schedule(request('a', 64));
    const controller = new AbortController();
    const cancelled = scheduler.schedule({ ...request('b', 64), signal: controller.signal });
    const next = scheduler.schedule(request('c', 64));
    assert.equal(scheduler.pendingCount(), 2);
    controller.abort();
    await assert.rejects(cancelled, CancelledError);
    assert.equal(scheduler.pendingCount(), 1);
    clock.advance(250);
    scheduler.free('a');
    const result = await next;
    assert.equal(result.queuedMs, 250);
    assert.equal(tracker.workerOf('b'), undefined);
    assert.equal(scheduler.pendingCount(), 0);
  });

  test("a peer's free releases queued requests too", async () => {
    const { scheduler, request, workers } = makeScheduler(1, {
      maxNumBatchedTokens: 10,
      queueThreshold: 0,
    });
    const worker = workers[0]?.worker as string;
    scheduler.applyRemote({
      request_id: 'remote',
      worker: { worker_id: 0n, dp_rank: 0 },
      data: {
        AddRequest: { token_sequence: null, isl: 64, overlap: 0, track_prefill_tokens: true },
      },
      router_id: 2n,
    });
    assert.equal(scheduler.activeLoad(worker)?.activePrefillTokens, 64);
    const waiting = scheduler.schedule(request('local', 64));
    assert.equal(scheduler.pendingCount(), 1);
    scheduler.applyRemote({
      request_id: 'remote',
      worker: { worker_id: 0n, dp_rank: 0 },
      data: 'Free',
      router_id: 2n,
    });
    assert.equal((await waiting).worker, worker);
  });

  test('a negative threshold is refused', () => {
    assert.throws(() => makeScheduler(1, { queueThreshold: -1 }), RangeError);
  });
});
