/**
 * The command line (citty renders --help from the option schemas):
 *
 *   switchboard [frontend flags]           the frontend (Dynamo's `python -m dynamo.frontend`)
 *   switchboard mocker [mocker flags]      simulated workers (Dynamo's `python -m dynamo.mocker`)
 *   switchboard demo [demo + frontend flags]  both in one process, no etcd or NATS needed
 *   switchboard register --url URL --model-name M   a plain OpenAI-compatible server as a worker
 */
import { type ArgsDef, type CommandDef, defineCommand, renderUsage, runMain } from 'citty';
import { OPTIONS, resolveConfig } from './core/config.ts';
import { createJsonLogger, type Logger } from './core/logger.ts';
import type { OptionInfo, OptionsResult } from './core/options.ts';
import { MOCKER_OPTIONS, resolveMockerConfig } from './mocker/config.ts';
import { DEMO_DEFAULTS, type DemoOptions, runDemo, startDemo } from './commands/demo.ts';
import { runFrontend, startFrontend } from './commands/frontend.ts';
import {
  argv as hostArgv,
  env as hostEnv,
  exit,
  onShutdownSignal,
  writeStderr,
  writeStdout,
} from './runtime/host.ts';
import { InfraUnavailableError } from './runtime/infra.ts';
import { ScriptError } from './mocker/script.ts';
import { interactiveConfig, interactiveLogger, runInteractive } from './commands/interactive.ts';
import { startMockerProcess } from './commands/mocker.ts';
import { ModelDirError } from './runtime/model-dir.ts';
import { startRegistration } from './commands/register.ts';
import { REGISTER_OPTIONS, resolveRegisterConfig } from './worker/register-config.ts';
import { PortInUseError } from './runtime/serve-types.ts';

const VERSION = '0.1.0';

function shownDefault(o: OptionInfo): string {
  if (o.default === undefined) return 'unset';
  return typeof o.default === 'string' ? o.default : JSON.stringify(o.default);
}

/** citty argument definitions (for --help) from an option list. */
export function cittyArgs(options: readonly OptionInfo[]): ArgsDef {
  const args: ArgsDef = {};
  for (const o of options) {
    if (!o.flag) continue;
    const description = `${o.description} [env: ${o.env[0]}] (default: ${shownDefault(o)})`;
    args[o.flag] = o.boolean
      ? {
        type: 'boolean',
        description,
        negativeDescription: `Turn off --${o.flag}`,
        ...(o.short ? { alias: o.short } : {}),
      }
      : { type: 'string', description, valueHint: o.hint };
  }
  return args;
}

/** The env-only knobs, listed under the flags in --help. */
export function envOnlyHelp(options: readonly OptionInfo[]): string {
  const rows = options.filter((o) => !o.flag).map((o) =>
    `  ${o.env.join(' | ')}\n      ${o.description} (default: ${shownDefault(o)})`
  );
  return rows.length > 0 ? `ENVIRONMENT-ONLY SETTINGS\n\n${rows.join('\n')}\n` : '';
}

/** Prints every problem and exits 2, or returns the configuration with warnings logged. */
function orExit<T>(result: OptionsResult<T>, logger: Logger): T {
  if (!result.ok) {
    writeStderr(
      `switchboard: invalid configuration:\n${
        result.errors.map((e) => `  - ${e}`).join('\n')
      }\nRun with --help to see every flag and its environment variable.\n`,
    );
    return exit(2);
  }
  for (const warning of result.warnings) logger.warn(warning);
  return result.config;
}

/** Start-up failures that are the user's to fix get one line, not a stack trace. */
async function reportStartup(work: () => Promise<unknown>): Promise<void> {
  try {
    await work();
  } catch (error) {
    if (
      error instanceof PortInUseError || error instanceof InfraUnavailableError ||
      error instanceof ModelDirError || error instanceof ScriptError
    ) {
      writeStderr(`switchboard: ${error.message}\n`);
      exit(1);
    }
    throw error;
  }
}

/** The simulated model writes random text: `demo -i` keeps each answer short. */
const DEMO_INTERACTIVE_MAX_TOKENS = 100;

const logger = () => createJsonLogger({ write: writeStderr });

const frontend = defineCommand({
  meta: {
    name: 'switchboard',
    version: VERSION,
    description: 'LLM inference frontend and router (Dynamo frontend interface). ' +
      'Every flag also reads the environment variable shown; CLI beats env beats default. ' +
      'Subcommands: `mocker` (simulated workers), `demo` (frontend and workers in one process).',
  },
  args: cittyArgs(OPTIONS),
  async run({ rawArgs }) {
    const env = hostEnv();
    const log = logger();
    const config = orExit(resolveConfig({ argv: rawArgs, env }), log);
    if (!config.interactive) {
      return await reportStartup(() => runFrontend(config, { env, logger: log }));
    }
    await reportStartup(async () => {
      const running = await startFrontend(interactiveConfig(config), {
        env,
        logger: interactiveLogger(),
      });
      await runInteractive({ core: running.core, close: running.shutdown }, {
        model: config.modelName,
      });
    });
  },
});

