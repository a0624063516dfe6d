/**
 * Per-choice postprocessing of a worker's `LLMEngineOutput` stream (reference §9.5, Dynamo's
 * `backend.rs` `Decoder`): token ids -> text deltas (incremental detokenizer), stop token ids
 * (hidden: EOS, unless `ignore_eos`; visible: `stop_token_ids`), user stop strings, `min_tokens`,
 * and the engine's finish reason mapped to OpenAI's.
 */
import type { LLMEngineOutput } from '../plane/worker.ts';
import { createDecodeStream } from './detokenizer.ts';
import { type CompiledStops, createStopMatcher } from './stops.ts';
import type { Tokenizer } from './tokenizer.ts';

export type OpenAIFinishReason = 'stop' | 'length' | 'content_filter' | 'cancelled' | 'error';

export interface PostprocessorOptions {
  tokenizer: Tokenizer;
  /** The prompt's ids, to decode the first generated tokens in context. @default [] */
  promptIds?: readonly number[];
  /** User stop strings. @default [] */
  stop?: readonly string[] | CompiledStops;
  /**
   * Stop ids whose text is emitted (`stop_token_ids`, integer `stop` entries); an id in both
   * lists is visible (Dynamo moves a tool parser's end token that is also EOS here).
   * @default []
   */
  stopTokenIds?: readonly number[];
  /** Stop ids whose text is not emitted: the model's EOS ids, unless `ignore_eos`. @default [] */
  hiddenStopTokenIds?: readonly number[];
  /** No stop (id or string) ends the stream before this many generated tokens. @default 0 */
  minTokens?: number;
  /** Emit a matched stop string (`include_stop_str_in_output`). @default false */
  includeStopStr?: boolean;
  /** Leave special tokens out of the text. @default false */
  skipSpecialTokens?: boolean;
}

export interface PostprocessedChunk {
  /** Text to send; `''` when the ids completed no character (the HTTP layer drops those). */
  text: string;
  /** Ids generated in this chunk up to and including a stop id (usage counts them all). */
  tokenIds: number[];
  /** Set once, on the chunk that ends the choice. */
  finishReason?: OpenAIFinishReason;
  /** The matched stop string or stop id; absent for an engine-side EOS. */
  stopReason?: string | number;
  /** The engine's error message when `finishReason` is `error`. */
  error?: string;
  /**
   * The postprocessor itself ended the choice (a stop string or stop id the engine did not act
   * on): the caller must stop the upstream generation. Later chunks yield nothing.
   */
  stopped?: boolean;
}

export interface Postprocessor {
  push(output: LLMEngineOutput): PostprocessedChunk;
  /** The stream ended without a finish reason: release held-back text. */
  finish(): { text: string };
  /** True once the choice has finished (finish reason seen, stop matched, or `finish()`). */
  readonly finished: boolean;
}

/** Engine finish reason -> OpenAI `finish_reason` (reference §9.5). */
export function mapFinishReason(
  reason: NonNullable<LLMEngineOutput['finish_reason']>,
): { finishReason: OpenAIFinishReason; error?: string } {
  if (typeof reason === 'object') return { finishReason: 'error', error: reason.error };
  switch (reason) {
    case 'length':
      return { finishReason: 'length' };
    case 'content_filter':
      return { finishReason: 'content_filter' };
    default: // eos, stop, cancelled, abort
      return { finishReason: 'stop' };
  }
}

export function createPostprocessor(options: PostprocessorOptions): Postprocessor {
  const detokenizer = createDecodeStream(options.tokenizer, {
    promptIds: options.promptIds,
    skipSpecialTokens: options.skipSpecialTokens,
  });
  const matcher = createStopMatcher({
    stop: options.stop ?? [],
    includeStopStr: options.includeStopStr,
  });
  const visible = new Set(options.stopTokenIds ?? []);
  const hidden = new Set(options.hiddenStopTokenIds ?? []);
  const checkIds = visible.size > 0 || hidden.size > 0;
  const minTokens = options.minTokens ?? 0;
  let generated = 0;
  let finished = false;

  /** Text through the stop matcher; `matched` once a stop string ends the choice. */
  const filter = (text: string): { text: string; matched?: string } =>
    text ? matcher.push(text) : { text: '' };

  /** Everything still held back, at the end of the choice. */
  const drain = (): { text: string; matched?: string } => {
    const last = filter(detokenizer.flush());
    return last.matched !== undefined ? last : { text: last.text + matcher.flush() };
  };

  return {
    get finished() {
      return finished;
    },
    push(output) {
      if (finished) return { text: '', tokenIds: [] };
      const ids = output.token_ids ?? [];
      const before = generated;

      // The first stop id at or past min_tokens ends the chunk; a hidden one adds no text.
      let end = ids.length;
      let cut = ids.length;
      let stopId: number | undefined;
      if (checkIds) {
        for (let i = 0; i < ids.length; i++) {
          const id = ids[i]!;
          if (before + i + 1 >= minTokens && (hidden.has(id) || visible.has(id))) {
            stopId = id;
            end = i + 1;
            cut = visible.has(id) ? i + 1 : i;
            break;
          }
        }
      }
      const consumed = end === ids.length ? [...ids] : ids.slice(0, end);
      generated += consumed.length;

      let text = '';
      let matched: string | undefined;
      if (ids.length > 0) {
        // Ids below min_tokens bypass the stop strings; the rest go through them.
        const free = Math.min(Math.max(minTokens - 1 - before, 0), cut);
        if (free > 0) text = detokenizer.push(ids.slice(0, free));
        const checked = filter(detokenizer.push(ids.slice(free, cut)));
        text += checked.text;
        matched = checked.matched;
      } else if (typeof output.text === 'string') {
        // A text-input engine sends text, not ids.
        ({ text, matched } = filter(output.text));
      }

      if (matched !== undefined) {
        finished = true;
        return {
          text,
          tokenIds: consumed,
          finishReason: 'stop',
          stopReason: matched,
          stopped: true,
        };
      }
      if (stopId !== undefined) {
        finished = true;
        const rest = drain();
        return {
          text: text + rest.text,
          tokenIds: consumed,
          finishReason: 'stop',
          stopReason: rest.matched ?? stopId,
          stopped: true,
        };
      }
      if (output.finish_reason) {
        finished = true;
        const rest = drain();
        text += rest.text;
        if (rest.matched !== undefined) {
          return { text, tokenIds: consumed, finishReason: 'stop', stopReason: rest.matched };
        }
        const mapped = mapFinishReason(output.finish_reason);
        const chunk: PostprocessedChunk = { text, tokenIds: consumed, ...mapped };
        if (output.stop_reason !== undefined && output.stop_reason !== null) {
          chunk.stopReason = output.stop_reason;
        }
        return chunk;
      }
      return { text, tokenIds: consumed };
    },
    finish() {
      if (finished) return { text: '' };
      finished = true;
      return { text: drain().text };
    },
  };
}
