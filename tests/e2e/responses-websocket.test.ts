/**
 * The WebSocket mode of `/v1/responses` against a real frontend (the `demo` subcommand: frontend
 * plus simulated workers) on the runtime under test, with that runtime's own WebSocket client:
 * `response.create` turns, continuation on the connection with `store: false`, warm-ups, error
 * events that leave the connection open, and a refused upgrade elsewhere.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { type RunningServer, startFrontend } from '../helpers/process.ts';
import { waitFor } from '../helpers/wait.ts';

const MODEL = 'Qwen/Qwen3-0.6B';

interface Event {
  type: string;
  sequence_number?: number;
  status?: number;
  error?: { code: string | null; param: string | null; message: string };
  response?: {
    id: string;
    status: string;
    usage: { input_tokens: number; output_tokens: number } | null;
    previous_response_id: string | null;
    store: boolean;
    output: unknown[];
  };
}

const TERMINAL = new Set(['response.completed', 'response.incomplete', 'response.failed', 'error']);

/** A client socket whose messages are read as whole turns (up to a terminal event). */
function connect(url: string) {
  const socket = new WebSocket(url);
  const received: Event[] = [];
  const waiters: Array<() => void> = [];
  let closeCode: number | undefined;
  const wake = () => waiters.splice(0).forEach((w) => w());
  socket.onmessage = (e) => {
    received.push(JSON.parse(String(e.data)) as Event);
    wake();
  };
  const closed = new Promise<number>((resolve) => {
    socket.onclose = (e) => {
      closeCode = e.code;
      wake();
      resolve(e.code);
    };
  });
  const opened = new Promise<void>((resolve, reject) => {
    socket.onopen = () => resolve();
    socket.onerror = () => reject(new Error(`WebSocket to ${url} failed`));
  });
  return {
    opened,
    closed,
    send: (message: unknown) =>
      socket.send(typeof message === 'string' ? message : JSON.stringify(message)),
    /** The events of the next turn, through its terminal event. */
    async turn(): Promise<Event[]> {
      for (;;) {
        const end = received.findIndex((e) => TERMINAL.has(e.type));
        if (end >= 0) return received.splice(0, end + 1);
        if (closeCode !== undefined) throw new Error(`socket closed (${closeCode}) mid-turn`);
        await new Promise<void>((resolve) => waiters.push(resolve));
      }
    },
    close: () => socket.close(),
  };
}

