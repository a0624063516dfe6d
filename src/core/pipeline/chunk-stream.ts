/**
 * A generation's choice events as client chunks, in one iterator: each event feeds the request's
 * metric guard and is shaped into a chunk (or dropped), an optional last chunk (usage) follows the
 * events, and the guard (and the `--dyn-debug-perf` trace) is closed once however the stream
 * ends: done, failed, or cancelled (the client left, or stopped reading).
 */
import type { ChoiceEvent, Generation } from './generate.ts';
import type { PerfTrace } from './perf.ts';
import type { RequestMetrics } from './request-metrics.ts';

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

class ChunkStream<T> implements AsyncIterableIterator<T> {
  #options: ChunkStreamOptions<T>;
  #events: AsyncIterator<ChoiceEvent>;
  /** 0 reading events, 1 events over (the last chunk may follow), 2 done. */
  #state = 0;

  constructor(options: ChunkStreamOptions<T>) {
    this.#options = options;
    this.#events = options.generation.events[Symbol.asyncIterator]();
  }

  [Symbol.asyncIterator]() {
    return this;
  }

  async next(): Promise<IteratorResult<T>> {
    const o = this.#options;
    if (this.#state === 0) {
      try {
        for (;;) {
          const next = await this.#events.next();
          if (next.done) break;
          const event = next.value;
          o.metrics.tokens(event.tokenIds.length);
          const chunk = o.shape(event);
          if (chunk !== undefined) return { value: chunk, done: false };
        }
      } catch (error) {
        this.#state = 2;
        this.#closeMetrics(o.signal.aborted ? 'cancelled' : 'error');
        o.perf?.finish({ ...o.perfFields?.(), outcome: 'error' });
        throw error;
      }
      this.#state = 1;
      this.#closeMetrics(o.signal.aborted ? 'cancelled' : 'done');
      const last = o.last?.();
      if (last !== undefined) return { value: last, done: false };
    }
    if (this.#state === 1) {
      this.#state = 2;
      o.perf?.finish({ ...o.perfFields?.(), outcome: 'done' });
    }
    return { value: undefined, done: true };
  }

  async return(): Promise<IteratorResult<T>> {
    const o = this.#options;
    if (this.#state !== 2) {
      if (this.#state === 0) this.#closeMetrics('cancelled');
      this.#state = 2;
      o.perf?.finish({ ...o.perfFields?.(), outcome: 'cancelled' });
      await this.#events.return?.();
    }
    return { value: undefined, done: true };
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
