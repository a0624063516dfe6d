/**
 * Byte-level BPE detokenizing from a table (GPT-2, Llama 3, Qwen: `decoder.type` `ByteLevel`):
 * each id maps to its bytes once per model, and a stream feeds them to a streaming `TextDecoder`,
 * one lookup per token. The library path (`detokenizer.ts`) decodes a window of ids twice per
 * token instead, which is what other decoders (SentencePiece/Metaspace, WordPiece) still need.
 *
 * It reproduces `@huggingface/tokenizers`' `decode()` exactly: ids the vocabulary lacks are
 * skipped; with `skipSpecialTokens`, tokens whose text is a special token's are dropped; an added
 * token is written as its text and ends the byte run before it (the library decodes each run of
 * byte tokens on its own, so a character left incomplete there becomes U+FFFD); a character
 * outside the byte alphabet decodes as byte 0, as the library's lookup does.
 */
/** Token ids in, the text they completed out (`createDecodeStream` returns one). */
export interface IncrementalDecoder {
  /** Feeds generated ids; returns the text they completed (possibly `''`). */
  push(ids: readonly number[]): string;
  /** Releases what is held back (an incomplete character becomes U+FFFD). */
  flush(): string;
}

/** Per-model id -> bytes table; built once (`buildByteLevelTable`). */
export interface ByteLevelTable {
  /** Bytes of id `i`: `bytes.subarray(offsets[i], offsets[i + 1])`. */
  readonly bytes: Uint8Array;
  readonly offsets: Uint32Array;
  /** Per id: `UNKNOWN`, or `BYTES` / `ADDED`, plus `SPECIAL`. */
  readonly kinds: Uint8Array;
  /** The text of each added token, by id. */
  readonly added: ReadonlyMap<number, string>;
}

const UNKNOWN = 0;
const BYTES = 1;
const ADDED = 2;
const SPECIAL = 4;

/** GPT-2's bytes_to_unicode, reversed: code point -> byte (0 for code points outside it). */
function byteOfCodePoint(): Uint8Array {
  const table = new Uint8Array(324);
  let next = 256;
  for (let b = 0; b < 256; b++) {
    const printable = (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || b >= 174;
    table[printable ? b : next++] = b;
  }
  return table;
}

export interface ByteLevelVocab {
  /** Token text by id (holes for ids the vocabulary lacks). */
  tokens: ArrayLike<string | undefined>;
  /** Texts of the added tokens (written as they are). */
  addedTokens: ReadonlySet<string>;
  /** Texts that `skipSpecialTokens` drops. */
  specialTokens: ReadonlySet<string>;
}

export function buildByteLevelTable(vocab: ByteLevelVocab): ByteLevelTable {
  const { tokens, addedTokens, specialTokens } = vocab;
  const byteOf = byteOfCodePoint();
  const n = tokens.length;
  const kinds = new Uint8Array(n);
  const offsets = new Uint32Array(n + 1);
  const added = new Map<number, string>();
  let total = 0;
  for (let id = 0; id < n; id++) {
    const token = tokens[id];
    if (typeof token !== 'string') continue;
    let kind = addedTokens.has(token) ? ADDED : BYTES;
    if (specialTokens.has(token)) kind |= SPECIAL;
    kinds[id] = kind;
    if (kind & ADDED) added.set(id, token);
    // One byte per code point.
    else for (const _ of token) total++;
  }
  const bytes = new Uint8Array(total);
  let at = 0;
  for (let id = 0; id < n; id++) {
    offsets[id] = at;
    if ((kinds[id]! & 3) !== BYTES) continue;
    for (const char of tokens[id]!) {
      const cp = char.codePointAt(0)!;
      bytes[at++] = cp < byteOf.length ? byteOf[cp]! : 0;
    }
  }
  offsets[n] = at;
  return { bytes, offsets, kinds, added };
}

/**
 * A decode stream over `table`: `push` returns the text the ids completed, with the library
 * stream's boundaries (text ending inside a character or in U+FFFD waits, as there), `flush`
 * releases the rest (an incomplete character as U+FFFD).
 */
export function createByteLevelDecodeStream(
  table: ByteLevelTable,
  options: { skipSpecialTokens?: boolean } = {},
): IncrementalDecoder {
  const { bytes, offsets, kinds, added } = table;
  const skip = options.skipSpecialTokens === true;
  const n = kinds.length;
  const decoder = new TextDecoder('utf-8', { fatal: false, ignoreBOM: true });
  /** The last bytes fed (up to 3, newest last): an incomplete character at the end? */
  let tail = 0;
  let tailLength = 0;
  /** Decoded text not emitted yet, and how many ids it covers (the library's window). */
  let held = '';
  let heldIds = 0;
  const feed = (id: number): string => {
    const kind = Number.isInteger(id) && id >= 0 && id < n ? kinds[id]! : UNKNOWN;
    if (kind === UNKNOWN || (skip && (kind & SPECIAL))) return '';
    if (kind & ADDED) {
      // The byte run before an added token is decoded on its own.
      const rest = tailLength > 0 ? decoder.decode() : '';
      tail = tailLength = 0;
      return rest + added.get(id)!;
    }
    const start = offsets[id]!;
    const end = offsets[id + 1]!;
    if (start === end) return '';
    for (let i = Math.max(start, end - 3); i < end; i++) {
      tail = ((tail << 8) | bytes[i]!) & 0xffffff;
      if (tailLength < 3) tailLength++;
    }
    return decoder.decode(bytes.subarray(start, end), { stream: true });
  };
  return {
    push(ids) {
      if (ids.length === 0) return '';
      for (let i = 0; i < ids.length; i++) held += feed(ids[i]!);
      heldIds += ids.length;
      // As the library's window: text that ends inside a character, or in U+FFFD, waits for the
      // next ids (at most MAX_PENDING_IDS of them).
      const complete = held !== '' && !incomplete(tail, tailLength) &&
        held.charCodeAt(held.length - 1) !== 0xfffd;
      if (!complete && heldIds < MAX_PENDING_IDS) return '';
      const text = held;
      held = '';
      heldIds = 0;
      return text;
    },
    flush() {
      const text = held + (tailLength > 0 ? decoder.decode() : '');
      held = '';
      heldIds = 0;
      tail = tailLength = 0;
      return text;
    },
  };
}

/** As `detokenizer.ts`: no character needs more tokens than this. */
const MAX_PENDING_IDS = 16;

/**
 * Whether the stream's last bytes (`tail`, up to 3, newest in the low byte) are the valid start
 * of a character still missing bytes: what a streaming `TextDecoder` holds back (WHATWG UTF-8).
 */
function incomplete(tail: number, length: number): boolean {
  for (let back = 1; back <= length; back++) {
    const b = (tail >>> ((back - 1) * 8)) & 0xff;
    if (b >= 0x80 && b <= 0xbf) continue;
    const needs = b >= 0xc2 && b <= 0xdf
      ? 1
      : b >= 0xe0 && b <= 0xef
      ? 2
      : b >= 0xf0 && b <= 0xf4
      ? 3
      : 0;
    if (needs < back) return false;
    if (back === 1) return true;
    // The byte after the lead has a narrower range after E0, ED, F0 and F4.
    const second = (tail >>> ((back - 2) * 8)) & 0xff;
    const low = b === 0xe0 ? 0xa0 : b === 0xf0 ? 0x90 : 0x80;
    const high = b === 0xed ? 0x9f : b === 0xf4 ? 0x8f : 0xbf;
    return second >= low && second <= high;
  }
  return false;
}
