import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { ValidationError } from '../../errors.ts';
import { applyRoutingHeaders, type NvExt, NvExtSchema } from './nvext.ts';
import { parseChatCompletionRequest } from './validate.ts';

const parse = (nvext: unknown): NvExt => NvExtSchema.parse(nvext);

describe('NvExtSchema', () => {
  test('accepts every documented field', () => {
    const nvext = parse({
      greed_sampling: true,
      use_raw_prompt: false,
      annotations: ['request_id', 'query_instance_id:x'],
      backend_instance_id: 42,
      token_data: [1, 2, 3],
      max_thinking_tokens: 100,
      extra_fields: ['worker_id', 'timing', 'routed_experts', 'engine_data', 'stop_reason'],
      prefill_worker_id: '0x10',
      decode_worker_id: '17',
      dp_rank: 1,
      prefill_dp_rank: 0,
      agent_hints: {
        priority: -3,
        strict_priority: 1,
        osl: 256,
        speculative_prefill: true,
        latency_sensitivity: 0.5,
      },
      session_control: { session_id: 's', action: 'close' },
      request_timestamp_ms: 1234.5,
      cache_salt: 'tenant',
      cache_control: { type: 'ephemeral' },
      ignore_eos: true,
    });
    assert.equal(nvext.backend_instance_id, '2a');
    assert.equal(nvext.prefill_worker_id, '10');
    assert.equal(nvext.decode_worker_id, '11');
  });

  test('refuses unknown keys, agent_context included (as Dynamo does)', () => {
    assert.throws(
      () =>
        parseChatCompletionRequest({
          model: 'm',
          messages: [{ role: 'user', content: 'x' }],
          nvext: { agent_context: {} },
        }),
      (error: unknown) => {
        assert.ok(error instanceof ValidationError);
        assert.equal(error.param, 'nvext');
        assert.equal(error.message, 'Invalid value for "nvext": unknown field(s) `agent_context`');
        return true;
      },
    );
    assert.equal(NvExtSchema.safeParse({ agent_hints: { mood: 'happy' } }).success, false);
  });

  test('backend_instance_id keeps every u64 exact as lower-case hex', () => {
    assert.equal(
      parse({ backend_instance_id: '18446744073709551615' }).backend_instance_id,
      'ffffffffffffffff',
    );
    assert.equal(
      parse({ backend_instance_id: '0xDEADBEEFCAFEF00D' }).backend_instance_id,
      'deadbeefcafef00d',
    );
    assert.equal(parse({ backend_instance_id: 2n ** 60n }).backend_instance_id, '1000000000000000');
    assert.equal(parse({ backend_instance_id: 0 }).backend_instance_id, '0');
  });

  test('backend_instance_id refuses inexact numbers, negatives, overflow and bare hex', () => {
    const message = (value: unknown) => {
      const result = NvExtSchema.safeParse({ backend_instance_id: value });
      assert.equal(result.success, false, `${String(value)} must be refused`);
      return result.error?.issues[0]?.message ?? '';
    };
    assert.match(message(2 ** 60), /must be sent as a string above 2\^53/);
    assert.match(message(-1), /must be a u64/);
    assert.match(message(1.5), /must be a u64/);
    assert.match(message('18446744073709551616'), /must be a u64/);
    assert.match(message('deadbeef'), /must be a u64/);
    assert.match(message(''), /must be a u64/);
  });
});

