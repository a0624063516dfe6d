/**
 * The raw KV events vLLM and SGLang publish on ZMQ (router reference §2.3), and their conversion
 * to Dynamo `RouterEvent`s, as Dynamo's relay does it:
 *
 * - a message is exactly 3 frames `[topic, seq u64 BE, msgpack [ts, events, dp_rank]]`;
 * - each event is a tagged array (`["BlockStored", ...]`, msgspec `array_like`) or a map with a
 *   `"type"` key; hashes arrive as i64 or u64 and become u64 bits;
 * - `BlockStored` becomes `stored` with `tokens_hash` recomputed by Dynamo's block hasher (LoRA
 *   name and cache salt in the seed, multimodal hashes appended, Eagle bigram windows); an event
 *   whose hashes repeat within `{parent} ∪ block_hashes` becomes an empty `removed` (a no-op);
 *   blocks stop at the first one that is not `kvBlockSize` tokens or runs out of tokens;
 * - `medium` names a storage tier and only device-tier events are kept; events of a non-main
 *   attention group (`kv_cache_spec_kind`, or `group_idx != 0` without a kind) are ignored;
 * - event ids count per dp_rank from 0, one per emitted event (the engine's seq is not reused).
 *
 * Not done: vLLM's `image_token_id` pad-value substitution (Dynamo normalises image-token runs when
 * the model card names an image token); events with `locality` other than local are not modelled.
 */
import type { BlockHasher, HashSalt } from '../../core/router/kv/hash.ts';
import type { KvStoredBlock, RouterEvent } from '../../core/router/kv/events.ts';
import { decodeMsgpack, encodeMsgpack } from './msgpack.ts';
import type { Network } from '../../core/net.ts';
import { createZmqSubscriber } from './zmtp/socket.ts';

export type StorageTier = 'device' | 'host_pinned' | 'disk' | 'external';

/** One element of a block's `extra_keys`: an MM identifier, or `[identifier, offset]`. */
export type ExtraKey = string | [string, number] | unknown;

export interface BlockMmInfo {
  mm_objects: Array<{ mm_hash: bigint; offsets?: unknown[] }>;
}

export interface EngineBlockStored {
  type: 'BlockStored';
  /** Engine (external sequence) hashes; u64 bits. */
  block_hashes: bigint[];
  parent_block_hash: bigint | null;
  /** Token ids, or Eagle `[a, b]` bigram pairs. */
  token_ids: number[] | Array<[number, number]>;
  block_size: number;
  lora_id?: number | null;
  medium?: string | null;
  lora_name?: string | null;
  /** Per block: MM identifiers (or null). */
  extra_keys?: Array<ExtraKey[] | null> | null;
  /** Map form only (and SGLang's position-7 metadata). */
  cache_salt?: string | null;
  group_idx?: number;
  kv_cache_spec_kind?: string;
  block_mm_infos?: Array<BlockMmInfo | null>;
}

export interface EngineBlockRemoved {
  type: 'BlockRemoved';
  block_hashes: bigint[];
  medium?: string | null;
  group_idx?: number;
  kv_cache_spec_kind?: string;
}

export interface EngineAllBlocksCleared {
  type: 'AllBlocksCleared';
}

export type EngineEvent = EngineBlockStored | EngineBlockRemoved | EngineAllBlocksCleared;

/** `[ts, events, data_parallel_rank]`. */
export interface EngineEventBatch {
  ts: number;
  events: EngineEvent[];
  dp_rank: number | null;
}

/** A malformed engine message or event. */
export class EngineEventError extends Error {
  constructor(message: string, options: { cause?: unknown } = {}) {
    super(message, options);
    this.name = 'EngineEventError';
  }
}

/* ------------------------------------------------------------------------------------------ */
/* Wire helpers                                                                                */
/* ------------------------------------------------------------------------------------------ */

/** i64 or u64, number or bigint, as u64 bits. */
export function toU64(value: unknown): bigint {
  if (typeof value === 'bigint') return BigInt.asUintN(64, value);
  if (typeof value === 'number' && Number.isInteger(value)) {
    return BigInt.asUintN(64, BigInt(value));
  }
  throw new EngineEventError(`Expected an integer hash, got ${typeof value}`);
}

const toInt = (value: unknown, what: string): number => {
  if (typeof value === 'number' && Number.isInteger(value)) return value;
  if (typeof value === 'bigint' && value >= 0n && value <= BigInt(Number.MAX_SAFE_INTEGER)) {
    return Number(value);
  }
  throw new EngineEventError(`Expected an integer ${what}`);
};

