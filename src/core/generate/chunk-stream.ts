/**
 * A generation's choice events as client chunks, in one iterator: each event feeds the request's
 * metric guard and is shaped into a chunk (or dropped), an optional last chunk (usage) follows the
 * events, and the guard (and the `--dyn-debug-perf` trace) is closed once however the stream
 * ends: done, failed, or cancelled (the client left, or stopped reading). A `Stage`: over a
 * one-choice generation it runs the choice's and the worker items' steps in the same loop.
 */
import type { ChoiceEvent, Generation } from './generate.ts';
import type { PerfTrace } from './perf.ts';
import type { RequestMetrics } from '../metrics/request-metrics.ts';
import { AGAIN, DONE, Stage, type Step } from '../stage.ts';

export interface ChunkStreamOptions<T> {
  generation: Generation;
  metrics: RequestMetrics;
  /** The chunk of an event, or undefined to drop it. */
  shape: (event: ChoiceEvent) => T | undefined;
  /** Aborts when the client goes away: an end then counts as cancelled. */
  signal: AbortSignal;
  /** The chunk after the last event (usage), if any. @default none */
  last?: () => T | undefined;
  /** The request's perf trace, finished with the outcome. @default none */
  perf?: PerfTrace;
  /** Fields of the perf line. @default none */
  perfFields?: () => Record<string, unknown>;
}

export function chunkStream<T>(options: ChunkStreamOptions<T>): AsyncIterableIterator<T> {
  return new ChunkStream(options);
}

class ChunkStream<T> extends Stage<ChoiceEvent, T> {
  #options: ChunkStreamOptions<T>;
  /** 0 reading events, 1 events over (the last chunk went out), 2 done. */
  #state = 0;

  constructor(options: ChunkStreamOptions<T>) {
    super(options.generation.events);
    this.#options = options;
  }

  protected override before(): Step<T> {
    if (this.#state === 0) return AGAIN;
    if (this.#state === 1) {
      this.#state = 2;
      this.#options.perf?.finish({ ...this.#options.perfFields?.(), outcome: 'done' });
    }
    return DONE;
  }

  protected step(result: IteratorResult<ChoiceEvent>): Step<T> {
    const o = this.#options;
    if (result.done) {
      this.#state = 1;
      this.#closeMetrics(o.signal.aborted ? 'cancelled' : 'done');
      const last = o.last?.();
      return last !== undefined ? { value: last, done: false } : this.before();
    }
    const event = result.value;
    o.metrics.tokens(event.tokenIds.length);
    const chunk = o.shape(event);
    return chunk === undefined ? AGAIN : { value: chunk, done: false };
  }

  protected override error(error: unknown): never {
    const o = this.#options;
    if (this.#state === 0) {
      this.#state = 2;
      this.#closeMetrics(o.signal.aborted ? 'cancelled' : 'error');
      o.perf?.finish({ ...o.perfFields?.(), outcome: 'error' });
    }
    throw error;
  }

  protected override close(): void {
    const o = this.#options;
    if (this.#state === 2) return;
    if (this.#state === 0) this.#closeMetrics('cancelled');
    this.#state = 2;
    o.perf?.finish({ ...o.perfFields?.(), outcome: 'cancelled' });
  }

  /** Workers report prefix-cache hits with their last chunk, so the prompt is recorded here. */
  #closeMetrics(outcome: 'done' | 'error' | 'cancelled') {
    const { generation, metrics } = this.#options;
    const usage = generation.usage();
    metrics.prompt(usage.promptTokens, usage.cachedTokens);
    metrics.finish({
      errorType: outcome === 'done' ? '' : outcome === 'cancelled' ? 'cancelled' : 'internal',
      outputTokens: usage.completionTokens,
    });
  }
}
