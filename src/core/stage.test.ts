import assert from 'node:assert/strict';
import { test } from 'node:test';
import { AGAIN, DONE, Stage, type Step } from './stage.ts';

/** A source that counts its reads and whether it was closed. */
function source(items: unknown[], options: { failAt?: number } = {}) {
  const state = { reads: 0, returned: false };
  const iterator: AsyncIterableIterator<unknown> = {
    [Symbol.asyncIterator]() {
      return this;
    },
    next() {
      state.reads++;
      if (options.failAt === state.reads) return Promise.reject(new Error('lost'));
      const value = items.shift();
      return Promise.resolve(
        value === undefined ? { value: undefined, done: true as const } : { value, done: false },
      );
    },
    return() {
      state.returned = true;
      return Promise.resolve({ value: undefined, done: true as const });
    },
  };
  return { iterator, state };
}

/** Adds `add` to numbers, drops odd results, logs what happens to it. */
class Add extends Stage<number, number> {
  log: string[];
  add: number;
  constructor(up: AsyncIterable<number>, add: number, log: string[]) {
    super(up);
    this.add = add;
    this.log = log;
  }
  protected step(result: IteratorResult<number>): Step<number> {
    if (result.done) {
      this.log.push(`end+${this.add}`);
      return DONE;
    }
    const v = result.value + this.add;
    if (v === 13) throw new Error(`unlucky at +${this.add}`);
    return v % 2 === 0 ? { value: v, done: false } : AGAIN;
  }
  protected override error(error: unknown): never {
    this.log.push(`error+${this.add}: ${(error as Error).message}`);
    throw error;
  }
  protected override close(): void {
    this.log.push(`close+${this.add}`);
  }
}

async function collect(it: AsyncIterable<number>) {
  const out: number[] = [];
  for await (const v of it) out.push(v);
  return out;
}

test('stacked stages read their source once per item and run every step in turn', async () => {
  const log: string[] = [];
  const { iterator, state } = source([1, 2, 3, 4, 5]);
  const top = new Add(new Add(iterator as AsyncIterable<number>, 1, log), 2, log);
  assert.deepEqual(await collect(top), [4, 6, 8]);
  assert.equal(state.reads, 6);
  assert.deepEqual(log, ['end+1', 'end+2']);
});

test('a failure below goes through each layer error(), innermost first', async () => {
  const log: string[] = [];
  const { iterator } = source([1, 3, 5], { failAt: 2 });
  const top = new Add(new Add(iterator as AsyncIterable<number>, 1, log), 2, log);
  await assert.rejects(collect(top), /lost/);
  assert.deepEqual(log, ['error+1: lost', 'error+2: lost']);
  const thrown: string[] = [];
  const { iterator: second } = source([12]);
  await assert.rejects(
    collect(new Add(new Add(second as AsyncIterable<number>, 1, thrown), 2, thrown)),
    /unlucky at \+1/,
  );
  assert.deepEqual(thrown, ['error+1: unlucky at +1', 'error+2: unlucky at +1']);
});

test('return() closes every layer once, and the source', async () => {
  const log: string[] = [];
  const { iterator, state } = source([1, 3, 5, 7]);
  const top = new Add(new Add(iterator as AsyncIterable<number>, 1, log), 2, log);
  assert.deepEqual(await top.next(), { value: 4, done: false });
  await top.return();
  await top.return();
  assert.deepEqual(log, ['close+2', 'close+1']);
  assert.equal(state.returned, true);
  assert.deepEqual(await top.next(), DONE);
});

test('a stage over a stream another reader already started does not fuse', async () => {
  const log: string[] = [];
  const { iterator } = source([1, 3]);
  const inner = new Add(iterator as AsyncIterable<number>, 1, log);
  assert.deepEqual(await inner.next(), { value: 2, done: false });
  assert.deepEqual(await collect(new Add(inner, 2, log)), [6]);
});