const optString = (value: unknown): string | null =>
  typeof value === 'string' && value.length > 0 ? value : null;

const isMap = (value: unknown): value is Record<string, unknown> =>
  typeof value === 'object' && value !== null && !Array.isArray(value) &&
  !(value instanceof Uint8Array);

const hashList = (value: unknown): bigint[] => {
  if (!Array.isArray(value)) throw new EngineEventError('block_hashes must be an array');
  return value.map(toU64);
};

/** `medium` → storage tier (case-insensitive); absent or unknown → device. */
export function storageTierOf(medium: string | null | undefined): StorageTier {
  switch ((medium ?? '').toUpperCase()) {
    case 'CPU':
    case 'CPU_PINNED':
    case 'CPU_TIER1':
      return 'host_pinned';
    case 'CPU_TIER2':
    case 'DISK':
    case 'NVME':
    case 'STORAGE':
      return 'disk';
    case 'EXTERNAL':
    case 'NETWORK':
    case 'REMOTE':
    case 'SHARED':
      return 'external';
    default:
      return 'device';
  }
}

const MAIN_ATTENTION = new Set(['full_attention', 'mla_attention', 'sink_full_attention']);

/** Whether an event belongs to the main attention group (the one the router indexes). */
export function isMainAttention(event: { group_idx?: number; kv_cache_spec_kind?: string }) {
  if (event.kv_cache_spec_kind !== undefined) return MAIN_ATTENTION.has(event.kv_cache_spec_kind);
  return event.group_idx === undefined || event.group_idx === 0;
}

function parseMmInfos(value: unknown): Array<BlockMmInfo | null> {
  if (!Array.isArray(value)) throw new EngineEventError('block_mm_infos must be an array');
  return value.map((info) => {
    if (info === null || info === undefined) return null;
    const objects = isMap(info) ? info.mm_objects : Array.isArray(info) ? info[0] : undefined;
    if (!Array.isArray(objects)) throw new EngineEventError('Bad block_mm_infos entry');
    return {
      mm_objects: objects.map((o) => ({
        mm_hash: toU64(isMap(o) ? o.mm_hash : Array.isArray(o) ? o[0] : o),
        offsets: [],
      })),
    };
  });
}

/** Trailing fields after the known ones: group_idx (int), spec kind (string), MM infos (array). */
function applyTrailing(
  event: { group_idx?: number; kv_cache_spec_kind?: string; block_mm_infos?: unknown },
  trailing: unknown[],
  allowMm: boolean,
): void {
  for (const value of trailing.slice(0, 3)) {
    if (typeof value === 'number' || typeof value === 'bigint') {
      event.group_idx ??= toInt(value, 'group_idx');
    } else if (typeof value === 'string') event.kv_cache_spec_kind = value;
    else if (allowMm && Array.isArray(value)) event.block_mm_infos = parseMmInfos(value);
  }
}

