/**
 * KV block hashing as Dynamo's router does it (router reference §1): only full blocks are hashed;
 * a block's local hash is seeded XXH3-64 over its token ids as u32 little-endian bytes (followed by
 * the block's multimodal hashes, sorted, as u64 little-endian); the seed is 1337 salted with the
 * LoRA name and the cache namespace; sequence hashes chain `xxh3(le64(parent) || le64(local), 1337)`.
 * Every u64 is a BigInt.
 *
 * XXH3 comes from `hash-wasm` (WASM, every runtime). Its hashers load asynchronously and keep their
 * seed for life, so `createBlockHasher()` loads the seeds it always needs (1337, and 0 and 1 for the
 * salts) once; a salted seed is loaded once by `prepare()`. After that every call is synchronous.
 */
import { createXXHash3, type IHasher } from 'hash-wasm';

/** The seed of local hashes without salt, and of every sequence (chain) hash. */
export const KV_HASH_SEED = 1337n;

const U64_MASK = (1n << 64n) - 1n;

/** What salts a request's local block hashes. Empty strings count as absent. */
export interface HashSalt {
  /** LoRA adapter name (`routing.lora_name`). @default undefined (no salt) */
  loraName?: string | null;
  /** Cache namespace (`routing.cache_salt` / `nvext.cache_salt`). @default undefined (no salt) */
  cacheSalt?: string | null;
}

/** A seed ready for synchronous hashing, from `prepare()`; hold it for a request's lifetime. */
export interface PreparedSeed {
  readonly seed: bigint;
  /** hash-wasm's XXH3 state right after init with `seed` (null for the built-in seeds). */
  readonly state: Uint8Array | null;
}

export interface LocalHashOptions extends HashSalt {
  /** Tokens per block; a trailing partial block is not hashed. */
  blockSize: number;
  /**
   * The seed to hash with, from `prepare()`; it overrides `loraName`/`cacheSalt`, which otherwise
   * must name a salt that is ready (`isReady()`). @default the seed of the salt fields
   */
  seed?: PreparedSeed;
  /** Index of the first block to hash. @default 0 */
  start?: number;
  /** Index one past the last block to hash; clamped to the full blocks present. @default all */
  end?: number;
  /**
   * Multimodal hashes per block index (absolute): appended to that block's bytes, sorted
   * ascending, as u64 little-endian. @default undefined (none)
   */
  mmHashes?: ReadonlyArray<readonly bigint[] | null | undefined>;
}

export interface BlockHashes {
  /** `LocalBlockHash` of each full block. */
  local: bigint[];
  /** Chained `SequenceHash` of each full block. */
  sequence: bigint[];
}

export interface BlockHasher {
  /** XXH3-64 of `bytes` with `seed`: 0, 1, 1337 or a seed `prepare()` loaded and still cached. */
  xxh3(bytes: Uint8Array, seed: bigint): bigint;
  /** The local-hash seed for a salt: `1337 + xxh3(lora, 0) + xxh3(namespace, 1) mod 2^64`. */
  seedFor(salt?: HashSalt): bigint;
  /** Whether hashing with this salt is ready without `prepare()` (no salt always is). */
  isReady(salt?: HashSalt): boolean;
  /** Loads the seed for a salt (async once per distinct seed, then cached). */
  prepare(salt?: HashSalt): Promise<PreparedSeed>;
  /** Local hashes of the full blocks of `tokens` in `[start, end)`. Throws for an unready salt. */
  localHashes(tokens: ArrayLike<number>, options: LocalHashOptions): bigint[];
  /** `seq = xxh3(le64(parent) || le64(local), 1337)`; with no parent, `local` itself. */
  sequenceHash(parent: bigint | null, local: bigint): bigint;
  /** Chains `local` hashes, starting from `parent` (null: the first block is the root). */
  sequenceHashes(local: readonly bigint[], parent?: bigint | null): bigint[];
  /** Local and sequence hashes of every full block of `tokens` (`start`/`end` are ignored). */
  blockHashes(tokens: ArrayLike<number>, options: LocalHashOptions): BlockHashes;
  /**
   * `localHashes()` into a `BigUint64Array` (no BigInt per block): the fast path for
   * `KvIndexer.findMatches()`.
   */
  localHashes64(tokens: ArrayLike<number>, options: LocalHashOptions): BigUint64Array;
  /** `sequenceHashes()` over a `BigUint64Array`, into a `BigUint64Array`. */
  sequenceHashes64(local: BigUint64Array, parent?: bigint | null): BigUint64Array;
}

export interface BlockHasherOptions {
  /** Salted seeds kept ready (least recently prepared dropped first; 580 bytes each). @default 4096 */
  maxCachedSeeds?: number;
}

const toSeedParts = (seed: bigint): [number, number] => [
  Number(seed & 0xffffffffn),
  Number((seed >> 32n) & 0xffffffffn),
];

