/**
 * Request migration under a worker crash, with real processes on the shared etcd: four mocker
 * processes of one worker each, 64 concurrent streams, one worker SIGKILLed mid-run. With
 * `--migration-limit 3` no client request fails and every stream has exactly its `max_tokens`.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  currentRuntime,
  type RunningMockerProcess,
  startFrontend,
  startMocker,
} from '../helpers/process.ts';
import { sseDataOf } from '../helpers/sse.ts';
import { waitFor } from '../helpers/wait.ts';
import {
  instanceIds,
  randomNamespace,
  sameIds,
  SEEN_MS,
  START_MS,
  tracker,
} from '../e2e/_workers.ts';

const ETCD = ['--discovery-backend', 'etcd'];
const STREAMS = 64;
const MAX_TOKENS = 60;

interface StreamResult {
  status: number;
  done: boolean;
  completionTokens: number;
  /** A token has arrived. */
  started?: boolean;
  error?: string;
}

/** One streaming completion read to its end, counting tokens as they arrive. */
async function stream(
  url: string,
  model: string,
  progress: { started: number },
  i: number,
) {
  const res = await fetch(`${url}/v1/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({
      model,
      prompt: `stream ${i}: tell me a long story`,
      max_tokens: MAX_TOKENS,
      ignore_eos: true,
      stream: true,
      stream_options: { include_usage: true },
    }),
    signal: AbortSignal.timeout(120_000),
  });
  const result: StreamResult = { status: res.status, done: false, completionTokens: 0 };
  if (res.status !== 200 || !res.body) {
    result.error = await res.text();
    return result;
  }
  for await (const data of sseDataOf(res.body)) {
    if (data === '[DONE]') {
      result.done = true;
      continue;
    }
    const chunk = JSON.parse(data) as {
      choices?: unknown[];
      usage?: { completion_tokens: number } | null;
      error?: { message: string };
    };
    if (chunk.error) result.error = chunk.error.message;
    if (chunk.choices?.length && !result.started) {
      result.started = true;
      progress.started++;
    }
    if (chunk.usage) result.completionTokens = chunk.usage.completion_tokens;
  }
  return result;
}

describe(`request migration on ${currentRuntime()}`, () => {
  test(`${STREAMS} streams, a worker SIGKILLed mid-run, --migration-limit 3: none fails`, () =>
    scenario((victim) => victim.kill('SIGKILL')));

  test('a worker that hangs (SIGSTOP) leaves discovery when its lease expires; its streams migrate', () =>
    scenario((victim, t) => {
      victim.kill('SIGSTOP');
      // Resumed at cleanup, so it can exit.
      t.defer(() => Promise.resolve(void victim.kill('SIGCONT')));
    }));
});

async function scenario(
  disrupt: (victim: RunningMockerProcess, t: ReturnType<typeof tracker>) => void,
) {
  {
    const t = tracker();
    try {
      const ns = randomNamespace();
      const env = { ETCD_LEASE_TTL: '3' };
      const mocker = () =>
        startMocker([
          ...ETCD,
          '--endpoint',
          `dyn://${ns}.backend.generate`,
          '--model-name',
          'migrating',
          // Slow enough that every stream is still generating when the last one starts: the
          // frontend admits 64 requests over a second or more on 2 shared cores, and a stream
          // that has not reached the victim by the kill is just sent elsewhere (no migration).
          '--speedup-ratio',
          '0.1',
        ], { env });
      const [frontend, ...workers] = await t.all(
        [
          startFrontend([...ETCD, '--namespace', ns, '--migration-limit', '3'], {
            env,
            timeoutMs: START_MS,
          }),
          mocker(),
          mocker(),
          mocker(),
          mocker(),
        ] as const,
      );
      await waitFor(
        async () => sameIds(await instanceIds(frontend.url), workers.flatMap((w) => w.workers)),
        { timeoutMs: SEEN_MS, intervalMs: 50, what: 'the 4 workers in /health' },
      );
      const progress = { started: 0 };
      const running = Array.from(
        { length: STREAMS },
        (_, i) => stream(frontend.url, 'migrating', progress, i),
      );
      // Kill a worker once every stream is under way, so a quarter of them are on the victim.
      await waitFor(() => progress.started === STREAMS, {
        timeoutMs: 60_000,
        what: 'the streams to be under way',
      });
      const victim = workers[1]!;
      disrupt(victim, t);
      const results = await Promise.all(running);
      const failed = results.filter((r) => r.status !== 200 || !r.done || r.error);
      assert.deepEqual(failed, [], 'no client request failed');
      for (const r of results) assert.equal(r.completionTokens, MAX_TOKENS);
      const metrics = await (await fetch(`${frontend.url}/metrics`)).text();
      const migrated = metrics.split('\n').filter((l) =>
        l.startsWith('dynamo_frontend_model_migration_total{') &&
        l.includes('migration_type="ongoing_request"')
      ).reduce((sum, l) => sum + Number(l.split(' ').pop()), 0);
      // Round-robin gave the victim a quarter of the streams, all still generating at the kill.
      assert.ok(
        migrated >= STREAMS / 4,
        `each of the lost worker's streams was migrated (${migrated}); victim ${victim.workers.join()} exited ${
          victim.child.exitCode ?? victim.child.signalCode
        }; migration series: ${
          metrics.split('\n').filter((l) => l.includes('migration')).join(' | ')
        }; frontend warnings: ${
          frontend.stderr().split('\n').filter((l) => /"level":"(warn|error)"/.test(l))
            .slice(0, 8).join('\n')
        }`,
      );
    } finally {
      await t.cleanup();
    }
  }
}
