/**
 * The command line: `switchboard [frontend flags]` (citty renders --help from the config schema).
 * Later subcommands (`mocker`, `register`) are dispatched on the first argument.
 */
import { type ArgsDef, defineCommand, renderUsage, runMain } from 'citty';
import { type OptionInfo, OPTIONS, resolveConfig } from './core/config.ts';
import { createJsonLogger } from './core/logger.ts';
import {
  argv as hostArgv,
  env as hostEnv,
  exit,
  writeStderr,
  writeStdout,
} from './runtime/host.ts';
import { PortInUseError } from './runtime/serve-types.ts';
import { runFrontend } from './runtime/frontend.ts';

function shownDefault(o: OptionInfo): string {
  if (o.default === undefined) return 'unset';
  return typeof o.default === 'string' ? o.default : JSON.stringify(o.default);
}

function helpLine(o: OptionInfo): string {
  return `${o.description} [env: ${o.env[0]}] (default: ${shownDefault(o)})`;
}

export function cittyArgs(): ArgsDef {
  const args: ArgsDef = {};
  for (const o of OPTIONS) {
    if (!o.flag) continue;
    args[o.flag] = o.boolean
      ? {
        type: 'boolean',
        description: helpLine(o),
        negativeDescription: `Turn off --${o.flag}`,
        ...(o.short ? { alias: o.short } : {}),
      }
      : { type: 'string', description: helpLine(o), valueHint: o.hint };
  }
  return args;
}

/** The env-only knobs, listed under the flags in --help. */
export function envOnlyHelp(): string {
  const rows = OPTIONS.filter((o) => !o.flag).map((o) =>
    `  ${o.env.join(' | ')}\n      ${o.description} (default: ${shownDefault(o)})`
  );
  return `ENVIRONMENT-ONLY SETTINGS\n\n${rows.join('\n')}\n`;
}

const frontend = defineCommand({
  meta: {
    name: 'switchboard',
    version: '0.1.0',
    description: 'LLM inference frontend and router (Dynamo frontend interface). ' +
      'Every flag also reads the environment variable shown; CLI beats env beats default.',
  },
  args: cittyArgs(),
  async run({ rawArgs }) {
    const env = hostEnv();
    const result = resolveConfig({ argv: rawArgs, env });
    if (!result.ok) {
      writeStderr(
        `switchboard: invalid configuration:\n${
          result.errors.map((e) => `  - ${e}`).join('\n')
        }\nRun with --help to see every flag and its environment variable.\n`,
      );
      exit(2);
    }
    const logger = createJsonLogger({ write: writeStderr });
    for (const warning of result.warnings) logger.warn(warning);
    const { config } = result;
    if (config.interactive || config.kserveGrpcServer) {
      const flag = config.interactive ? '--interactive' : '--kserve-grpc-server';
      writeStderr(
        `switchboard: ${flag} is not available in this version; run without it to serve HTTP.\n`,
      );
      exit(2);
    }
    try {
      await runFrontend(config, { env, logger });
    } catch (error) {
      if (error instanceof PortInUseError) {
        writeStderr(`switchboard: ${error.message}\n`);
        exit(1);
      }
      throw error;
    }
  },
});

export async function main(argv: string[] = hostArgv()): Promise<void> {
  await runMain(frontend, {
    rawArgs: argv,
    showUsage: async (cmd, parent) => {
      writeStdout(`${await renderUsage(cmd, parent)}\n\n${envOnlyHelp()}`);
    },
  });
}
