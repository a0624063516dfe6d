import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { createPromMetricFactory } from '../../adapters/prom-metrics.ts';
import { resolveConfig } from '../config.ts';
import { type Core, createCore } from '../core.ts';
import type { ServedModel } from '../discovery/models.ts';
import { silentLogger } from '../logger.ts';
import { PlaneError } from '../plane/errors.ts';
import { CancelledError } from '../errors.ts';
import type { PlaneRequest, RequestPlaneClient } from '../plane/types.ts';
import type { LLMEngineOutput, PreprocessedRequest } from '../plane/worker.ts';
import { dispatchMigratable } from './migration.ts';

type Script = (request: PreprocessedRequest, signal: AbortSignal) => AsyncIterable<unknown>;

/** A core whose plane plays `scripts` in order, one per send, recording each request. */
function harness(argv: string[], scripts: Script[]) {
  const sent: PreprocessedRequest[] = [];
  const plane: RequestPlaneClient = {
    send(_address, request: PlaneRequest, { signal }) {
      const script = scripts[sent.length];
      sent.push(request.body as PreprocessedRequest);
      if (!script) return Promise.reject(new PlaneError('cannot_connect', 'no more workers'));
      const items = script(request.body as PreprocessedRequest, signal);
      // A script may hang before its first item, as a frozen worker does: send() waits with it.
      return (items as unknown as { ready?: Promise<void> }).ready
        ? (items as unknown as { ready: Promise<void> }).ready.then(() => items)
        : Promise.resolve(items);
    },
    close: () => Promise.resolve(),
  };
  const resolved = resolveConfig({ argv, env: {} });
  assert.ok(resolved.ok);
  const metrics = createPromMetricFactory();
  const core: Core = createCore({ logger: silentLogger, metrics, plane }, resolved.config);
  const endpoint = { namespace: 'dynamo', component: 'backend', endpoint: 'generate' };
  const card = {
    display_name: 'm',
    kv_cache_block_size: 4,
    model_type: 'Chat | Completions',
    model_input: 'Tokens' as const,
    runtime_config: {},
  };
  for (const id of ['a1', 'b2', 'c3']) {
    core.models.addCard({ ...endpoint, instanceId: id }, card);
    core.models.setInstance({ instanceId: id, endpoint, transport: { tcp: `h:1/${id}/generate` } });
  }
  const model = core.models.get('m') as ServedModel;
  return { core, model, sent, metrics };
}

const token = (id: number, extra: Partial<LLMEngineOutput> = {}) => ({
  data: { token_ids: [id], ...extra },
});
const body = (extra: Partial<PreprocessedRequest> = {}): PreprocessedRequest => ({
  model: 'm',
  token_ids: [1, 2, 3, 4],
  stop_conditions: { max_tokens: 5 },
  ...extra,
});
const call = (signal = new AbortController().signal) => ({
  requestId: 'r1',
  headers: {},
  signal,
});

async function drain(stream: AsyncIterable<unknown>): Promise<LLMEngineOutput[]> {
  const out: LLMEngineOutput[] = [];
  for await (const item of stream) out.push(item as LLMEngineOutput);
  return out;
}

/** Yields `tokens` then breaks like a dead worker. */
const breaksAfter = (...tokens: number[]): Script =>
  async function* () {
    for (const t of tokens) yield token(t);
    throw new PlaneError('disconnected', 'Stream ended before generation completed');
  };