const present = (s: string | null | undefined): s is string =>
  s !== undefined && s !== null &&
  s.length > 0;

/**
 * Loads XXH3 (WASM) once and returns a hasher that then hashes synchronously. It reuses its
 * hashers and one scratch buffer. Salted seeds share one WASM instance: `prepare()` creates a
 * hasher for the seed once, keeps its initial state (580 bytes), and later hashes `load()` it.
 */
export async function createBlockHasher(options: BlockHasherOptions = {}): Promise<BlockHasher> {
  const maxCachedSeeds = options.maxCachedSeeds ?? 4096;
  const [chain, zero, one] = await Promise.all([
    createXXHash3(...toSeedParts(KV_HASH_SEED)),
    createXXHash3(0, 0),
    createXXHash3(1, 0),
  ]);
  const builtIn = new Map<bigint, PreparedSeed>([
    [KV_HASH_SEED, { seed: KV_HASH_SEED, state: null }],
    [0n, { seed: 0n, state: null }],
    [1n, { seed: 1n, state: null }],
  ]);
  const builtInHasher = (seed: bigint): IHasher => seed === 0n ? zero : seed === 1n ? one : chain;
  /** Salted seeds, least recently prepared first. */
  const prepared = new Map<bigint, PreparedSeed>();
  const encoder = new TextEncoder();

  const littleEndian = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;
  let bytes = new Uint8Array(256);
  let words = new Uint32Array(bytes.buffer);
  let view = new DataView(bytes.buffer);
  const ensure = (size: number) => {
    if (bytes.length >= size) return;
    let length = bytes.length;
    while (length < size) length *= 2;
    bytes = new Uint8Array(length);
    words = new Uint32Array(bytes.buffer);
    view = new DataView(bytes.buffer);
  };
  const pair = new Uint8Array(16);
  const pairView = new DataView(pair.buffer);

  const out8 = new Uint8Array(8);
  const out8View = new DataView(out8.buffer);
  const read = (digest: Uint8Array): bigint => {
    out8.set(digest);
    return out8View.getBigUint64(0, false);
  };
  const digest = (seed: PreparedSeed, data: Uint8Array): bigint => {
    // Any instance can run a salted seed: load() replaces its whole state, and the next init()
    // of a built-in hasher restores its own seed.
    const hasher = seed.state === null ? builtInHasher(seed.seed).init() : zero.load(seed.state);
    return read(hasher.update(data).digest('binary'));
  };

  const seeds = new Map<string, bigint>();
  const seedFor = (salt?: HashSalt): bigint => {
    const lora = salt?.loraName;
    const namespace = salt?.cacheSalt;
    if (!present(lora) && !present(namespace)) return KV_HASH_SEED;
    const key = `${lora ?? ''}\u0000${namespace ?? ''}`;
    let seed = seeds.get(key);
    if (seed === undefined) {
      seed = KV_HASH_SEED;
      if (present(lora)) seed += read(zero.init().update(encoder.encode(lora)).digest('binary'));
      if (present(namespace)) {
        seed += read(one.init().update(encoder.encode(namespace)).digest('binary'));
      }
      seed &= U64_MASK;
      if (seeds.size >= maxCachedSeeds) seeds.delete(seeds.keys().next().value!);
      seeds.set(key, seed);
    }
    return seed;
  };

  const lookup = (seed: bigint): PreparedSeed => {
    const found = builtIn.get(seed) ?? prepared.get(seed);
    if (!found) {
      throw new Error(`XXH3 seed "${seed}" is not loaded: await prepare() for its salt first`);
    }
    return found;
  };

  const sequenceHash = (parent: bigint | null, local: bigint): bigint => {
    if (parent === null) return local;
    pairView.setBigUint64(0, parent, true);
    pairView.setBigUint64(8, local, true);
    return read(chain.init().update(pair).digest('binary'));
  };

  const localHashes = (tokens: ArrayLike<number>, options: LocalHashOptions): bigint[] => {
    const { blockSize, mmHashes } = options;
    if (!(blockSize > 0)) return [];
    const full = Math.floor(tokens.length / blockSize);
    const start = Math.max(0, options.start ?? 0);
    const end = Math.min(full, options.end ?? full);
    const seed = options.seed ?? lookup(seedFor(options));
    const out: bigint[] = [];
    for (let block = start; block < end; block++) {
      const mm = mmHashes?.[block];
      const mmCount = mm?.length ?? 0;
      const size = blockSize * 4 + mmCount * 8;
      ensure(size);
      const first = block * blockSize;
      if (littleEndian) {
        for (let i = 0; i < blockSize; i++) words[i] = tokens[first + i]!;
      } else {
        for (let i = 0; i < blockSize; i++) view.setUint32(i * 4, tokens[first + i]!, true);
      }
      if (mm && mmCount > 0) {
        const sorted = [...mm].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
        for (let i = 0; i < mmCount; i++) {
          view.setBigUint64(blockSize * 4 + i * 8, sorted[i]! & U64_MASK, true);
        }
      }
      out.push(digest(seed, bytes.subarray(0, size)));
    }
    return out;
  };

  // The 64-bit fast path: digests (big-endian bytes) go straight into u32 halves.
  const outLo = littleEndian ? 0 : 1;
  const outHi = littleEndian ? 1 : 0;
  const digestInto = (
    hasher: IHasher,
    data: Uint8Array,
    out: Uint32Array,
    at: number,
  ) => {
    const d = hasher.update(data).digest('binary');
    out[at + outHi] = ((d[0]! << 24) | (d[1]! << 16) | (d[2]! << 8) | d[3]!) >>> 0;
    out[at + outLo] = ((d[4]! << 24) | (d[5]! << 16) | (d[6]! << 8) | d[7]!) >>> 0;
  };
  const localHashes64 = (tokens: ArrayLike<number>, options: LocalHashOptions): BigUint64Array => {
    const { blockSize, mmHashes } = options;
    if (!(blockSize > 0)) return new BigUint64Array(0);
    const full = Math.floor(tokens.length / blockSize);
    const start = Math.max(0, options.start ?? 0);
    const end = Math.min(full, options.end ?? full);
    if (end <= start) return new BigUint64Array(0);
    if (mmHashes !== undefined) return BigUint64Array.from(localHashes(tokens, options));
    const seed = options.seed ?? lookup(seedFor(options));
    const out = new BigUint64Array(end - start);
    const halves = new Uint32Array(out.buffer);
    const size = blockSize * 4;
    ensure(size);
    const block = bytes.subarray(0, size);
    const builtInSeed = seed.state === null ? builtInHasher(seed.seed) : null;
    for (let b = start, at = 0; b < end; b++, at += 2) {
      const first = b * blockSize;
      if (littleEndian) {
        for (let i = 0; i < blockSize; i++) words[i] = tokens[first + i]!;
      } else {
        for (let i = 0; i < blockSize; i++) view.setUint32(i * 4, tokens[first + i]!, true);
      }
      const hasher = builtInSeed ? builtInSeed.init() : zero.load(seed.state!);
      digestInto(hasher, block, halves, at);
    }
    return out;
  };
  const sequenceHashes64 = (
    local: BigUint64Array,
    parent: bigint | null = null,
  ): BigUint64Array => {
    const out = new BigUint64Array(local.length);
    if (local.length === 0) return out;
    const halves = new Uint32Array(out.buffer);
    let start = 0;
    if (parent === null) {
      out[0] = local[0]!;
      start = 1;
    } else {
      pairView.setBigUint64(0, parent, true);
    }
    const localBytes = new Uint8Array(local.buffer, local.byteOffset, local.length * 8);
    const outBytes = new Uint8Array(out.buffer);
    for (let i = start; i < local.length; i++) {
      if (i > 0) pair.set(outBytes.subarray((i - 1) * 8, i * 8), 0);
      pair.set(localBytes.subarray(i * 8, i * 8 + 8), 8);
      if (!littleEndian) {
        pairView.setBigUint64(0, i > 0 ? out[i - 1]! : parent!, true);
        pairView.setBigUint64(8, local[i]!, true);
      }
      digestInto(chain.init(), pair, halves, i * 2);
    }
    return out;
  };

  const sequenceHashes = (local: readonly bigint[], parent: bigint | null = null): bigint[] => {
    const out: bigint[] = [];
    let previous = parent;
    for (const hash of local) {
      previous = sequenceHash(previous, hash);
      out.push(previous);
    }
    return out;
  };

  return {
    xxh3: (data, seed) => digest(lookup(seed & U64_MASK), data),
    seedFor,
    isReady: (salt) => {
      const seed = seedFor(salt);
      return builtIn.has(seed) || prepared.has(seed);
    },
    prepare: async (salt) => {
      const seed = seedFor(salt);
      const known = builtIn.get(seed) ?? prepared.get(seed);
      if (known) return known;
      const hasher = await createXXHash3(...toSeedParts(seed));
      const ready: PreparedSeed = { seed, state: hasher.init().save() };
      if (prepared.size >= maxCachedSeeds) prepared.delete(prepared.keys().next().value!);
      prepared.set(seed, ready);
      return ready;
    },
    localHashes,
    localHashes64,
    sequenceHashes64,
    sequenceHash,
    sequenceHashes,
    blockHashes: (tokens, options) => {
      const local = localHashes(tokens, { ...options, start: 0, end: undefined });
      return { local, sequence: sequenceHashes(local) };
    },
  };
}