function parseEvent(raw: unknown): EngineEvent | undefined {
  if (Array.isArray(raw)) {
    const [tag, ...rest] = raw;
    switch (tag) {
      case 'BlockStored': {
        const event: EngineBlockStored = {
          type: 'BlockStored',
          block_hashes: hashList(rest[0]),
          parent_block_hash: rest[1] === null || rest[1] === undefined ? null : toU64(rest[1]),
          token_ids: (rest[2] ?? []) as EngineBlockStored['token_ids'],
          block_size: toInt(rest[3], 'block_size'),
          lora_id: (rest[4] ?? null) as number | null,
          medium: optString(rest[5]),
        };
        // Position 7: vLLM's lora_name, or SGLang's metadata map {cache_salt}.
        if (isMap(rest[6])) event.cache_salt = optString(rest[6].cache_salt);
        else event.lora_name = optString(rest[6]);
        if (Array.isArray(rest[7])) event.extra_keys = rest[7] as EngineBlockStored['extra_keys'];
        applyTrailing(event, rest.slice(8), true);
        return event;
      }
      case 'BlockRemoved': {
        const event: EngineBlockRemoved = {
          type: 'BlockRemoved',
          block_hashes: hashList(rest[0]),
          medium: optString(rest[1]),
        };
        applyTrailing(event, rest.slice(2), false);
        return event;
      }
      case 'AllBlocksCleared':
        return { type: 'AllBlocksCleared' };
      default:
        return undefined;
    }
  }
  if (!isMap(raw)) throw new EngineEventError('An event must be an array or a map');
  switch (raw.type) {
    case 'BlockStored': {
      const event: EngineBlockStored = {
        type: 'BlockStored',
        block_hashes: hashList(raw.block_hashes),
        parent_block_hash: raw.parent_block_hash === null || raw.parent_block_hash === undefined
          ? null
          : toU64(raw.parent_block_hash),
        token_ids: (raw.token_ids ?? []) as EngineBlockStored['token_ids'],
        block_size: toInt(raw.block_size, 'block_size'),
        lora_id: (raw.lora_id ?? null) as number | null,
        medium: optString(raw.medium),
        lora_name: optString(raw.lora_name),
        cache_salt: optString(raw.cache_salt),
      };
      if (Array.isArray(raw.extra_keys)) {
        event.extra_keys = raw.extra_keys as EngineBlockStored['extra_keys'];
      }
      if (raw.group_idx !== undefined && raw.group_idx !== null) {
        event.group_idx = toInt(raw.group_idx, 'group_idx');
      }
      if (typeof raw.kv_cache_spec_kind === 'string') {
        event.kv_cache_spec_kind = raw.kv_cache_spec_kind;
      }
      if (Array.isArray(raw.block_mm_infos)) {
        event.block_mm_infos = parseMmInfos(raw.block_mm_infos);
      }
      return event;
    }
    case 'BlockRemoved': {
      const event: EngineBlockRemoved = {
        type: 'BlockRemoved',
        block_hashes: hashList(raw.block_hashes),
        medium: optString(raw.medium),
      };
      if (raw.group_idx !== undefined && raw.group_idx !== null) {
        event.group_idx = toInt(raw.group_idx, 'group_idx');
      }
      if (typeof raw.kv_cache_spec_kind === 'string') {
        event.kv_cache_spec_kind = raw.kv_cache_spec_kind;
      }
      return event;
    }
    case 'AllBlocksCleared':
      return { type: 'AllBlocksCleared' };
    default:
      return undefined;
  }
}

/** The msgpack payload `[ts, events, dp_rank]` (or a map with those names); unknown tags dropped. */
export function parseEngineBatch(payload: Uint8Array): EngineEventBatch {
  const value = decodeMsgpack(payload);
  const [ts, events, dpRank] = Array.isArray(value)
    ? value
    : isMap(value)
    ? [value.ts, value.events, value.data_parallel_rank ?? value.dp_rank]
    : [];
  if (!Array.isArray(events)) throw new EngineEventError('The payload has no events array');
  const parsed: EngineEvent[] = [];
  for (const raw of events) {
    const event = parseEvent(raw);
    if (event) parsed.push(event);
  }
  return {
    ts: typeof ts === 'number' ? ts : Number(ts ?? 0),
    events: parsed,
    dp_rank: dpRank === null || dpRank === undefined ? null : toInt(dpRank, 'dp_rank'),
  };
}

export interface EngineMessage {
  topic: string;
  seq: bigint;
  payload: Uint8Array;
}

/** Splits a ZMQ message; undefined unless it is exactly 3 frames with an 8-byte seq. */
export function splitEngineMessage(frames: readonly Uint8Array[]): EngineMessage | undefined {
  if (frames.length !== 3 || frames[1]!.length !== 8) return undefined;
  const seqFrame = frames[1]!;
  return {
    topic: new TextDecoder().decode(frames[0]),
    seq: new DataView(seqFrame.buffer, seqFrame.byteOffset, 8).getBigUint64(0, false),
    payload: frames[2]!,
  };
}

/* ------------------------------------------------------------------------------------------ */
/* Encoder (tests and fake engines)                                                            */
/* ------------------------------------------------------------------------------------------ */

export interface EncodeEngineOptions {
  /** `array` (msgspec array_like, what vLLM sends) or `map`. @default 'array' */
  form?: 'array' | 'map';
  /** Write hashes as signed i64, as Python engines do. @default true */
  signedHashes?: boolean;
}

