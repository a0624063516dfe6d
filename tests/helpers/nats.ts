/** A private nats-server for tests that kill and restart it (the shared one must stay up). */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import process from 'node:process';
import { freePort } from './process.ts';
import { waitFor } from './wait.ts';

export const NATS_BIN = process.env.NATS_BIN ?? 'nats-server';

/** A private nats-server on free ports (client and websocket), which a test may kill and restart. */
export interface PrivateNats {
  /** `nats://127.0.0.1:{port}` */
  url: string;
  /** `ws://127.0.0.1:{port}`: what the adapters connect to (`NATS_WS_SERVER`). */
  wsUrl: string;
  /** SIGKILL: no graceful shutdown; clients see their connections drop. */
  kill(): Promise<void>;
  /** Starts it (again) on the same ports; a no-op while it runs. */
  start(): Promise<void>;
  /** `kill()` then `start()`. */
  restart(): Promise<void>;
  stop(): Promise<void>;
}

/** True once something accepts connections on `port`. */
function listening(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

export interface PrivateNatsOptions {
  /** More nats-server configuration (an `authorization {}` or `tls {}` block). @default none */
  config?: string;
  /** Leave out the websocket listener (a stock server has none). @default false */
  noWebSocket?: boolean;
}

export async function startPrivateNats(options: PrivateNatsOptions = {}): Promise<PrivateNats> {
  const dir = await mkdtemp(join(tmpdir(), 'switchboard-nats-'));
  const [port, wsPort] = [await freePort(), await freePort()];
  const config = join(dir, 'nats.conf');
  // WebSocket clients need the websocket block; no TLS on loopback.
  const ws = options.noWebSocket
    ? ''
    : `websocket { listen: "127.0.0.1:${wsPort}", no_tls: true }\n`;
  await writeFile(config, `listen: 127.0.0.1:${port}\n${ws}${options.config ?? ''}\n`);
  let child: ChildProcess | undefined;
  let exited: Promise<void> = Promise.resolve();
  const running = () => child !== undefined && child.exitCode === null && child.signalCode === null;

  const start = async () => {
    if (running()) return;
    const proc = spawn(NATS_BIN, ['-c', config], { stdio: 'ignore' });
    child = proc;
    exited = new Promise((resolve) => proc.once('exit', () => resolve()));
    await waitFor(
      async () => await listening(port) && (!!options.noWebSocket || await listening(wsPort)),
      {
        timeoutMs: 15_000,
        intervalMs: 50,
        what: `nats-server on ${port} (websocket ${wsPort})`,
      },
    );
  };
  const kill = async () => {
    if (running() && child?.pid !== undefined) process.kill(child.pid, 'SIGKILL');
    await exited;
  };
  await start();
  return {
    url: `nats://127.0.0.1:${port}`,
    wsUrl: `ws://127.0.0.1:${wsPort}`,
    kill,
    start,
    async restart() {
      await kill();
      await start();
    },
    async stop() {
      await kill();
      await rm(dir, { recursive: true, force: true });
    },
  };
}
