import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { parseExactJson, stringifyExactJson } from '../../json.ts';
import {
  type ActiveSequenceEvent,
  createActiveSequences,
  createSequenceTracker,
  DEFAULT_EXPIRY_MS,
} from './sequences.ts';
import { parseWorkerKey, workerKey } from './worker-key.ts';

/** A clock that only moves when the test says so (milliseconds). */
function fakeClock(start = 0) {
  let t = start;
  return {
    now: () => t,
    advance(ms: number) {
      t += ms;
    },
  };
}

const seq = (...hashes: number[]) => BigUint64Array.from(hashes.map(BigInt));
const SEC = 1000;

describe('ActiveSequences (router reference §8.3)', () => {
  test('test_active_sequences_shared_blocks', () => {
    const s = createActiveSequences({ blockSize: 4, now: fakeClock().now });
    s.addRequest({ requestId: 'request_1', tokenSeq: seq(1, 2, 3), isl: 12, overlap: 0 });
    assert.equal(s.activeBlocks(), 3);
    assert.equal(s.activeTokens(), 12);
    s.addRequest({ requestId: 'request_2', tokenSeq: seq(4), isl: 4, overlap: 0 });
    assert.equal(s.activeBlocks(), 4);
    assert.equal(s.activeTokens(), 16);
    s.addRequest({ requestId: 'request_3', tokenSeq: seq(1, 2, 3, 4), isl: 16, overlap: 4 });
    assert.equal(s.activeBlocks(), 4);
    assert.equal(s.activeTokens(), 16);
    s.free('request_2');
    assert.equal(s.activeBlocks(), 4);
    assert.equal(s.activeTokens(), 12);
    s.free('request_3');
    assert.equal(s.activeBlocks(), 3);
    assert.equal(s.activeTokens(), 12);
    s.free('request_1');
    assert.equal(s.activeBlocks(), 0);
    assert.equal(s.activeTokens(), 0);
  });

  test('test_output_blocks_with_fractional_decay', () => {
    const s = createActiveSequences({ blockSize: 4, now: fakeClock().now });
    s.addRequest({ requestId: 'r1', tokenSeq: seq(1, 2, 3), isl: 12, overlap: 0 });
    assert.equal(s.activeBlocks(), 3);
    assert.equal(s.addOutputBlock('r1', 0.5), true);
    assert.equal(s.activeBlocks(), 2, 'all 4 blocks are single-ref: 4 x 0.5');
    s.addRequest({ requestId: 'r2', tokenSeq: seq(1, 2), isl: 8, overlap: 0 });
    assert.equal(s.activeBlocks(), 2, 'fractions persist on blocks that gain a reference');
    assert.equal(s.addOutputBlock('r1', 0.0), true);
    assert.equal(s.activeBlocks(), 1);
    s.free('r2');
    s.free('r1');
    assert.equal(s.activeBlocks(), 0);
    assert.equal(s.activeTokens(), 0);
  });

  test('test_mark_prefill_completed', () => {
    const s = createActiveSequences({ blockSize: 4, now: fakeClock().now });
    s.addRequest({ requestId: 'r1', tokenSeq: seq(1, 2, 3), isl: 12, overlap: 0 });
    assert.equal(s.activeTokens(), 12);
    s.markPrefillCompleted('r1');
    assert.equal(s.activeTokens(), 0);
    s.markPrefillCompleted('r1');
    assert.equal(s.activeTokens(), 0, 'idempotent');
    s.addRequest({ requestId: 'r2', tokenSeq: seq(4, 5), isl: 8, overlap: 0 });
    assert.equal(s.activeTokens(), 8);
    s.free('r2');
    assert.equal(s.activeTokens(), 0);
  });

  test('test_add_request_without_prefill_tracking_keeps_active_tokens_zero', () => {
    const s = createActiveSequences({ blockSize: 4, now: fakeClock().now });
    s.addRequest({
      requestId: 'r1',
      tokenSeq: seq(1, 2, 3),
      isl: 12,
      overlap: 0,
      trackPrefillTokens: false,
    });
    assert.equal(s.activeTokens(), 0);
    assert.deepEqual(s.prefillOrder(), []);
    assert.equal(s.prefillTokensSum(), 0);
    s.markPrefillCompleted('r1');
    assert.equal(s.activeTokens(), 0);
    s.free('r1');
    assert.equal(s.activeBlocks(), 0);
  });

  test('test_potential_blocks_and_tokens_without_prefill_tracking_ignores_prompt_load', () => {
    const s = createActiveSequences({ blockSize: 4, now: fakeClock().now });
    s.addRequest({
      requestId: 'r1',
      tokenSeq: seq(1, 2, 3),
      isl: 12,
      overlap: 0,
      trackPrefillTokens: false,
    });
    const load = s.potentialLoad(seq(1, 2, 3, 4), 16, 0, false);
    assert.equal(load.decodeBlocks, 4);
    assert.equal(load.prefillTokens, 0);
  });

  test('test_prefill_decay_only_applies_to_oldest_request', () => {
    const clock = fakeClock();
    const s = createActiveSequences({ blockSize: 4, now: clock.now });
    s.addRequest({
      requestId: 'r1',
      tokenSeq: seq(1),
      isl: 100,
      overlap: 0,
      prefillLoadHint: { initialEffectivePrefillTokens: 100, expectedPrefillDurationMs: 10 * SEC },
    });
    clock.advance(2 * SEC);
    s.addRequest({
      requestId: 'r2',
      tokenSeq: seq(2),
      isl: 60,
      overlap: 0,
      prefillLoadHint: { initialEffectivePrefillTokens: 60, expectedPrefillDurationMs: 6 * SEC },
    });
    // r1 has decayed to 80 after 2 s; r2, not the oldest, counts in full.
    assert.equal(s.activeTokens(), 140);
    clock.advance(3 * SEC);
    assert.equal(s.activeTokens(), 110);
    assert.ok(s.activeTokens() <= 160);
    assert.ok(s.activeTokens() >= 60);
  });

  test('test_prefill_decay_hands_off_to_next_oldest_request', () => {
    const clock = fakeClock();
    const s = createActiveSequences({ blockSize: 4, now: clock.now });
    s.addRequest({
      requestId: 'r1',
      tokenSeq: seq(1),
      isl: 100,
      overlap: 0,
      prefillLoadHint: { initialEffectivePrefillTokens: 100, expectedPrefillDurationMs: 10 * SEC },
    });
    s.addRequest({
      requestId: 'r2',
      tokenSeq: seq(2),
      isl: 40,
      overlap: 0,
      prefillLoadHint: { initialEffectivePrefillTokens: 40, expectedPrefillDurationMs: 8 * SEC },
    });
    clock.advance(3 * SEC);
    assert.equal(s.activeTokens(), 110);
    s.markPrefillCompleted('r1');
    assert.equal(s.activeTokens(), 25, 'r2 is now the oldest and decays from its own start');
    assert.deepEqual(s.prefillOrder(), ['r2']);
  });

  test('test_prefill_queue_and_sum_invariants_survive_idempotent_cleanup', () => {
    const s = createActiveSequences({ blockSize: 4, now: fakeClock().now });
    const hint = (tokens: number) => ({
      initialEffectivePrefillTokens: tokens,
      expectedPrefillDurationMs: 10 * SEC,
    });
    s.addRequest({
      requestId: 'r1',
      tokenSeq: seq(1),
      isl: 50,
      overlap: 0,
      prefillLoadHint: hint(50),
    });
    s.addRequest({
      requestId: 'r2',
      tokenSeq: seq(2),
      isl: 30,
      overlap: 0,
      prefillLoadHint: hint(30),
    });
    assert.equal(s.prefillTokensSum(), 80);
    assert.deepEqual(s.prefillOrder(), ['r1', 'r2']);
    s.markPrefillCompleted('r1');
    s.markPrefillCompleted('r1');
    assert.equal(s.prefillTokensSum(), 30);
    assert.deepEqual(s.prefillOrder(), ['r2']);
    s.free('r1');
    s.free('r1');
    assert.equal(s.prefillTokensSum(), 30);
    assert.deepEqual(s.prefillOrder(), ['r2']);
    s.free('r2');
    assert.equal(s.prefillTokensSum(), 0);
    assert.deepEqual(s.prefillOrder(), []);
    assert.deepEqual(s.requestIds(), []);
  });

  test('test_force_expiry', () => {
    const clock = fakeClock();
    const s = createActiveSequences({ blockSize: 4, now: clock.now });
    s.addRequest({ requestId: 'r1', tokenSeq: seq(1, 2), isl: 8, overlap: 0 });
    s.addRequest({ requestId: 'r2', tokenSeq: seq(3, 4), isl: 8, overlap: 0 });
    assert.equal(s.activeBlocks(), 4);

    clock.advance(20 * SEC);
    assert.deepEqual(s.forceExpiry(), [], 'no check before the 30 s check interval');
    assert.equal(s.activeBlocks(), 4);

    clock.advance(11 * SEC);
    assert.deepEqual(s.forceExpiry(), [], 'requests not old enough to expire');
    assert.equal(s.activeBlocks(), 4);

    clock.advance(DEFAULT_EXPIRY_MS - 30 * SEC);
    assert.deepEqual(s.forceExpiry().sort(), ['r1', 'r2']);
    assert.equal(s.activeBlocks(), 0);
    assert.equal(s.activeTokens(), 0);

    clock.advance(31 * SEC);
    assert.deepEqual(
      s.addRequest({ requestId: 'r3', tokenSeq: seq(5), isl: 4, overlap: 0 }),
      [],
    );
    assert.equal(s.activeBlocks(), 1);
    assert.equal(s.activeTokens(), 4);
  });
});