/** The msgpack payload of a batch. */
export function encodeEngineBatch(
  batch: EngineEventBatch,
  options: EncodeEngineOptions = {},
): Uint8Array {
  const signed = options.signedHashes ?? true;
  const h = (value: bigint): bigint | number => {
    const v = signed ? BigInt.asIntN(64, value) : value;
    // Small values go as plain ints, as msgpack writers do.
    return v >= -(2n ** 31n) && v < 2n ** 32n ? Number(v) : v;
  };
  const events = batch.events.map((event) => {
    if (options.form === 'map') {
      const out: Record<string, unknown> = { ...event };
      if ('block_hashes' in event) out.block_hashes = event.block_hashes.map(h);
      if (event.type === 'BlockStored') {
        out.parent_block_hash = event.parent_block_hash === null
          ? null
          : h(event.parent_block_hash);
      }
      return out;
    }
    switch (event.type) {
      case 'BlockStored': {
        const out: unknown[] = [
          'BlockStored',
          event.block_hashes.map(h),
          event.parent_block_hash === null ? null : h(event.parent_block_hash),
          event.token_ids,
          event.block_size,
          event.lora_id ?? null,
          event.medium ?? null,
          event.cache_salt ? { cache_salt: event.cache_salt } : event.lora_name ?? null,
          event.extra_keys ?? null,
        ];
        if (event.group_idx !== undefined) out.push(event.group_idx);
        if (event.kv_cache_spec_kind !== undefined) out.push(event.kv_cache_spec_kind);
        if (event.block_mm_infos !== undefined) out.push(event.block_mm_infos);
        return out;
      }
      case 'BlockRemoved': {
        const out: unknown[] = ['BlockRemoved', event.block_hashes.map(h), event.medium ?? null];
        if (event.group_idx !== undefined) out.push(event.group_idx);
        if (event.kv_cache_spec_kind !== undefined) out.push(event.kv_cache_spec_kind);
        return out;
      }
      case 'AllBlocksCleared':
        return ['AllBlocksCleared'];
    }
  });
  return encodeMsgpack([batch.ts, events, batch.dp_rank]);
}

/** The 3 frames `[topic, seq u64 BE, payload]`. */
export function encodeEngineMessage(
  topic: string,
  seq: bigint | number,
  payload: Uint8Array,
): Uint8Array[] {
  const seqFrame = new Uint8Array(8);
  new DataView(seqFrame.buffer).setBigUint64(0, BigInt(seq), false);
  return [new TextEncoder().encode(topic), seqFrame, payload];
}

/* ------------------------------------------------------------------------------------------ */
/* Conversion to RouterEvents                                                                  */
/* ------------------------------------------------------------------------------------------ */

const encoder = new TextEncoder();
const HEX64 = /^[0-9a-fA-F]{64}$/;
const CACHE_SALT_PREFIX = 'dynamo-cache-salt:';

/**
 * MM hashes per block from `extra_keys`: a bare string counts only as a 64-hex digest (its first
 * 16 hex digits); an `[identifier, offset]` pair also hashes other identifiers with XXH3 seed 0.
 */
function mmFromExtraKeys(
  extraKeys: ReadonlyArray<ExtraKey[] | null>,
  loraName: string | null,
  hasher: BlockHasher,
): Array<bigint[] | null> {
  return extraKeys.map((keys) => {
    if (!Array.isArray(keys)) return null;
    const out: bigint[] = [];
    for (const key of keys) {
      if (typeof key === 'string') {
        if (key === loraName) continue;
        if (HEX64.test(key)) out.push(BigInt(`0x${key.slice(0, 16)}`));
      } else if (Array.isArray(key) && typeof key[0] === 'string' && key[0] !== '') {
        const id = key[0];
        out.push(
          HEX64.test(id) ? BigInt(`0x${id.slice(0, 16)}`) : hasher.xxh3(encoder.encode(id), 0n),
        );
      }
    }
    return out.length > 0 ? out : null;
  });
}

/** A cache salt tagged `dynamo-cache-salt:` in the first block's extra_keys (vLLM path). */
function saltFromExtraKeys(
  extraKeys: ReadonlyArray<ExtraKey[] | null>,
  loraName: string | null,
): string | null {
  const first = extraKeys[0];
  if (!Array.isArray(first)) return null;
  let unmatchedLora = loraName;
  for (const key of first) {
    if (typeof key !== 'string') continue;
    if (unmatchedLora !== null && key === unmatchedLora) {
      unmatchedLora = null;
      continue;
    }
    if (key.startsWith(CACHE_SALT_PREFIX) && key.length > CACHE_SALT_PREFIX.length) {
      return key.slice(CACHE_SALT_PREFIX.length);
    }
  }
  return null;
}

