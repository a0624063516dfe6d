/**
 * Load shedding across processes, the way it is deployed: two simulated workers in one
 * `switchboard mocker --num-workers 2` process, the frontend in another, file discovery, load
 * reports over a real nats-server (a private one), on every request plane, with the threshold
 * set by flag at start-up or by `POST /busy_threshold`. With eight 400-token streams running,
 * every new request is refused (overload status, `Retry-After`) for as long as they run, and
 * once they are gone requests pass again.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { type PrivateNats, startPrivateNats } from '../helpers/nats.ts';
import { currentRuntime, startFrontend, startMocker } from '../helpers/process.ts';
import { waitFor } from '../helpers/wait.ts';
import { instanceIds, sameIds, SEEN_MS, START_MS, tracker } from './_workers.ts';

const MODEL = 'shed-model';
const THRESHOLD = 0.0001;
const STREAMS = 8;
const FILE = ['--discovery-backend', 'file'];

const completion = (url: string, body: Record<string, unknown>) =>
  fetch(`${url}/v1/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ model: MODEL, ...body }),
  });

/** A 400-token stream, read in the background; `done` resolves when it ended. */
async function longStream(url: string, i: number) {
  const res = await completion(url, {
    prompt: Array.from({ length: 40 }, (_, k) => `stream${i} word${k}`).join(' '),
    max_tokens: 400,
    ignore_eos: true,
    stream: true,
  });
  if (res.status !== 200) {
    await res.body?.cancel();
    return { status: res.status };
  }
  const reader = res.body!.getReader();
  await reader.read(); // the first event: it runs
  let ended = false;
  const done = (async () => {
    try {
      while (!(await reader.read()).done) { /* keep reading */ }
    } catch {
      // cancelled
    }
    ended = true;
  })();
  return {
    status: 200,
    ended: () => ended,
    done,
    cancel: () => reader.cancel().catch(() => {}),
  };
}

describe(`load shedding across processes on ${currentRuntime()}`, () => {
  let nats: PrivateNats;
  before(async () => {
    nats = await startPrivateNats();
  });
  after(async () => {
    await nats?.stop();
  });

  for (const plane of ['tcp', 'http', 'nats'] as const) {
    for (const how of ['flag', 'POST /busy_threshold'] as const) {
      test(`${plane} plane, threshold by ${how}: with 8 streams running every new request is refused until they end`, async () => {
        const t = tracker();
        try {
          const env = {
            DYN_FILE_KV: await t.dir('shed'),
            NATS_SERVER: nats.url,
            NATS_WS_SERVER: nats.wsUrl,
            DYN_HTTP_OVERLOAD_STATUS_CODE: '529',
          };
          const threshold = how === 'flag'
            ? ['--active-decode-blocks-threshold', String(THRESHOLD)]
            : [];
          const [frontend, mocker] = await t.all(
            [
              startFrontend([...FILE, ...threshold], { env, timeoutMs: START_MS }),
              startMocker([
                ...FILE,
                '--request-plane',
                plane,
                '--num-workers',
                '2',
                '--model-name',
                MODEL,
                // 10x slower than real time: the streams outlast the checks on a loaded machine.
                '--speedup-ratio',
                '0.1',
              ], { env }),
            ] as const,
          );
          await waitFor(async () => sameIds(await instanceIds(frontend.url), mocker.workers), {
            timeoutMs: SEEN_MS,
            intervalMs: 50,
            what: "the mocker's 2 workers in /health",
          });
          if (how === 'POST /busy_threshold') {
            const res = await fetch(`${frontend.url}/busy_threshold`, {
              method: 'POST',
              headers: { 'content-type': 'application/json' },
              body: JSON.stringify({ model: MODEL, active_decode_blocks_threshold: THRESHOLD }),
            });
            assert.equal(res.status, 200, await res.text());
          }

          // Eight streams at once. Once a worker reports load it is busy, so later ones may be
          // refused already; at least one runs on each worker.
          const streams = await Promise.all(
            Array.from({ length: STREAMS }, (_, i) => longStream(frontend.url, i)),
          );
          for (const s of streams) assert.ok([200, 529].includes(s.status), String(s.status));
          const running = streams.filter((s) => s.status === 200) as Required<
            Awaited<ReturnType<typeof longStream>>
          >[];
          assert.ok(running.length >= 2, `${running.length} streams running`);
          const allRunning = () => running.every((s) => !s.ended());

          // From the first refusal on, every request sent while they all still run is refused.
          let checked = 0;
          let passed = 0;
          let firstRefusal = false;
          while (allRunning() && checked < 40) {
            const res = await completion(frontend.url, { prompt: 'hello', max_tokens: 1 });
            const body = await res.text();
            if (!allRunning()) break;
            if (!firstRefusal) {
              if (res.status === 200) {
                passed++;
                continue;
              }
              firstRefusal = true;
            }
            assert.equal(res.status, 529, `request ${checked} after the first refusal: ${body}`);
            assert.equal(res.headers.get('retry-after'), '1');
            assert.equal(
              (JSON.parse(body) as { error: { code: string } }).error.code,
              'overloaded',
            );
            checked++;
          }
          assert.ok(
            firstRefusal,
            `requests were refused while the streams ran (streams: ${
              streams.map((x) => x.status)
            }; ${passed} passed before a stream ended)`,
          );
          assert.ok(checked >= 10, `${checked} requests checked while the streams ran`);

          // When the streams are gone the workers report free, and requests pass again.
          await Promise.all(running.map((s) => s.cancel()));
          await Promise.all(running.map((s) => s.done));
          await waitFor(async () => {
            const res = await completion(frontend.url, { prompt: 'again', max_tokens: 1 });
            await res.text();
            return res.status === 200;
          }, {
            timeoutMs: 20_000,
            intervalMs: 100,
            what: 'a request to pass once the load is gone',
          });
        } finally {
          await t.cleanup();
        }
      });
    }
  }
});
