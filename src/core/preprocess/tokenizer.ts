/**
 * A Hugging Face `tokenizer.json` behind a small port, backed by `@huggingface/tokenizers` (pure
 * TypeScript, no native code: the same on Node, Bun and Deno; why this library is in
 * docs/preprocessing.md). Parsed from text: no file or network access.
 */
import { Tokenizer as HfTokenizer } from '@huggingface/tokenizers';
import {
  buildByteLevelTable,
  type ByteLevelTable,
  createByteLevelDecodeStream,
  type IncrementalDecoder,
} from './byte-level.ts';

export type { IncrementalDecoder };

export interface EncodeOptions {
  /**
   * Add the tokenizer's post-processor tokens (a BOS for Llama-style tokenizers). Chat prompts
   * rendered by a template already carry them: encode those with `false`.
   * @default true
   */
  addSpecialTokens?: boolean;
}

export interface DecodeOptions {
  /** Drop special tokens (`<|im_end|>`, ...) from the text. @default false */
  skipSpecialTokens?: boolean;
}

export interface Tokenizer {
  encode(text: string, options?: EncodeOptions): number[];
  /** Ids the vocabulary does not have are skipped, as the Rust `tokenizers` crate does. */
  decode(ids: readonly number[], options?: DecodeOptions): string;
  tokenToId(token: string): number | undefined;
  /** Vocabulary entries including added tokens (may be below the model's padded `vocab_size`). */
  readonly vocabSize: number;
  /**
   * A decode stream reading a per-model id -> bytes table, for byte-level BPE tokenizers (it
   * decodes exactly as `decode`; the table is built on first use); undefined for other decoders,
   * which use the library's window (`createDecodeStream`). @default undefined
   */
  decodeStream?(options: DecodeOptions): IncrementalDecoder | undefined;
}

export interface TokenizerFiles {
  /** The text of `tokenizer.json`. */
  tokenizerJson: string;
  /** The text of `tokenizer_config.json`. */
  tokenizerConfigJson?: string;
}

/** `tokenizer.json` or `tokenizer_config.json` could not be turned into a tokenizer. */
export class TokenizerLoadError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'TokenizerLoadError';
  }
}

function parseObject(text: string, what: string): Record<string, unknown> {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    throw new TokenizerLoadError(`${what} is not valid JSON: ${(error as Error).message}`, {
      cause: error,
    });
  }
  if (!value || typeof value !== 'object' || Array.isArray(value)) {
    throw new TokenizerLoadError(`${what} is not a JSON object`);
  }
  return value as Record<string, unknown>;
}

/**
 * Builds a tokenizer from the text of `tokenizer.json` (and `tokenizer_config.json`, whose
 * `additional_special_tokens` count as special). Async so that an implementation that needs to
 * instantiate WASM can sit behind the same signature.
 */
export function loadTokenizer(files: TokenizerFiles): Promise<Tokenizer> {
  try {
    return Promise.resolve(createTokenizer(files));
  } catch (error) {
    return Promise.reject(error);
  }
}

function createTokenizer(files: TokenizerFiles): Tokenizer {
  const json = parseObject(files.tokenizerJson, 'tokenizer.json');
  const config = files.tokenizerConfigJson === undefined
    ? {}
    : parseObject(files.tokenizerConfigJson, 'tokenizer_config.json');
  let hf: HfTokenizer;
  try {
    hf = new HfTokenizer(json, config);
  } catch (error) {
    throw new TokenizerLoadError(`Cannot load tokenizer.json: ${(error as Error).message}`, {
      cause: error,
    });
  }
  let vocabSize: number | undefined;
  let table: ByteLevelTable | null | undefined;
  return {
    encode(text, options = {}) {
      return hf.encode(text, { add_special_tokens: options.addSpecialTokens ?? true }).ids;
    },
    decode(ids, options = {}) {
      let known = ids as number[];
      for (const id of ids) {
        if (hf.id_to_token(id) === undefined) {
          known = ids.filter((i) => hf.id_to_token(i) !== undefined);
          break;
        }
      }
      if (known.length === 0) return '';
      // The Rust crate (what Dynamo uses) never applies transformers' space clean-up.
      return hf.decode(known, {
        skip_special_tokens: options.skipSpecialTokens ?? false,
        clean_up_tokenization_spaces: false,
      });
    },
    tokenToId(token) {
      return hf.token_to_id(token);
    },
    get vocabSize() {
      return vocabSize ??= hf.get_vocab(true).size;
    },
    decodeStream(options) {
      if (table === undefined) table = byteLevelTableOf(json, hf) ?? null;
      return table ? createByteLevelDecodeStream(table, options) : undefined;
    },
  };
}

/** What `decode()` reads of the library's tokenizer (its fields, at the pinned version). */
interface HfInternals {
  model?: { vocab?: unknown };
  special_tokens?: unknown;
  added_tokens?: unknown;
  decoder?: { end_of_word_suffix?: unknown } | null;
}

/**
 * The byte table when `decode()` is plain byte-level (decoder `ByteLevel`, no end-of-word
 * suffix); undefined otherwise, or when the library's fields are not where expected.
 */
function byteLevelTableOf(
  json: Record<string, unknown>,
  hf: HfTokenizer,
): ByteLevelTable | undefined {
  const decoder = json.decoder as { type?: unknown } | null | undefined;
  if (decoder?.type !== 'ByteLevel') return undefined;
  const inner = hf as unknown as HfInternals;
  const vocab = inner.model?.vocab;
  if (!Array.isArray(vocab) || !Array.isArray(inner.special_tokens)) return undefined;
  if (!Array.isArray(inner.added_tokens) || inner.decoder?.end_of_word_suffix) return undefined;
  return buildByteLevelTable({
    tokens: vocab as Array<string | undefined>,
    addedTokens: new Set(
      (inner.added_tokens as Array<{ content?: unknown }>).map((t) => String(t.content)),
    ),
    specialTokens: new Set(inner.special_tokens as string[]),
  });
}