export interface EngineEventDecoderOptions {
  hasher: BlockHasher;
  /** The frontend's `kv_block_size`: blocks of another size are not published. */
  blockSize: number;
  /** The worker these events describe. */
  workerId: bigint;
  /** dp_rank when the payload has none. @default 0 */
  defaultDpRank?: number;
  /** Warnings (partial blocks at most 3 times, self references, ignored tiers). @default none */
  onWarning?: (message: string, fields?: Record<string, unknown>) => void;
}

export interface EngineEventDecoder {
  /** Decodes one message payload (msgpack) into RouterEvents, assigning event ids. */
  decode(payload: Uint8Array): Promise<RouterEvent[]>;
  /** Converts an already parsed batch. */
  convert(batch: EngineEventBatch): Promise<RouterEvent[]>;
  /** The next event id for a dp_rank (ids start at 0). */
  nextEventId(dpRank: number): number;
}

export function createEngineEventDecoder(options: EngineEventDecoderOptions): EngineEventDecoder {
  const { hasher, blockSize, workerId } = options;
  const warn = options.onWarning ?? (() => {});
  const nextIds = new Map<number, number>();
  let partialWarnings = 0;
  const partial = (message: string, fields: Record<string, unknown>) => {
    if (partialWarnings++ < 3) warn(message, fields);
  };

  const takeId = (dpRank: number): number => {
    const id = nextIds.get(dpRank) ?? 0;
    nextIds.set(dpRank, id + 1);
    return id;
  };

  async function storedBlocks(event: EngineBlockStored): Promise<KvStoredBlock[]> {
    let tokens: number[];
    let eagle = false;
    const raw = event.token_ids as unknown[];
    if (raw.length > 0 && Array.isArray(raw[0])) {
      // Eagle bigrams [a, b]: the firsts, then the last pair's second.
      const pairs = raw as Array<[number, number]>;
      tokens = pairs.map((p) => Number(p[0]));
      tokens.push(Number(pairs[pairs.length - 1]![1]));
      eagle = true;
    } else tokens = raw.map(Number);

    const loraName = event.lora_name ?? null;
    const extraKeys = event.extra_keys ?? null;
    const cacheSalt = event.cache_salt ??
      (extraKeys ? saltFromExtraKeys(extraKeys, loraName) : null);
    const salt: HashSalt = { loraName, cacheSalt };
    const seed = await hasher.prepare(salt);

    const mm: Array<bigint[] | null> = event.block_mm_infos
      ? event.block_mm_infos.map((info) => info ? info.mm_objects.map((o) => o.mm_hash) : null)
      : extraKeys
      ? mmFromExtraKeys(extraKeys, loraName, hasher)
      : [];

    if (event.block_size !== blockSize) {
      if (event.block_hashes.length > 0) {
        partial(
          `Block not published: block size must be ${blockSize} tokens, it is ${event.block_size}`,
          { workerId: workerId.toString(16) },
        );
      }
      return [];
    }
    const append = eagle ? 1 : 0;
    let count = 0;
    while (count < event.block_hashes.length) {
      const end = count * blockSize + blockSize + append;
      if (end > tokens.length) {
        partial(`Block not published: token_ids too short: need ${end}, got ${tokens.length}`, {
          workerId: workerId.toString(16),
        });
        break;
      }
      count++;
    }
    if (count === 0) return [];

    let local: bigint[];
    if (!eagle) {
      local = hasher.localHashes(tokens, { blockSize, seed, end: count, mmHashes: mm });
    } else {
      local = [];
      for (let i = 0; i < count; i++) {
        const hashes = [...(mm[i] ?? [])].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
        const bytes = new Uint8Array((blockSize + 1) * 4 + hashes.length * 8);
        const view = new DataView(bytes.buffer);
        for (let t = 0; t <= blockSize; t++) {
          view.setUint32(t * 4, tokens[i * blockSize + t]!, true);
        }
        hashes.forEach((h, j) => view.setBigUint64((blockSize + 1) * 4 + j * 8, h, true));
        local.push(hasher.xxh3(bytes, seed.seed));
      }
    }
    return local.map((tokensHash, i) => {
      const block: KvStoredBlock = { block_hash: event.block_hashes[i]!, tokens_hash: tokensHash };
      const hashes = mm[i];
      if (hashes && hashes.length > 0) {
        block.mm_extra_info = { mm_objects: hashes.map((mm_hash) => ({ mm_hash, offsets: [] })) };
      }
      return block;
    });
  }

  async function convert(batch: EngineEventBatch): Promise<RouterEvent[]> {
    const dpRank = batch.dp_rank ?? options.defaultDpRank ?? 0;
    const out: RouterEvent[] = [];
    for (const event of batch.events) {
      if (event.type !== 'AllBlocksCleared') {
        if (!isMainAttention(event)) continue;
        const tier = storageTierOf(event.medium);
        if (tier !== 'device') continue;
      }
      switch (event.type) {
        case 'BlockStored': {
          const seen = new Set<bigint>();
          if (event.parent_block_hash !== null) seen.add(event.parent_block_hash);
          const selfReference = event.block_hashes.some((h) => seen.size === seen.add(h).size);
          if (selfReference) {
            warn('Self-referencing block: duplicate hash in a store event; dropping it', {
              workerId: workerId.toString(16),
            });
            out.push({
              worker_id: workerId,
              event: {
                event_id: takeId(dpRank),
                data: { removed: { block_hashes: [] } },
                dp_rank: dpRank,
              },
            });
            break;
          }
          const blocks = await storedBlocks(event);
          out.push({
            worker_id: workerId,
            event: {
              event_id: takeId(dpRank),
              data: { stored: { parent_hash: event.parent_block_hash, blocks } },
              dp_rank: dpRank,
            },
          });
          break;
        }
        case 'BlockRemoved':
          out.push({
            worker_id: workerId,
            event: {
              event_id: takeId(dpRank),
              data: { removed: { block_hashes: event.block_hashes } },
              dp_rank: dpRank,
            },
          });
          break;
        case 'AllBlocksCleared':
          out.push({
            worker_id: workerId,
            event: { event_id: takeId(dpRank), data: 'cleared', dp_rank: dpRank },
          });
          break;
      }
    }
    return out;
  }

  return {
    decode: (payload) => convert(parseEngineBatch(payload)),
    convert,
    nextEventId: (dpRank) => nextIds.get(dpRank) ?? 0,
  };
}