describe('applyRoutingHeaders()', () => {
  test('current headers set worker ids, dp ranks and priorities; headers win over the body', () => {
    const nvext = applyRoutingHeaders(
      parse({ backend_instance_id: 1, prefill_worker_id: 2, dp_rank: 3, annotations: ['a'] }),
      new Headers({
        'x-dynamo-worker-instance-id': '255',
        'x-dynamo-prefill-instance-id': '0x10',
        'x-dynamo-dp-rank': '4',
        'x-dynamo-prefill-dp-rank': '5',
        'x-dynamo-request-priority': '-7',
        'x-dynamo-request-strict-priority': '2',
      }),
    );
    assert.deepEqual(nvext, {
      backend_instance_id: 'ff',
      decode_worker_id: 'ff',
      prefill_worker_id: '10',
      dp_rank: 4,
      prefill_dp_rank: 5,
      agent_hints: { priority: -7, strict_priority: 2 },
      annotations: ['a'],
    });
  });

  test('legacy names work, and the current name wins when both are sent', () => {
    assert.deepEqual(
      applyRoutingHeaders(undefined, {
        'X-Worker-Instance-Id': '10',
        'x-prefill-instance-id': '11',
        'x-data-parallel-rank': '1',
        'x-prefill-dp-rank': '2',
      }),
      {
        backend_instance_id: 'a',
        decode_worker_id: 'a',
        prefill_worker_id: 'b',
        dp_rank: 1,
        prefill_dp_rank: 2,
      },
    );
    const both = applyRoutingHeaders(null, { 'x-dp-rank': '1', 'x-dynamo-dp-rank': '2' });
    assert.equal(both?.dp_rank, 2);
  });

  test('a dp rank of u32::MAX means unset, from a header or the body', () => {
    const fromHeader = applyRoutingHeaders(parse({ dp_rank: 3 }), {
      'x-dynamo-dp-rank': '4294967295',
      'x-dynamo-prefill-dp-rank': '4294967295',
    });
    assert.deepEqual(fromHeader, { dp_rank: 3 });
    assert.equal(applyRoutingHeaders(parse({ prefill_dp_rank: 4294967295 }), {}), undefined);
  });

  test('an invalid header value is a 400 naming the header', () => {
    const cases: [string, string][] = [
      ['x-dynamo-worker-instance-id', 'worker-7'],
      ['x-worker-instance-id', '-1'],
      ['x-dynamo-dp-rank', '1.5'],
      ['x-dynamo-prefill-dp-rank', '4294967296'],
      ['x-dynamo-request-priority', 'high'],
      ['x-dynamo-request-strict-priority', '-1'],
    ];
    for (const [name, value] of cases) {
      assert.throws(() => applyRoutingHeaders(undefined, { [name]: value }), (error: unknown) => {
        assert.ok(error instanceof ValidationError);
        assert.equal(error.status, 400);
        assert.equal(error.param, name);
        assert.match(error.message, new RegExp(`^Invalid value for header "${name}": expected `));
        return true;
      });
    }
  });

  test('x-dynamo-session-id sets session_control.session_id, over the body value', () => {
    assert.deepEqual(
      applyRoutingHeaders(undefined, { 'x-dynamo-session-id': 'chat-42' }),
      { session_control: { session_id: 'chat-42' } },
    );
    assert.deepEqual(
      applyRoutingHeaders(parse({ session_control: { session_id: 'body', action: 'close' } }), {
        'X-Dynamo-Session-Id': 'header',
      }),
      { session_control: { session_id: 'header', action: 'close' } },
    );
    assert.throws(
      () => applyRoutingHeaders(undefined, { 'x-dynamo-session-id': 'x'.repeat(1025) }),
      (e: ValidationError) => e.status === 400 && e.param === 'x-dynamo-session-id',
    );
  });

  test('session_control needs a session id of 1 to 1024 characters and a known action', () => {
    assert.equal(NvExtSchema.safeParse({ session_control: { session_id: '' } }).success, false);
    assert.equal(
      NvExtSchema.safeParse({ session_control: { session_id: 's', action: 'pause' } }).success,
      false,
    );
    assert.equal(NvExtSchema.safeParse({ session_control: { action: 'open' } }).success, false);
    assert.deepEqual(parse({ session_control: { session_id: 's', timeout: 60 } }).session_control, {
      session_id: 's',
      timeout: 60,
    });
  });

  test('x-tenant-id sets cache_salt, over the body value', () => {
    assert.deepEqual(
      applyRoutingHeaders(parse({ cache_salt: 'body' }), { 'x-tenant-id': 'tenant-a' }),
      { cache_salt: 'tenant-a' },
    );
  });

  test('when disabled, only cache_salt survives and routing headers are ignored', () => {
    const nvext = parse({ backend_instance_id: 1, annotations: ['request_id'], cache_salt: 's' });
    assert.deepEqual(
      applyRoutingHeaders(nvext, { 'x-dynamo-worker-instance-id': 'not-even-valid' }, {
        enabled: false,
      }),
      { cache_salt: 's' },
    );
    assert.deepEqual(
      applyRoutingHeaders(undefined, { 'x-tenant-id': 't' }, { enabled: false }),
      { cache_salt: 't' },
    );
    assert.equal(
      applyRoutingHeaders(nvext, {}, { enabled: false })?.backend_instance_id,
      undefined,
    );
    assert.equal(
      applyRoutingHeaders(parse({ annotations: [] }), {}, { enabled: false }),
      undefined,
    );
  });

  test('does not modify its input and returns undefined when nothing is set', () => {
    const nvext = parse({ dp_rank: 1 });
    applyRoutingHeaders(nvext, { 'x-dynamo-dp-rank': '2' });
    assert.deepEqual(nvext, { dp_rank: 1 });
    assert.equal(applyRoutingHeaders(undefined, new Headers()), undefined);
  });
});
