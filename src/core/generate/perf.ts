/**
 * `--dyn-debug-perf`: where one request's time goes in the frontend, logged as one structured
 * line (`msg: "request timings"`) when the request ends. Stages, in milliseconds on the core's
 * monotonic clock:
 *
 * - `load_ms`: getting the model's preprocessor (0 once loaded);
 * - `template_ms`, `tokenize_ms`: chat-template render and prompt tokenization, measured where
 *   they run (a preprocessing thread with `--dyn-preprocess-workers`);
 * - `preprocess_ms`: the whole preprocessing call as the request saw it (includes the hop to a
 *   preprocessing thread and its queue);
 * - `dispatch_ms`: routing and sending until every worker accepted the request;
 * - `first_token_ms`: from the request's start to its first generated token;
 * - `detokenize_ms` (with `detokenize_calls`): total time in the tokenizer's decode while
 *   streaming;
 * - `total_ms`: from the start until the stream ended.
 */
import type { Core } from '../core.ts';
import type { RenderedPrompt } from '../preprocess/preprocessor.ts';
import type { DecodeOptions, Tokenizer } from '../preprocess/tokenizer.ts';

export type PerfStage = 'load' | 'preprocess' | 'dispatch';

export interface PerfTrace {
  /** Ends `stage`: the time since the previous mark (or the start) is recorded for it. */
  mark(stage: PerfStage): void;
  /** Records where the preprocessing call spent its time, when it says. */
  rendered(prompt: Pick<RenderedPrompt, 'timings'>): void;
  /** The tokenizer to detokenize with: `decode` calls are timed. */
  tokenizer(tokenizer: Tokenizer): Tokenizer;
  /** Writes the log line (once); `fields` are added as they are. */
  finish(fields: Record<string, unknown>): void;
}

const round = (ms: number) => Math.round(ms * 1000) / 1000;

/** What a perf trace reads: the `--dyn-debug-perf` flag, the clock, the log it writes to. */
export type PerfServices = Pick<Core, 'config' | 'monotonic' | 'logger'>;

/** A trace when `--dyn-debug-perf` is on, else `undefined` (nothing measured, nothing logged). */
export function startPerfTrace(
  core: PerfServices,
  labels: { requestId: string; model: string; endpoint: string },
): PerfTrace | undefined {
  if (!core.config.dynDebugPerf) return undefined;
  const now = () => core.monotonic();
  const start = now();
  let last = start;
  const stages: Record<string, number> = {};
  let firstToken: number | undefined;
  let detokenizeMs = 0;
  let detokenizeCalls = 0;
  let done = false;
  return {
    mark(stage) {
      const t = now();
      stages[`${stage}_ms`] = round(t - last);
      last = t;
    },
    rendered({ timings }) {
      if (!timings) return;
      stages.template_ms = round(timings.templateMs);
      stages.tokenize_ms = round(timings.tokenizeMs);
    },
    tokenizer(tokenizer) {
      const timed = (decode: () => string): string => {
        const t = now();
        firstToken ??= t;
        try {
          return decode();
        } finally {
          detokenizeMs += now() - t;
          detokenizeCalls++;
        }
      };
      return {
        encode: (text, options) => tokenizer.encode(text, options),
        tokenToId: (token) => tokenizer.tokenToId(token),
        get vocabSize() {
          return tokenizer.vocabSize;
        },
        ...(tokenizer.decodeStream
          ? {
            decodeStream: (options: DecodeOptions) => {
              const inner = tokenizer.decodeStream!(options);
              return inner && {
                push: (ids: readonly number[]) => timed(() => inner.push(ids)),
                flush: () => timed(() => inner.flush()),
              };
            },
          }
          : {}),
        decode: (ids, options) => timed(() => tokenizer.decode(ids, options)),
      };
    },
    finish(fields) {
      if (done) return;
      done = true;
      core.logger.info('request timings', {
        request_id: labels.requestId,
        model: labels.model,
        endpoint: labels.endpoint,
        ...stages,
        first_token_ms: firstToken === undefined ? null : round(firstToken - start),
        detokenize_ms: round(detokenizeMs),
        detokenize_calls: detokenizeCalls,
        total_ms: round(now() - start),
        ...fields,
      });
    },
  };
}
