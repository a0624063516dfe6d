import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  createEngineEventDecoder,
  encodeEngineBatch,
  encodeEngineMessage,
  type EngineEvent,
  parseEngineBatch,
  splitEngineMessage,
  storageTierOf,
} from './engine-events.ts';
import type { RouterEvent } from '../../core/router/kv/events.ts';
import { createBlockHasher } from '../../core/router/kv/hash.ts';
import { encodeMsgpack } from './msgpack.ts';

const hasher = await createBlockHasher();
const WORKER = 0xabcn;
const tokens = [0, 1, 2, 3, 4, 5, 6, 7];
// Router reference §1.4, tokens 0..7, block size 4.
const L0 = 9143094415614847814n;
const L1 = 12124091508212882195n;

function decoder(warnings: string[] = []) {
  return createEngineEventDecoder({
    hasher,
    blockSize: 4,
    workerId: WORKER,
    onWarning: (message) => void warnings.push(message),
  });
}

const stored = (overrides: Partial<Extract<EngineEvent, { type: 'BlockStored' }>> = {}) => ({
  type: 'BlockStored' as const,
  block_hashes: [11n, 12n],
  parent_block_hash: null,
  token_ids: tokens,
  block_size: 4,
  ...overrides,
});

async function decodeOne(event: EngineEvent, dpRank: number | null = 0, form?: 'array' | 'map') {
  return await decoder().decode(encodeEngineBatch({ ts: 1, events: [event], dp_rank: dpRank }, {
    form,
  }));
}

const storedData = (events: RouterEvent[]) => {
  const data = events[0]!.event.data;
  assert.ok(typeof data === 'object' && 'stored' in data);
  return data.stored;
};

test('BlockStored (array form) becomes stored with tokens_hash recomputed by Dynamo’s hasher', async () => {
  const events = await decodeOne(stored({ parent_block_hash: 10n }));
  assert.deepEqual(events, [{
    worker_id: WORKER,
    event: {
      event_id: 0,
      dp_rank: 0,
      data: {
        stored: {
          parent_hash: 10n,
          blocks: [{ block_hash: 11n, tokens_hash: L0 }, { block_hash: 12n, tokens_hash: L1 }],
        },
      },
    },
  }]);
});

test('the map form decodes to the same events', async () => {
  const events = await decodeOne(stored({ parent_block_hash: 10n }), 0, 'map');
  assert.deepEqual(storedData(events).blocks.map((b) => b.tokens_hash), [L0, L1]);
});

test('signed i64 hashes become u64 bits, parents included', async () => {
  const payload = encodeMsgpack([0, [[
    'BlockStored',
    [-1, -(2n ** 63n)],
    -2,
    tokens,
    4,
    null,
    null,
    null,
    null,
  ]], 0]);
  const data = storedData(await decoder().decode(payload));
  assert.equal(data.parent_hash, 2n ** 64n - 2n);
  assert.deepEqual(data.blocks.map((b) => b.block_hash), [2n ** 64n - 1n, 2n ** 63n]);
});

test('a hash repeated within {parent} ∪ block_hashes turns the event into an empty removed', async () => {
  for (
    const event of [
      stored({ block_hashes: [5n, 5n] }),
      stored({ parent_block_hash: 5n, block_hashes: [5n, 6n] }),
    ]
  ) {
    const warnings: string[] = [];
    const events = await decoder(warnings).decode(
      encodeEngineBatch({ ts: 0, events: [event], dp_rank: 0 }),
    );
    assert.deepEqual(events[0]!.event.data, { removed: { block_hashes: [] } });
    assert.match(warnings[0]!, /Self-referencing/);
  }
});

test('blocks stop at the first partial block; warnings are capped at 3', async () => {
  const warnings: string[] = [];
  const d = decoder(warnings);
  const short = stored({ block_hashes: [1n, 2n, 3n], token_ids: [...tokens, 8, 9] });
  for (let i = 0; i < 5; i++) {
    const events = await d.decode(encodeEngineBatch({ ts: 0, events: [short], dp_rank: 0 }));
    assert.deepEqual(storedData(events).blocks.map((b) => b.block_hash), [1n, 2n]);
  }
  const wrongSize = await d.decode(
    encodeEngineBatch({ ts: 0, events: [stored({ block_size: 16 })], dp_rank: 0 }),
  );
  assert.deepEqual(storedData(wrongSize).blocks, []);
  assert.equal(warnings.length, 3);
});

test('medium maps to a tier; only device-tier events are kept', async () => {
  assert.equal(storageTierOf(null), 'device');
  assert.equal(storageTierOf('GPU'), 'device');
  assert.equal(storageTierOf('cpu_tier1'), 'host_pinned');
  assert.equal(storageTierOf('CPU_TIER2'), 'disk');
  assert.equal(storageTierOf('NVME'), 'disk');
  assert.equal(storageTierOf('SHARED'), 'external');
  const d = decoder();
  const events = await d.decode(encodeEngineBatch({
    ts: 0,
    events: [
      stored({ medium: 'CPU' }),
      { type: 'BlockRemoved', block_hashes: [1n], medium: 'DISK' },
      { type: 'BlockRemoved', block_hashes: [2n], medium: 'GPU' },
    ],
    dp_rank: 0,
  }));
  assert.deepEqual(events.map((e) => [e.event.event_id, e.event.data]), [[0, {
    removed: { block_hashes: [2n] },
  }]]);
});

