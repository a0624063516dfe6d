/** A private etcd server for tests that kill and restart it (the shared one must stay up). */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import process from 'node:process';
import { freePort } from './process.ts';
import { waitFor } from './wait.ts';

export const ETCD_BIN = process.env.ETCD_BIN ?? '/usr/bin/etcd';

/** A private etcd on free ports with its own data directory, which a test may kill and restart. */
export interface PrivateEtcd {
  url: string;
  /** SIGKILL: no graceful shutdown. */
  kill(): Promise<void>;
  /** SIGSTOP: etcd freezes; connections stay open and nothing answers. */
  pause(): void;
  /** SIGCONT after `pause()`. */
  resume(): void;
  /** Starts it again on the same ports; `wipe` deletes its data first (a data-loss restart). */
  restart(options?: { wipe?: boolean }): Promise<void>;
  stop(): Promise<void>;
}

export async function startPrivateEtcd(): Promise<PrivateEtcd> {
  const dir = await mkdtemp(join(tmpdir(), 'switchboard-etcd-'));
  const [clientPort, peerPort] = [await freePort(), await freePort()];
  const url = `http://127.0.0.1:${clientPort}`;
  const peer = `http://127.0.0.1:${peerPort}`;
  let child: ChildProcess | undefined;
  let exited: Promise<void> = Promise.resolve();

  const start = async () => {
    const proc = spawn(ETCD_BIN, [
      '--name=private',
      `--data-dir=${join(dir, 'data')}`,
      `--listen-client-urls=${url}`,
      `--advertise-client-urls=${url}`,
      `--listen-peer-urls=${peer}`,
      `--initial-advertise-peer-urls=${peer}`,
      `--initial-cluster=private=${peer}`,
    ], { stdio: 'ignore' });
    child = proc;
    exited = new Promise((resolve) => proc.once('exit', () => resolve()));
    await waitFor(async () => {
      try {
        const response = await fetch(`${url}/health`);
        return response.ok && (await response.json() as { health?: string }).health === 'true';
      } catch {
        return false;
      }
    }, { timeoutMs: 15_000, intervalMs: 50, what: `etcd on ${url}` });
  };
  const running = () =>
    child?.pid !== undefined && child.exitCode === null && child.signalCode === null;
  const signal = (name: NodeJS.Signals) => {
    if (running() && child?.pid !== undefined) process.kill(child.pid, name);
  };
  const kill = async () => {
    // A stopped process dies of SIGKILL too; SIGCONT first anyway, so nothing is left frozen.
    signal('SIGKILL');
    signal('SIGCONT');
    await exited;
  };
  await start();
  return {
    url,
    kill,
    pause: () => signal('SIGSTOP'),
    resume: () => signal('SIGCONT'),
    async restart(options = {}) {
      await kill();
      if (options.wipe) await rm(join(dir, 'data'), { recursive: true, force: true });
      await start();
    },
    async stop() {
      await kill();
      await rm(dir, { recursive: true, force: true });
    },
  };
}
