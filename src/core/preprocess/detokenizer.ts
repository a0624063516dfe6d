/**
 * Incremental detokenization: token ids in, text deltas out, never a broken character. Byte-level
 * BPE splits one emoji or CJK character over several tokens; decoding such a token alone yields
 * U+FFFD. The standard technique (HF `DecodeStream`, vLLM): decode a small window of ids before
 * the new ones (the "prefix"), decode the window plus the new ids, and emit the difference once
 * it no longer ends in U+FFFD. The window only covers the last emitted step, so the work per
 * token is bounded; a window that fills up with ids that never complete a character (an engine
 * emitting invalid bytes) is released as it is after `MAX_PENDING_IDS` ids.
 */
import type { DecodeOptions, IncrementalDecoder, Tokenizer } from './tokenizer.ts';

export interface DecodeStreamOptions {
  /**
   * The prompt's ids: the last few seed the window, so the first generated token decodes in
   * context (SentencePiece tokenizers drop a leading space at the start of a text).
   * @default []
   */
  promptIds?: readonly number[];
  /** Leave special tokens out of the text. @default false */
  skipSpecialTokens?: boolean;
  /**
   * Decode with the library's window even when the tokenizer has a byte table (tests compare
   * the two). @default false
   */
  library?: boolean;
}

export type DecodeStream = IncrementalDecoder;

/** How many prompt ids seed the prefix window (vLLM's initial offset). */
const PROMPT_CONTEXT = 5;
/** No character needs more byte tokens than this; past it, held ids are released anyway. */
const MAX_PENDING_IDS = 16;
const REPLACEMENT = '\uFFFD';

export function createDecodeStream(
  tokenizer: Tokenizer,
  options: DecodeStreamOptions = {},
): DecodeStream {
  // Byte-level BPE: one table lookup per token (byte-level.ts); a byte-level decode needs no
  // prompt context.
  const table = options.library ? undefined : tokenizer.decodeStream?.(options);
  if (table) return table;
  const decodeOptions: DecodeOptions = { skipSpecialTokens: options.skipSpecialTokens ?? false };
  const seed = options.promptIds?.slice(-PROMPT_CONTEXT) ?? [];
  /** ids[0..prefixEnd) is the context window, ids[prefixEnd..) not yet emitted. */
  let ids: number[] = [...seed];
  let prefixEnd = ids.length;
  let prefixText: string | undefined;

  const step = (force: boolean): string => {
    if (ids.length === prefixEnd) return '';
    prefixText ??= tokenizer.decode(ids.slice(0, prefixEnd), decodeOptions);
    const text = tokenizer.decode(ids, decodeOptions);
    const pending = ids.length - prefixEnd;
    const complete = text.length > prefixText.length && !text.endsWith(REPLACEMENT);
    if (!complete && !force && pending < MAX_PENDING_IDS) return '';
    const delta = text.length > prefixText.length ? text.slice(prefixText.length) : '';
    // The ids just emitted become the next window.
    ids = ids.slice(prefixEnd);
    prefixEnd = ids.length;
    prefixText = undefined;
    return delta;
  };

  return {
    push(newIds) {
      if (newIds.length === 0) return '';
      for (const id of newIds) ids.push(id);
      return step(false);
    },
    flush() {
      return step(true);
    },
  };
}
