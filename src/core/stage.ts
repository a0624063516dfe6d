/**
 * One layer of a stream that turns each item below it into at most one item above, synchronously
 * (unwrap worker items, postprocess a choice, shape client chunks). Stages stacked on each other
 * fuse: the outermost one awaits the source once per item and runs every layer's `step` in turn,
 * so a stream costs one await per item however many layers it has (no generator per layer).
 *
 * A layer says what it does with an item (`step`), what it does before reading (`before`: end
 * without reading, e.g. after its last item), what a failure below or in its own step becomes
 * (`error`: rethrow, mapped or not, or end quietly), and what it releases when the consumer stops
 * early (`close`).
 */

/** A step produced nothing for this item: read the next one. */
export const AGAIN: unique symbol = Symbol('again');
export type Step<T> = IteratorResult<T> | typeof AGAIN;

export const DONE: IteratorReturnResult<undefined> = Object.freeze({
  value: undefined,
  done: true,
});

export abstract class Stage<In, Out> implements AsyncIterableIterator<Out> {
  readonly #inner: Stage<unknown, In> | undefined;
  readonly #source: AsyncIterator<unknown>;
  #used = false;
  #closed = false;

  constructor(upstream: AsyncIterable<In>) {
    if (upstream instanceof Stage && !upstream.#used) {
      // Fused: this stage reads the source beneath and runs `upstream`'s steps itself.
      upstream.#used = true;
      this.#inner = upstream as Stage<unknown, In>;
      this.#source = upstream.#source;
    } else {
      this.#source = upstream[Symbol.asyncIterator]() as AsyncIterator<unknown>;
    }
  }

  /** Before reading: a result without reading (the layer is over), or `AGAIN`. */
  protected before(): Step<Out> {
    return AGAIN;
  }

  /** One result from below: an item, or the end. What it throws goes to `error`. */
  protected abstract step(result: IteratorResult<In>): Step<Out>;

  /** A failure below (or in `step`): throw it (mapped or not), or end with a result. */
  protected error(error: unknown): IteratorResult<Out> {
    throw error;
  }

  /** The consumer stopped early (`return()`); also called for layers below. Once. */
  protected close(): void {}

  /** Closes the layers below this one and the source (this layer ended the stream early). */
  protected closeBelow(): void {
    if (this.#inner) this.#inner.#closeAll();
    void Promise.resolve().then(() => this.#source.return?.()).catch(() => {});
  }

  [Symbol.asyncIterator]() {
    return this;
  }

  async next(): Promise<IteratorResult<Out>> {
    this.#used = true;
    for (;;) {
      if (this.#closed) return DONE;
      const early = this.#before();
      if (early !== AGAIN) return early;
      let raw: IteratorResult<unknown>;
      try {
        raw = await this.#source.next();
      } catch (error) {
        if (this.#closed) return DONE;
        return this.#fail(error);
      }
      if (this.#closed) return DONE;
      const out = this.#advance(raw);
      if (out !== AGAIN) return out;
    }
  }

  async return(): Promise<IteratorResult<Out>> {
    if (!this.#closed) {
      this.#closeAll();
      await this.#source.return?.();
    }
    return DONE;
  }

  #closeAll(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.close();
    if (this.#inner) this.#inner.#closeAll();
  }

  #own(result: Step<In>): Step<Out> {
    if (result === AGAIN) return AGAIN;
    try {
      return this.step(result);
    } catch (error) {
      return this.error(error);
    }
  }

  #before(): Step<Out> {
    const own = this.before();
    if (own !== AGAIN || !this.#inner) return own;
    let below: Step<In>;
    try {
      below = this.#inner.#before();
    } catch (error) {
      return this.error(error);
    }
    return this.#own(below);
  }

  #advance(raw: IteratorResult<unknown>): Step<Out> {
    if (!this.#inner) return this.#own(raw as IteratorResult<In>);
    let below: Step<In>;
    try {
      below = this.#inner.#advance(raw);
    } catch (error) {
      return this.error(error);
    }
    return this.#own(below);
  }

  #fail(error: unknown): IteratorResult<Out> {
    if (!this.#inner) return this.error(error);
    let below: IteratorResult<In>;
    try {
      below = this.#inner.#fail(error);
    } catch (thrown) {
      return this.error(thrown);
    }
    const out = this.#own(below);
    return out === AGAIN ? DONE : out;
  }
}