/* ------------------------------------------------------------------------------------------ */
/* Subscribing to an engine                                                                    */
/* ------------------------------------------------------------------------------------------ */

export interface EngineEventSubscriptionOptions {
  network: Network;
  /** The engine's PUB endpoint, e.g. `tcp://10.0.0.5:5557`. */
  endpoint: string;
  decoder: EngineEventDecoder;
  /** Called in message order with each message's events (possibly none). */
  onEvents: (events: RouterEvent[], message: { topic: string; seq: bigint }) => void;
  /** Topic prefix filter. @default '' (everything) */
  topic?: string;
  /** Malformed messages and connection errors. @default ignore */
  onError?: (error: unknown) => void;
  /** @default 100 */
  reconnectMinMs?: number;
  /** @default 5000 */
  reconnectMaxMs?: number;
}

export interface EngineEventSubscription {
  /** Resolves once connected and subscribed (bounded). */
  ready(timeoutMs?: number): Promise<void>;
  /** Messages skipped because they were not 3 frames with an 8-byte seq. */
  readonly skipped: number;
  close(): Promise<void>;
}

/** Connects a SUB socket to an engine and feeds decoded RouterEvents to `onEvents`, in order. */
export function subscribeEngineEvents(
  options: EngineEventSubscriptionOptions,
): EngineEventSubscription {
  const onError = options.onError ?? (() => {});
  let chain = Promise.resolve();
  let skipped = 0;
  const socket = createZmqSubscriber({
    network: options.network,
    reconnectMinMs: options.reconnectMinMs,
    reconnectMaxMs: options.reconnectMaxMs,
    onError: (error) => onError(error),
    onMessage(frames) {
      const message = splitEngineMessage(frames);
      if (!message) {
        skipped++;
        return;
      }
      // Decoding may wait for a salted seed: keep messages in order.
      chain = chain
        .then(() => options.decoder.decode(message.payload))
        .then((events) => options.onEvents(events, { topic: message.topic, seq: message.seq }))
        .catch(onError);
    },
  });
  socket.subscribe(options.topic ?? '');
  socket.connect(options.endpoint);
  return {
    ready: (timeoutMs) => socket.ready(timeoutMs),
    get skipped() {
      return skipped;
    },
    async close() {
      await socket.close();
      await chain;
    },
  };
}