describe('request migration', () => {
  test('continues on another worker with the tokens so far and the rest of max_tokens', async () => {
    const h = harness(['--migration-limit', '3'], [
      breaksAfter(10, 11),
      async function* () {
        yield token(12);
        yield token(13);
        yield token(14, {
          finish_reason: 'length',
          completion_usage: { prompt_tokens: 6, completion_tokens: 3, total_tokens: 9 },
        });
      },
    ]);
    const dispatched = await dispatchMigratable(h.core, h.model, call(), body());
    const items = await drain(dispatched.stream);
    assert.deepEqual(items.flatMap((i) => i.token_ids), [10, 11, 12, 13, 14]);
    assert.deepEqual(h.sent[1]?.token_ids, [1, 2, 3, 4, 10, 11]);
    assert.equal(h.sent[1]?.stop_conditions?.max_tokens, 3);
    // Usage is the client's view: the original prompt, every generated token.
    assert.deepEqual(items.at(-1)?.completion_usage, {
      prompt_tokens: 4,
      completion_tokens: 5,
      total_tokens: 9,
    });
    const text = await h.metrics.render();
    assert.match(text, /model_migration_total\{model="m",migration_type="ongoing_request"\} 1/);
  });

  test('model_migration_duration_seconds records a migration that recovered, by type and outcome', async () => {
    const h = harness(['--migration-limit', '3'], [
      breaksAfter(10),
      async function* () {
        yield token(11, { finish_reason: 'length' });
      },
    ]);
    const dispatched = await dispatchMigratable(h.core, h.model, call(), body());
    await drain(dispatched.stream);
    const text = await h.metrics.render();
    assert.match(
      text,
      /model_migration_duration_seconds_count\{model="m",migration_type="ongoing_request",outcome="success"\} 1/,
    );
    assert.doesNotMatch(text, /outcome="failure"\} 1/);
  });

  test('past --migration-max-seq-len a request is no longer migrated, and the counter says so', async () => {
    // Prompt 4 + 2 generated = 6 > 5: the worker dying after that ends the request.
    const h = harness(['--migration-limit', '3', '--migration-max-seq-len', '5'], [
      breaksAfter(10, 11),
      async function* () {
        yield token(12, { finish_reason: 'length' });
      },
    ]);
    const dispatched = await dispatchMigratable(h.core, h.model, call(), body());
    await assert.rejects(
      drain(dispatched.stream),
      (e: unknown) => e instanceof PlaneError && e.kind === 'disconnected',
    );
    assert.equal(h.sent.length, 1);
    const text = await h.metrics.render();
    assert.match(text, /model_migration_max_seq_len_exceeded_total\{model="m"\} 1/);
  });

  test('within --migration-max-seq-len a request still migrates', async () => {
    const h = harness(['--migration-limit', '3', '--migration-max-seq-len', '7'], [
      breaksAfter(10, 11),
      async function* () {
        yield token(12, { finish_reason: 'length' });
      },
    ]);
    const dispatched = await dispatchMigratable(h.core, h.model, call(), body());
    const items = await drain(dispatched.stream);
    assert.deepEqual(items.flatMap((i) => i.token_ids), [10, 11, 12]);
    assert.doesNotMatch(await h.metrics.render(), /max_seq_len_exceeded_total\{model="m"\} 1/);
  });

  test('stops after the limit with the worker error', async () => {
    const h = harness(['--migration-limit', '1'], [breaksAfter(10), breaksAfter(11)]);
    const dispatched = await dispatchMigratable(h.core, h.model, call(), body());
    await assert.rejects(
      drain(dispatched.stream),
      (e: unknown) => e instanceof PlaneError && e.kind === 'disconnected',
    );
    assert.equal(h.sent.length, 2);
  });

  test('a cancelled request is never migrated', async () => {
    const controller = new AbortController();
    const h = harness(['--migration-limit', '3'], [
      async function* () {
        yield token(10);
        controller.abort();
        throw new PlaneError('disconnected', 'gone');
      },
    ]);
    const dispatched = await dispatchMigratable(h.core, h.model, call(controller.signal), body());
    await assert.rejects(drain(dispatched.stream));
    assert.equal(h.sent.length, 1);
  });

  test('a client that leaves before the worker answers gets a cancellation, not a 503', async () => {
    const controller = new AbortController();
    const h = harness([], [
      () => {
        controller.abort();
        throw new PlaneError('disconnected', 'Stream ended before generation completed');
      },
    ]);
    await assert.rejects(
      dispatchMigratable(h.core, h.model, call(controller.signal), body()),
      (e: unknown) => e instanceof CancelledError && e.status === 499,
    );
  });

  test('off by default, and for guided decoding', async () => {
    for (
      const [argv, extra] of [
        [[], {}],
        [['--migration-limit', '3'], { sampling_options: { guided_decoding: { json: {} } } }],
      ] as const
    ) {
      const h = harness([...argv], [breaksAfter(10), breaksAfter(11)]);
      const dispatched = await dispatchMigratable(h.core, h.model, call(), body(extra));
      await assert.rejects(drain(dispatched.stream));
      assert.equal(h.sent.length, 1);
    }
  });

  test('a worker lost after its last token ends the stream with length, no new request', async () => {
    const h = harness(['--migration-limit', '3'], [breaksAfter(10, 11, 12, 13, 14)]);
    const dispatched = await dispatchMigratable(h.core, h.model, call(), body());
    const items = await drain(dispatched.stream);
    assert.equal(items.at(-1)?.finish_reason, 'length');
    assert.equal(items.flatMap((i) => i.token_ids).length, 5);
    assert.equal(h.sent.length, 1);
  });

  test('a worker that hangs before its first item and leaves discovery is migrated', async () => {
    const frozen: Script = (_request, signal) => {
      // Accepted, then nothing: send() never resolves until the attempt is abandoned.
      const ready = new Promise<void>((_, reject) =>
        signal.addEventListener('abort', () => reject(signal.reason), { once: true })
      );
      return Object.assign((async function* () {})(), { ready });
    };
    const h = harness(['--migration-limit', '2'], [
      frozen,
      async function* () {
        yield token(10, { finish_reason: 'stop' });
      },
    ]);
    const endpoint = { namespace: 'dynamo', component: 'backend', endpoint: 'generate' };
    const started = dispatchMigratable(h.core, h.model, call(), body());
    // The frozen worker (the first one round-robin picks) leaves discovery.
    await new Promise((resolve) => setTimeout(resolve, 0));
    h.core.models.removeInstance(endpoint, 'a1');
    const dispatched = await started;
    assert.deepEqual((await drain(dispatched.stream)).flatMap((i) => i.token_ids), [10]);
    assert.equal(h.sent.length, 2);
  });

  test('a worker that cannot be reached at the start is retried on another (new_request)', async () => {
    const h = harness(['--migration-limit', '2'], [
      () => {
        throw new PlaneError('disconnected', 'closed at once');
      },
      async function* () {
        yield token(10, { finish_reason: 'stop' });
      },
    ]);
    const dispatched = await dispatchMigratable(h.core, h.model, call(), body());
    assert.deepEqual((await drain(dispatched.stream)).flatMap((i) => i.token_ids), [10]);
    assert.match(
      await h.metrics.render(),
      /model_migration_total\{model="m",migration_type="new_request"\} 1/,
    );
  });
});