describe('ActiveSequences', () => {
  test('a duplicate request id is ignored', () => {
    const s = createActiveSequences({ blockSize: 4, now: fakeClock().now });
    s.addRequest({ requestId: 'r1', tokenSeq: seq(1), isl: 4, overlap: 0 });
    s.addRequest({ requestId: 'r1', tokenSeq: seq(2, 3), isl: 8, overlap: 0 });
    assert.equal(s.activeBlocks(), 1);
    assert.equal(s.activeTokens(), 4);
  });

  test('freeing or adding output to an unknown request changes nothing', () => {
    const s = createActiveSequences({ blockSize: 4, now: fakeClock().now });
    assert.equal(s.free('nope'), false);
    assert.equal(s.addOutputBlock('nope', 0.5), false);
    assert.equal(s.activeBlocks(), 0);
  });

  test('potentialLoad counts only the blocks the worker lacks and the uncached tokens', () => {
    const s = createActiveSequences({ blockSize: 4, now: fakeClock().now });
    s.addRequest({ requestId: 'r1', tokenSeq: seq(1, 2), isl: 8, overlap: 0 });
    const load = s.potentialLoad(seq(1, 2, 3), 12, 2);
    assert.deepEqual(load, {
      decodeBlocks: 3,
      prefillTokens: 8 + 4,
      activePrefillTokens: 8,
      activeOverlapBlocks: 2,
    });
    assert.equal(s.prefixBlocks(seq(3, 1, 2)), 0, 'only a leading run counts');
    assert.equal(s.prefixBlocks(seq(1, 3, 2)), 1);
    assert.equal(s.newTokens(4, 2), 0, 'an overlap beyond the prompt gives no new tokens');
  });

  test('onBlockPresence fires on the first reference and after the last release', () => {
    const seen: string[] = [];
    const s = createActiveSequences({
      blockSize: 4,
      now: fakeClock().now,
      onBlockPresence: (h, present) => seen.push(`${present ? '+' : '-'}${h}`),
    });
    s.addRequest({ requestId: 'a', tokenSeq: seq(1, 2), isl: 8, overlap: 0 });
    s.addRequest({ requestId: 'b', tokenSeq: seq(1, 3), isl: 8, overlap: 0 });
    s.free('a');
    s.free('b');
    assert.deepEqual(seen, ['+1', '+2', '+3', '-2', '-1', '-3']);
  });
});