test('non-main attention groups are ignored: spec kind, or group_idx without a kind', async () => {
  const d = decoder();
  const events = await d.decode(encodeEngineBatch({
    ts: 0,
    events: [
      stored({ kv_cache_spec_kind: 'sliding_window' }),
      stored({ group_idx: 1 }),
      stored({ group_idx: 1, kv_cache_spec_kind: 'full_attention', block_hashes: [21n, 22n] }),
      { type: 'BlockRemoved', block_hashes: [3n], kv_cache_spec_kind: 'mamba' },
      { type: 'BlockRemoved', block_hashes: [4n], group_idx: 0 },
    ],
    dp_rank: 0,
  }));
  assert.equal(events.length, 2);
  assert.deepEqual(storedData(events).blocks.map((b) => b.block_hash), [21n, 22n]);
  assert.deepEqual(events[1]!.event.data, { removed: { block_hashes: [4n] } });
});

test('Eagle bigram pairs: windows of block_size + 1 tokens', async () => {
  const pairs: Array<[number, number]> = [[0, 1], [1, 2], [2, 3], [3, 4], [4, 5], [5, 6], [6, 7], [
    7,
    8,
  ]];
  const data = storedData(await decodeOne(stored({ token_ids: pairs })));
  const window = (from: number) => {
    const bytes = new Uint8Array(20);
    const view = new DataView(bytes.buffer);
    for (let i = 0; i < 5; i++) view.setUint32(i * 4, from + i, true);
    return hasher.xxh3(bytes, 1337n);
  };
  assert.deepEqual(data.blocks.map((b) => b.tokens_hash), [window(0), window(4)]);
});

test('lora_name and cache salt enter the seed (reference vectors)', async () => {
  const lora = storedData(await decodeOne(stored({ lora_name: 'my-adapter' })));
  assert.deepEqual(lora.blocks.map((b) => b.tokens_hash), [
    13692202469334984872n,
    14659540909498545450n,
  ]);
  const salted = [17009624042690211646n, 10000672136415158886n];
  const mapForm = storedData(await decodeOne(stored({ cache_salt: 'tenant-a' }), 0, 'map'));
  assert.deepEqual(mapForm.blocks.map((b) => b.tokens_hash), salted);
  // SGLang: position 7 holds {cache_salt}.
  const sglang = storedData(await decodeOne(stored({ cache_salt: 'tenant-a' })));
  assert.deepEqual(sglang.blocks.map((b) => b.tokens_hash), salted);
  // vLLM: a tagged salt in the first block's extra_keys.
  const tagged = storedData(
    await decodeOne(stored({ extra_keys: [['dynamo-cache-salt:tenant-a'], null] })),
  );
  assert.deepEqual(tagged.blocks.map((b) => b.tokens_hash), salted);
});

test('multimodal extra_keys: 64-hex digests and [id, offset] pairs are hashed into their block', async () => {
  const digest = `${'0'.repeat(15)}7${'f'.repeat(48)}`; // first 16 hex digits = 7
  const data = storedData(
    await decodeOne(
      stored({
        extra_keys: [[digest, 'not-mm', [`${'0'.repeat(15)}3${'0'.repeat(48)}`, 0]], null],
      }),
    ),
  );
  // Reference §1.4: block0 mm_hashes [7, 3].
  assert.deepEqual(data.blocks.map((b) => b.tokens_hash), [12534961123884847936n, L1]);
  assert.deepEqual(data.blocks[0]!.mm_extra_info, {
    mm_objects: [{ mm_hash: 7n, offsets: [] }, { mm_hash: 3n, offsets: [] }],
  });
  assert.equal(data.blocks[1]!.mm_extra_info, undefined);
});

test('event ids count per dp_rank from 0, and cleared maps to cleared', async () => {
  const d = decoder();
  const batch = (dp: number | null) =>
    encodeEngineBatch({ ts: 0, events: [{ type: 'AllBlocksCleared' }], dp_rank: dp });
  const ids = [];
  for (const dp of [0, 1, 0, null, 1]) {
    const [event] = await d.decode(batch(dp));
    ids.push([event!.event.dp_rank, event!.event.event_id, event!.event.data]);
  }
  assert.deepEqual(ids, [
    [0, 0, 'cleared'],
    [1, 0, 'cleared'],
    [0, 1, 'cleared'],
    [0, 2, 'cleared'],
    [1, 1, 'cleared'],
  ]);
});

test('messages: exactly 3 frames with an 8-byte seq; unknown event tags are dropped', () => {
  const payload = encodeEngineBatch({
    ts: 2.5,
    events: [{ type: 'AllBlocksCleared' }],
    dp_rank: 3,
  });
  const frames = encodeEngineMessage('kv', 7n, payload);
  assert.deepEqual(splitEngineMessage(frames), { topic: 'kv', seq: 7n, payload });
  assert.equal(splitEngineMessage(frames.slice(0, 2)), undefined);
  assert.equal(splitEngineMessage([frames[0]!, new Uint8Array(4), payload]), undefined);
  const batch = parseEngineBatch(encodeMsgpack([1.5, [['Future', 1], ['AllBlocksCleared']], null]));
  assert.deepEqual(batch, { ts: 1.5, events: [{ type: 'AllBlocksCleared' }], dp_rank: null });
  assert.throws(() => parseEngineBatch(encodeMsgpack({ nope: 1 })), /no events/);
});