describe('Responses API WebSocket mode', { timeout: 180_000 }, () => {
  let server: RunningServer;
  let url: string;

  before(async () => {
    server = await startFrontend(['--speedup-ratio', '100'], {
      subcommand: 'demo',
      timeoutMs: 60_000,
    });
    url = `${server.url.replace('http', 'ws')}/v1/responses`;
    await waitFor(async () => {
      const body = await (await fetch(`${server.url}/v1/models`)).json() as {
        data?: { id: string }[];
      };
      return body.data?.some((m) => m.id === MODEL) === true;
    }, { timeoutMs: 60_000, intervalMs: 100, what: 'the demo model' });
  });

  after(async () => {
    await server?.stop();
  });

  test('a response.create turn streams the same events as SSE, numbered from 0', async () => {
    const ws = connect(url);
    await ws.opened;
    ws.send({ type: 'response.create', model: MODEL, input: 'Say hello', max_output_tokens: 4 });
    const events = await ws.turn();
    assert.equal(events[0]?.type, 'response.created');
    assert.equal(events[1]?.type, 'response.in_progress');
    assert.equal(events.at(-1)?.type, 'response.incomplete');
    assert.deepEqual(events.map((e) => e.sequence_number), events.map((_, i) => i));
    assert.ok(events.some((e) => e.type === 'response.output_text.delta'));
    assert.equal(events[0]?.response?.usage, null, 'usage is null until known');
    assert.equal(events.at(-1)?.response?.usage?.output_tokens, 4);
    ws.close();
    assert.equal(await ws.closed, 1005);
  });

  test('the connection continues its latest response even with store: false', async () => {
    const ws = connect(url);
    await ws.opened;
    ws.send({
      type: 'response.create',
      model: MODEL,
      input: 'Remember papaya.',
      store: false,
      max_output_tokens: 3,
    });
    const first = (await ws.turn()).at(-1)?.response;
    assert.equal(first?.store, false);
    ws.send({
      type: 'response.create',
      model: MODEL,
      input: 'Which word?',
      previous_response_id: first?.id,
      max_output_tokens: 3,
    });
    const second = (await ws.turn()).at(-1)?.response;
    assert.equal(second?.previous_response_id, first?.id);
    assert.ok((second?.usage?.input_tokens ?? 0) > (first?.usage?.input_tokens ?? Infinity));
    ws.close();

    // Not stored: another connection cannot continue it, and HTTP cannot retrieve it.
    const other = connect(url);
    await other.opened;
    other.send({
      type: 'response.create',
      model: MODEL,
      input: 'x',
      previous_response_id: first?.id,
    });
    const [refused] = await other.turn();
    assert.equal(refused?.type, 'error');
    assert.equal(refused?.status, 404);
    assert.equal(refused?.error?.code, 'previous_response_not_found');
    assert.equal((await fetch(`${server.url}/v1/responses/${first?.id}`)).status, 404);
    // A stored one (the second) is there for everyone.
    const stored = await fetch(`${server.url}/v1/responses/${second?.id}`);
    assert.equal(stored.status, 200);
    other.close();
  });

  test('errors answer one error event and the connection serves the next message', async () => {
    const ws = connect(url);
    await ws.opened;
    const bad: Array<[unknown, number, string | null]> = [
      ['not json', 400, null],
      [{ type: 'session.update' }, 400, 'type'],
      [{ type: 'response.create', model: MODEL, input: 'x', stream: false }, 400, 'stream'],
      [{ type: 'response.create', model: MODEL, input: 'x', background: true }, 400, 'background'],
      [{ type: 'response.create', model: MODEL, input: 'x', temperature: 9 }, 400, 'temperature'],
      [{ type: 'response.create', model: 'no-such-model', input: 'x' }, 404, 'model'],
      // The request budget of a POST body applies to a message too (docs/security.md).
      [
        `{"type":"response.create","model":"${MODEL}","input":"x","metadata":${'['.repeat(100)}${
          ']'.repeat(100)
        }}`,
        400,
        null,
      ],
      [
        `{"type":"response.create","model":"${MODEL}","input":"x","temperature":1e400}`,
        400,
        'temperature',
      ],
      [
        {
          type: 'response.create',
          model: MODEL,
          input: Array.from({ length: 10_001 }, () => ({ role: 'user', content: 'x' })),
        },
        400,
        'input',
      ],
    ];
    for (const [message, status, param] of bad) {
      ws.send(message);
      const events = await ws.turn();
      assert.equal(events.length, 1, JSON.stringify(message));
      assert.equal(events[0]?.type, 'error');
      assert.equal(events[0]?.status, status, JSON.stringify(events[0]));
      assert.equal(events[0]?.error?.param, param, JSON.stringify(events[0]));
    }
    ws.send({ type: 'response.create', model: MODEL, input: 'still here?', max_output_tokens: 2 });
    assert.equal((await ws.turn()).at(-1)?.type, 'response.incomplete');
    // A message as large as a body that goes to the body thread (1 MiB: here 1.5 MB of JSON
    // whitespace) is parsed there and answered as any other.
    ws.send(
      `{"type":"response.create",${' '.repeat(1_500_000)}"model":"${MODEL}","input":"big",` +
        '"max_output_tokens":2}',
    );
    assert.equal((await ws.turn()).at(-1)?.type, 'response.incomplete');
    ws.close();
  });

  test('generate: false warms up a response with no output that the next turn continues', async () => {
    const ws = connect(url);
    await ws.opened;
    ws.send({
      type: 'response.create',
      model: MODEL,
      generate: false,
      input: [{ role: 'user', content: 'Context for later.' }],
    });
    const warm = await ws.turn();
    assert.deepEqual(warm.map((e) => e.type), ['response.created', 'response.completed']);
    assert.deepEqual(warm[1]?.response?.output, []);
    ws.send({
      type: 'response.create',
      model: MODEL,
      previous_response_id: warm[1]?.response?.id,
      input: 'Go.',
      max_output_tokens: 2,
    });
    const next = (await ws.turn()).at(-1);
    assert.equal(next?.type, 'response.incomplete');
    assert.equal(next?.response?.previous_response_id, warm[1]?.response?.id);
    ws.close();
  });

  test('messages sent together are answered in order, one response at a time', async () => {
    const ws = connect(url);
    await ws.opened;
    for (const input of ['one', 'two', 'three']) {
      ws.send({ type: 'response.create', model: MODEL, input, max_output_tokens: 2 });
    }
    const ids = new Set<string>();
    for (let i = 0; i < 3; i++) {
      const events = await ws.turn();
      assert.equal(events[0]?.type, 'response.created');
      assert.equal(events[0]?.sequence_number, 0, 'turns do not interleave');
      ids.add(events.at(-1)?.response?.id ?? '');
    }
    assert.equal(ids.size, 3);
    ws.close();
  });

  test('the envelope form {response: {...}} works, and stream_id is echoed on every event', async () => {
    const ws = connect(url);
    await ws.opened;
    ws.send({
      type: 'response.create',
      stream_id: 'lane-1',
      response: { model: MODEL, input: 'hello', max_output_tokens: 2 },
    });
    const events = await ws.turn();
    assert.equal(events.at(-1)?.type, 'response.incomplete');
    for (const e of events) assert.equal((e as { stream_id?: string }).stream_id, 'lane-1');
    ws.send({ type: 'response.create', stream_id: 'lane-2', model: 'no-such-model', input: 'x' });
    const [error] = await ws.turn();
    assert.equal(error?.type, 'error');
    assert.equal((error as { stream_id?: string }).stream_id, 'lane-2');
    ws.close();
  });

  test('an upgrade on another path is refused', async () => {
    const ws = connect(`${server.url.replace('http', 'ws')}/v1/chat/completions`);
    await assert.rejects(ws.opened);
  });

  // Last: it stops the server.
  test('shutdown closes open sockets with 1001 (going away) and the frontend exits 0', async () => {
    const ws = connect(url);
    await ws.opened;
    const code = server.stop();
    assert.equal(await ws.closed, 1001);
    assert.equal(await code, 0);
  });
});