describe('SequenceTracker', () => {
  const A = workerKey(0xaan, 0);
  const B = workerKey(0xbbn, 0);
  const B1 = workerKey(0xbbn, 1);

  test('worker keys are "<hex id>:<dp rank>" and parse back', () => {
    assert.equal(workerKey(0x694d98147d54be25n, 3), '694d98147d54be25:3');
    assert.deepEqual(parseWorkerKey('694d98147d54be25:3'), {
      workerId: 0x694d98147d54be25n,
      dpRank: 3,
    });
    assert.throws(() => parseWorkerKey('xyz'), RangeError);
  });

  test("potentialLoads matches each worker's own potentialLoad", () => {
    const clock = fakeClock();
    const tracker = createSequenceTracker({ blockSize: 4, now: clock.now });
    tracker.addRequest(A, { requestId: 'a1', tokenSeq: seq(1, 2, 3), isl: 12, overlap: 0 });
    tracker.addRequest(B, { requestId: 'b1', tokenSeq: seq(1, 9), isl: 8, overlap: 1 });
    tracker.addRequest(B, { requestId: 'b2', tokenSeq: seq(1, 2), isl: 8, overlap: 0 });
    const loads = tracker.potentialLoads([A, B, B1], {
      tokenSeq: seq(1, 2, 3, 4),
      isl: 16,
      overlaps: new Map([[A, 3], [B, 1]]),
    });
    assert.deepEqual(loads.get(A), {
      decodeBlocks: 4,
      prefillTokens: 12 + 4,
      activePrefillTokens: 12,
      activeOverlapBlocks: 3,
    });
    assert.deepEqual(loads.get(B), {
      decodeBlocks: 3 + 2,
      prefillTokens: 4 + 8 + 12,
      activePrefillTokens: 12,
      activeOverlapBlocks: 2,
    });
    assert.deepEqual(loads.get(B1), {
      decodeBlocks: 4,
      prefillTokens: 16,
      activePrefillTokens: 0,
      activeOverlapBlocks: 0,
    });
    for (const worker of [A, B, B1]) {
      assert.deepEqual(
        loads.get(worker)?.activeOverlapBlocks,
        tracker.potentialLoads([worker], { tokenSeq: seq(1, 2, 3, 4), isl: 16 }).get(worker)
          ?.activeOverlapBlocks,
        'the depth does not leak from one call into the next',
      );
    }
    tracker.free('b1');
    tracker.free('b2');
    assert.deepEqual(tracker.activeLoad(B), { activeDecodeBlocks: 0, activePrefillTokens: 0 });
    assert.equal(
      tracker.potentialLoads([B], { tokenSeq: seq(1, 2), isl: 8 }).get(B)?.decodeBlocks,
      2,
      'released blocks leave the shared holder index',
    );
  });

  test('activeOverlapBlocks counts only the leading blocks held, across requests', () => {
    const tracker = createSequenceTracker({ blockSize: 4, now: fakeClock().now });
    // Blocks 1 and 2 come from two requests; 4 is held but 3 is not, so the prefix stops at 2.
    tracker.addRequest(A, { requestId: 'x', tokenSeq: seq(1), isl: 4, overlap: 0 });
    tracker.addRequest(A, { requestId: 'y', tokenSeq: seq(1, 2, 9, 4), isl: 16, overlap: 0 });
    // B holds later blocks but not the first: no prefix at all.
    tracker.addRequest(B, { requestId: 'z', tokenSeq: seq(2, 3, 4), isl: 12, overlap: 0 });
    const loads = tracker.potentialLoads([A, B], { tokenSeq: seq(1, 2, 3, 4), isl: 16 });
    assert.equal(loads.get(A)?.activeOverlapBlocks, 2);
    assert.equal(loads.get(B)?.activeOverlapBlocks, 0);
    tracker.free('x');
    const after = tracker.potentialLoads([A], { tokenSeq: seq(1, 2, 3, 4), isl: 16 }).get(A);
    assert.equal(after?.activeOverlapBlocks, 2, "y still holds block 1 after x's release");
    tracker.free('y');
    assert.equal(
      tracker.potentialLoads([A], { tokenSeq: seq(1, 2), isl: 8 }).get(A)?.activeOverlapBlocks,
      0,
    );
  });

  test('every request is routed to the worker it was booked on', () => {
    const tracker = createSequenceTracker({ blockSize: 4, now: fakeClock().now });
    assert.equal(
      tracker.addRequest(A, { requestId: 'r', tokenSeq: seq(1), isl: 4, overlap: 0 }),
      true,
    );
    assert.equal(
      tracker.addRequest(B, { requestId: 'r', tokenSeq: seq(1), isl: 4, overlap: 0 }),
      false,
      'the same id cannot be active twice',
    );
    assert.equal(tracker.workerOf('r'), A);
    assert.equal(tracker.addOutputBlock('r'), true);
    assert.equal(tracker.activeLoad(A)?.activeDecodeBlocks, 2);
    assert.equal(tracker.markPrefillCompleted('r'), true);
    assert.equal(tracker.activeLoad(A)?.activePrefillTokens, 0);
    assert.equal(tracker.free('r'), true);
    assert.equal(tracker.workerOf('r'), undefined);
    assert.equal(tracker.free('r'), false);
  });

  test('removeWorkerId drops every dp rank and its requests', () => {
    const tracker = createSequenceTracker({ blockSize: 4, now: fakeClock().now });
    tracker.addRequest(B, { requestId: 'x', tokenSeq: seq(1), isl: 4, overlap: 0 });
    tracker.addRequest(B1, { requestId: 'y', tokenSeq: seq(1), isl: 4, overlap: 0 });
    tracker.addRequest(A, { requestId: 'z', tokenSeq: seq(1), isl: 4, overlap: 0 });
    tracker.removeWorkerId(0xbbn);
    assert.deepEqual(tracker.workers(), [A]);
    assert.equal(tracker.workerOf('x'), undefined);
    assert.equal(tracker.workerOf('y'), undefined);
    assert.equal(tracker.potentialLoads([B], { tokenSeq: seq(1), isl: 4 }).get(B)?.decodeBlocks, 1);
    assert.equal(tracker.potentialLoads([A], { tokenSeq: seq(1), isl: 4 }).get(A)?.decodeBlocks, 1);
  });

  test('the stale sweep frees expired requests on every worker and forgets them', () => {
    const clock = fakeClock();
    const tracker = createSequenceTracker({ blockSize: 4, now: clock.now });
    tracker.addRequest(A, { requestId: 'old', tokenSeq: seq(1), isl: 4, overlap: 0 });
    clock.advance(DEFAULT_EXPIRY_MS + 1);
    assert.deepEqual(tracker.forceExpiry(), ['old']);
    assert.equal(tracker.workerOf('old'), undefined);
    assert.deepEqual(tracker.activeLoad(A), { activeDecodeBlocks: 0, activePrefillTokens: 0 });
  });

  test('replica sync: a peer applies add, prefill completion and free; its own events are skipped', () => {
    const clock = fakeClock();
    const wire: string[] = [];
    const first = createSequenceTracker({
      blockSize: 4,
      now: clock.now,
      routerId: 1n,
      onEvent: (e) => wire.push(stringifyExactJson(e)),
    });
    const second = createSequenceTracker({ blockSize: 4, now: clock.now, routerId: 2n });
    const big = 0xffff_ffff_ffff_fff0n;
    first.addRequest(B1, {
      requestId: 'r',
      tokenSeq: BigUint64Array.of(big, 7n),
      isl: 10,
      overlap: 1,
      expectedOutputTokens: 50,
    });
    const deliver = () => {
      for (const line of wire.splice(0)) {
        const event = parseExactJson(line) as ActiveSequenceEvent;
        second.applyRemote(event);
        first.applyRemote(event);
      }
    };
    assert.deepEqual(JSON.parse(wire[0] as string).data.AddRequest.prefill_load_hint, {
      initial_effective_prefill_tokens: 6,
      expected_prefill_duration: null,
    });
    deliver();
    assert.deepEqual(second.activeLoad(B1), { activeDecodeBlocks: 2, activePrefillTokens: 6 });
    assert.deepEqual(first.activeLoad(B1), { activeDecodeBlocks: 2, activePrefillTokens: 6 });
    assert.equal(
      second.potentialLoads([B1], { tokenSeq: BigUint64Array.of(big), isl: 4 }).get(B1)
        ?.decodeBlocks,
      2,
      'u64 hashes survive the JSON round trip exactly',
    );
    first.addOutputBlock('r');
    assert.equal(wire.length, 0, 'output blocks are not replicated');
    first.markPrefillCompleted('r');
    deliver();
    assert.equal(second.activeLoad(B1)?.activePrefillTokens, 0);
    first.free('r');
    deliver();
    assert.deepEqual(second.activeLoad(B1), { activeDecodeBlocks: 0, activePrefillTokens: 0 });
    assert.equal(second.workerOf('r'), undefined);
  });

  test('replica sync: a peer event without a hint derives the load from isl and overlap', () => {
    const tracker = createSequenceTracker({ blockSize: 16, now: fakeClock().now, routerId: 5n });
    tracker.applyRemote({
      request_id: 'p',
      worker: { worker_id: 0xaa, dp_rank: 0 },
      data: {
        AddRequest: { token_sequence: [1, 2], isl: 40, overlap: 1, track_prefill_tokens: true },
      },
      router_id: 9,
    });
    assert.deepEqual(tracker.activeLoad(A), { activeDecodeBlocks: 2, activePrefillTokens: 24 });
  });
});
