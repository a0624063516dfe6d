/** Runs simulated workers as a process: `switchboard mocker --model-path DIR [...]`. */
import { realClock } from '../core/clock.ts';
import type { Logger } from '../core/logger.ts';
import type { MockerConfig } from '../mocker/config.ts';
import { type RunningMocker, startMocker } from '../mocker/worker.ts';
import { createInfra, type Env, type LocalBus } from '../runtime/infra.ts';
import { readModelDir } from '../runtime/model-dir.ts';
import { parseScript, ScriptError } from '../mocker/script.ts';
import { readFile } from 'node:fs/promises';

export interface MockerProcessOptions {
  env: Env;
  logger: Logger;
  /** In-process discovery and events shared with a frontend in this process. @default none */
  local?: LocalBus;
}

/** `DYN_WORKER_LOAD_REPORT_INTERVAL_MS`: milliseconds >= 0, else the runtime's default. */
function loadInterval(value: string | undefined): { loadReportIntervalMs?: number } {
  const n = Number(value);
  return value !== undefined && value !== '' && Number.isFinite(n) && n >= 0
    ? { loadReportIntervalMs: n }
    : {};
}

export async function startMockerProcess(
  config: MockerConfig,
  options: MockerProcessOptions,
): Promise<RunningMocker> {
  const files = await readModelDir(config.modelPath);
  const script = config.script
    ? parseScript(
      await readFile(config.script, 'utf8').catch((error: Error) => {
        throw new ScriptError(`--script ${config.script} cannot be read: ${error.message}`);
      }),
      config.script,
    )
    : undefined;
  const infra = createInfra(config, options);
  const events = await infra.workerEvents();
  const running = await startMocker(config, files, {
    store: () => infra.store(),
    plane: () => infra.planeServer(),
    events,
    clock: realClock,
    logger: options.logger,
    ...loadInterval(options.env.DYN_WORKER_LOAD_REPORT_INTERVAL_MS),
    ...(script ? { script } : {}),
  });
  options.logger.info('simulated workers ready', {
    model: running.modelName,
    workers: running.workers.map((w) => w.runtime.instanceId),
  });
  return running;
}