const mocker = defineCommand({
  meta: {
    name: 'switchboard mocker',
    version: VERSION,
    description: 'Simulated vLLM-like workers that register with discovery and serve requests.',
  },
  args: cittyArgs(MOCKER_OPTIONS),
  async run({ rawArgs }) {
    const env = hostEnv();
    const log = logger();
    const config = orExit(resolveMockerConfig({ argv: rawArgs, env }), log);
    await reportStartup(async () => {
      const running = await startMockerProcess(config, { env, logger: log });
      // Leave discovery, let in-flight streams finish, then exit; a second signal exits at once.
      onShutdownSignal((signal) => {
        const drainTimeoutMs = config.workerGracefulShutdownTimeout * 1000;
        const inFlight = running.workers.reduce((sum, w) => sum + w.activeRequests(), 0);
        log.info('shutdown started', {
          signal,
          in_flight: inFlight,
          drain_timeout_ms: drainTimeoutMs,
        });
        void running.close({ drainTimeoutMs }).then(() => {
          log.info('shutdown complete');
          exit(0);
        });
      });
    });
  },
});

const DEMO_FLAGS: Record<string, keyof DemoOptions> = {
  '--workers': 'workers',
  '--model-path': 'modelPath',
  '--model-name': 'modelName',
  '--speedup-ratio': 'speedupRatio',
};

/** Takes the demo's own flags out of argv; the rest are frontend flags. */
export function splitDemoArgs(
  argv: readonly string[],
): { demo: DemoOptions; rest: string[]; errors: string[] } {
  const demo: DemoOptions = { ...DEMO_DEFAULTS };
  const rest: string[] = [];
  const errors: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const [flag = '', inline] = (argv[i] ?? '').split(/=(.*)/s);
    const key = DEMO_FLAGS[flag];
    if (!key) {
      rest.push(argv[i] ?? '');
      continue;
    }
    const value = inline ?? argv[++i];
    if (value === undefined) errors.push(`${flag}: needs a value`);
    else if (key === 'modelPath' || key === 'modelName') demo[key] = value;
    else if (Number.isFinite(Number(value)) && Number(value) > 0) demo[key] = Number(value);
    else errors.push(`${flag}: must be a positive number (got "${value}")`);
  }
  if (!Number.isInteger(demo.workers)) errors.push('--workers: must be a whole number');
  return { demo, rest, errors };
}

const demo = defineCommand({
  meta: {
    name: 'switchboard demo',
    version: VERSION,
    description: 'The frontend plus simulated workers in one process, on in-process discovery: ' +
      'no etcd or NATS. Takes every frontend flag, and --workers N (default 2), --model-path DIR ' +
      '(default tests/fixtures/model), --model-name NAME (default Qwen/Qwen3-0.6B), ' +
      '--speedup-ratio X (default 1).',
  },
  args: cittyArgs(OPTIONS),
  async run({ rawArgs }) {
    const env = hostEnv();
    const log = logger();
    const split = splitDemoArgs(rawArgs);
    const resolved = resolveConfig({ argv: split.rest, env });
    const config = orExit(
      split.errors.length > 0
        ? { ok: false, errors: [...split.errors, ...(resolved.ok ? [] : resolved.errors)] }
        : resolved,
      log,
    );
    if (!config.interactive) {
      return await reportStartup(() => runDemo(config, split.demo, { env, logger: log }));
    }
    await reportStartup(async () => {
      const running = await startDemo(interactiveConfig(config), split.demo, {
        env,
        logger: interactiveLogger(),
      });
      await runInteractive({ core: running.frontend.core, close: running.close }, {
        maxTokens: DEMO_INTERACTIVE_MAX_TOKENS,
      });
    });
  },
});

const register = defineCommand({
  meta: {
    name: 'switchboard register',
    version: VERSION,
    description: 'Registers a plain OpenAI-compatible server (vLLM, SGLang, llama.cpp) so the ' +
      'frontend routes to it over HTTP; keeps the registration while the server answers.',
  },
  args: cittyArgs(REGISTER_OPTIONS),
  async run({ rawArgs }) {
    const env = hostEnv();
    const log = logger();
    const config = orExit(resolveRegisterConfig({ argv: rawArgs, env }), log);
    await reportStartup(async () => {
      const registration = await startRegistration(config, { env, logger: log });
      onShutdownSignal(() => void registration.close().then(() => exit(0)));
    });
  },
});

const COMMANDS: Record<string, CommandDef> = { mocker, demo, register } as Record<
  string,
  CommandDef
>;
const COMMAND_OPTIONS = new Map<CommandDef, readonly OptionInfo[]>([
  [mocker as CommandDef, MOCKER_OPTIONS],
  [register as CommandDef, REGISTER_OPTIONS],
]);

export async function main(argv: string[] = hostArgv()): Promise<void> {
  const [first, ...rest] = argv;
  const sub = first === undefined ? undefined : COMMANDS[first];
  const command = (sub ?? frontend) as CommandDef;
  const options = (sub && COMMAND_OPTIONS.get(sub)) ?? OPTIONS;
  await runMain(command, {
    rawArgs: sub ? rest : argv,
    showUsage: async (cmd, parent) => {
      writeStdout(`${await renderUsage(cmd, parent)}\n\n${envOnlyHelp(options)}`);
    },
  });
}
