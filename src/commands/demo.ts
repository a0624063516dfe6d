/**
 * `switchboard demo`: the frontend and simulated workers in one process, on in-process discovery
 * and events, with the bundled model: no etcd, no NATS, nothing to install beyond `npm ci`.
 * Requests still cross real sockets on the request plane.
 */
import type { Config } from '../core/config.ts';
import type { Logger } from '../core/logger.ts';
import { resolveMockerConfig } from '../mocker/config.ts';
import { type RunningFrontend, startFrontend } from './frontend.ts';
import { createLocalBus, type Env } from '../runtime/infra.ts';
import { startMockerProcess } from './mocker.ts';
import { exit, onShutdownSignal } from '../runtime/host.ts';

export interface DemoOptions {
  /** Simulated workers. @default 2 */
  workers: number;
  /** Model directory. @default 'tests/fixtures/model' */
  modelPath: string;
  /** Served model name. @default 'Qwen/Qwen3-0.6B' */
  modelName: string;
  /** Simulated time runs this many times faster than real time. @default 1 */
  speedupRatio: number;
}

export const DEMO_DEFAULTS: DemoOptions = {
  workers: 2,
  modelPath: 'tests/fixtures/model',
  modelName: 'Qwen/Qwen3-0.6B',
  speedupRatio: 1,
};

export interface RunningDemo {
  frontend: RunningFrontend;
  /** Shuts the frontend down (draining), then the workers. */
  close(reason: string): Promise<void>;
}

/** Starts the frontend and the workers; `runDemo` and `switchboard demo -i` use it. */
export async function startDemo(
  config: Config,
  demo: DemoOptions,
  options: { env: Env; logger: Logger },
): Promise<RunningDemo> {
  const local = createLocalBus();
  const frontend = await startFrontend({ ...config, discoveryBackend: 'mem' }, {
    ...options,
    local,
  });
  const mockerConfig = resolveMockerConfig({
    argv: [
      '--model-path',
      demo.modelPath,
      '--model-name',
      demo.modelName,
      '--num-workers',
      String(demo.workers),
      '--speedup-ratio',
      String(demo.speedupRatio),
      '--discovery-backend',
      'mem',
      '--request-plane',
      config.requestPlane,
    ],
    env: {},
  });
  if (!mockerConfig.ok) throw new Error(mockerConfig.errors.join('\n'));
  const mocker = await startMockerProcess(mockerConfig.config, { ...options, local });
  let closing: Promise<void> | undefined;
  return {
    frontend,
    close: (reason) =>
      closing ??= (async () => {
        await frontend.shutdown(reason);
        await mocker.close();
      })(),
  };
}

export async function runDemo(
  config: Config,
  demo: DemoOptions,
  options: { env: Env; logger: Logger },
) {
  const running = await startDemo(config, demo, options);
  onShutdownSignal((signal) => void running.close(signal).then(() => exit(0)));
}
