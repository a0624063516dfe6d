/**
 * `switchboard -i` (Dynamo's `--interactive` text mode): a chat in the terminal against the
 * fleet, through the frontend's core in-process (the same pipeline as `/v1/chat/completions`).
 *
 * - Answers stream as they are generated; the whole conversation goes to the model each turn.
 * - A line ending in `\` continues on the next line; `"""` on a line of its own starts and ends
 *   a block that may hold blank lines (paste into it).
 * - `/clear` forgets the conversation, `/help` shows this; Ctrl-C stops the answer being
 *   written (or clears the line being typed); Ctrl-D (end of input) exits.
 * - Up and down arrows recall earlier lines (node:readline's history, on Node, Bun and Deno).
 *
 * With standard input not a terminal, lines are read the same way (no prompts, no arrows) and
 * the session ends after the last answer, so `printf 'Hi\n' | switchboard demo -i` works.
 */
import { createInterface } from 'node:readline';
import process from 'node:process';
import type { Config } from '../core/config.ts';
import type { Core } from '../core/core.ts';
import { modelTypesOf } from '../core/discovery/model-card.ts';
import { toApiError } from '../core/errors.ts';
import { createJsonLogger } from '../core/logger.ts';
import { type ChatServices, startChat } from '../core/generate/chat.ts';
import { ChatCompletionRequestSchema } from '../core/api/openai/schemas.ts';
import { exit, onShutdownSignal, writeStderr } from '../runtime/host.ts';

export interface ChatMessage {
  role: 'user' | 'assistant';
  content: string;
}

/** What one input line did: completed a message, needs more lines, or was a command. */
export type InputStep =
  | { kind: 'message'; text: string }
  | { kind: 'more' }
  | { kind: 'command'; name: string };

const BLOCK = '"""';

/**
 * The multi-line rules as a small state machine over lines: a trailing `\` continues (the
 * backslash becomes a newline), `"""` alone on a line opens and closes a block, `/word` on a
 * line of its own (outside a continuation) is a command.
 */
export function createInputAssembler(): { push(line: string): InputStep; reset(): void } {
  let parts: string[] = [];
  let inBlock = false;
  return {
    push(line) {
      if (inBlock) {
        if (line.trim() === BLOCK) {
          inBlock = false;
          const text = parts.join('\n');
          parts = [];
          return { kind: 'message', text };
        }
        parts.push(line);
        return { kind: 'more' };
      }
      if (parts.length === 0 && line.trim() === BLOCK) {
        inBlock = true;
        return { kind: 'more' };
      }
      if (parts.length === 0 && /^\/[a-z]+$/.test(line.trim())) {
        return { kind: 'command', name: line.trim().slice(1) };
      }
      if (line.endsWith('\\')) {
        parts.push(line.slice(0, -1));
        return { kind: 'more' };
      }
      parts.push(line);
      const text = parts.join('\n');
      parts = [];
      return { kind: 'message', text };
    },
    reset() {
      parts = [];
      inBlock = false;
    },
  };
}

export interface ChatReplOptions {
  /** @default process.stdin */
  input?: NodeJS.ReadableStream;
  /** @default process.stdout */
  output?: NodeJS.WritableStream;
  /** Prompts, arrow-key history and Ctrl-C handling. @default whether `input` is a TTY */
  terminal?: boolean;
  /** The model to chat with. @default the first (by name) that serves chat */
  model?: string;
  /** `max_tokens` for each answer. @default the model's ("what fits") */
  maxTokens?: number;
}

const HELP = 'End a line with \\ to continue it; """ on its own line starts and ends a block. ' +
  '/clear forgets the conversation. Ctrl-C stops an answer, Ctrl-D exits.';

function chatModels(core: Pick<Core, 'models'>): string[] {
  return core.models.list().filter((m) =>
    modelTypesOf(m.card).includes('Chat') && core.models.instances(m.name).length > 0
  ).map((m) => m.name);
}

/** Resolves with the model to use once one is served; `wanted` waits for that one. */
export function waitForChatModel(core: Pick<Core, 'models'>, wanted?: string): Promise<string> {
  const pick = () => {
    const names = chatModels(core);
    return wanted ? names.find((n) => n === wanted) : names[0];
  };
  const now = pick();
  if (now) return Promise.resolve(now);
  return new Promise((resolve) => {
    const stop = core.models.onChange(() => {
      const name = pick();
      if (!name) return;
      stop();
      resolve(name);
    });
  });
}

/** Runs the chat until the input ends. */
export async function runChatRepl(
  core: ChatServices,
  options: ChatReplOptions = {},
): Promise<void> {
  const input = options.input ?? process.stdin;
  const output = options.output ?? process.stdout;
  const terminal = options.terminal ?? (input as { isTTY?: boolean }).isTTY === true;
  const say = (text: string) => void output.write(text);

  if (terminal) {
    say(
      options.model
        ? `Waiting for model "${options.model}"...\n`
        : 'Waiting for a model to be served...\n',
    );
  }
  const model = await waitForChatModel(core, options.model);
  if (terminal) say(`Chatting with ${model}. ${HELP}\n`);

  const rl = createInterface({ input, output, terminal, historySize: 1000, prompt: '> ' });
  const assembler = createInputAssembler();
  const messages: ChatMessage[] = [];
  let answering: AbortController | undefined;
  let ended = false;

  rl.on('SIGINT', () => {
    if (answering) return answering.abort();
    // At the prompt: drop what was typed (and any unfinished multi-line message).
    assembler.reset();
    rl.write(null, { ctrl: true, name: 'e' });
    rl.write(null, { ctrl: true, name: 'u' });
    say('^C (Ctrl-D exits)\n');
    rl.setPrompt('> ');
    rl.prompt();
  });
  rl.once('close', () => {
    ended = true;
    // Ctrl-D at a terminal ends the answer being written too; piped input lets it finish.
    if (terminal) answering?.abort();
  });

  const answer = async (text: string) => {
    messages.push({ role: 'user', content: text });
    const controller = new AbortController();
    answering = controller;
    let reply = '';
    try {
      const request = ChatCompletionRequestSchema.parse({
        model,
        messages,
        stream: true,
        ...(options.maxTokens ? { max_tokens: options.maxTokens } : {}),
      });
      const started = await startChat(core, request, {
        requestId: core.newId(),
        headers: {},
        signal: controller.signal,
      });
      for await (const chunk of started.chunks) {
        const delta = chunk.choices[0]?.delta as
          | { content?: string | null; reasoning_content?: string | null }
          | undefined;
        // Reasoning parsed off by the model's reasoning parser is shown as it streams.
        if (delta?.reasoning_content) say(delta.reasoning_content);
        if (delta?.content) {
          reply += delta.content;
          say(delta.content);
        }
        if (controller.signal.aborted) break;
      }
      say(controller.signal.aborted ? ' [stopped]\n' : '\n');
      // What was shown stays in the conversation, stopped or not.
      messages.push({ role: 'assistant', content: reply });
    } catch (error) {
      if (controller.signal.aborted) {
        say(' [stopped]\n');
        messages.push({ role: 'assistant', content: reply });
      } else {
        say(`${reply ? '\n' : ''}error: ${toApiError(error).message}\n`);
        messages.pop();
      }
    } finally {
      answering = undefined;
    }
  };

  if (terminal) rl.prompt();
  for await (const line of rl) {
    const step = assembler.push(line);
    if (step.kind === 'more') {
      rl.setPrompt('. ');
    } else if (step.kind === 'command') {
      if (step.name === 'clear') {
        messages.length = 0;
        say('(conversation cleared)\n');
      } else if (step.name === 'exit' || step.name === 'quit') {
        break;
      } else {
        say(`${HELP}\n`);
      }
      rl.setPrompt('> ');
    } else {
      rl.setPrompt('> ');
      if (step.text.trim() !== '') await answer(step.text);
    }
    if (terminal && !ended) rl.prompt();
  }
  rl.close();
  if (terminal) say('\n');
}

/** The frontend's configuration for interactive mode: no public listener, no gRPC server. */
export function interactiveConfig(config: Config): Config {
  // Preprocessing inline: one person types one prompt at a time, and on Deno a worker thread
  // started next to the terminal's raw mode took the line editor's prompt and echo away.
  return {
    ...config,
    httpHost: '127.0.0.1',
    httpPort: 0,
    kserveGrpcServer: false,
    dynPreprocessWorkers: 0,
  };
}

/** Only warnings and errors: info lines would interleave with the chat. */
export function interactiveLogger() {
  return createJsonLogger({ write: writeStderr, level: 'warn' });
}

/**
 * The CLI path: chat until the input ends (or SIGTERM), then close `session` and exit 0.
 */
export async function runInteractive(
  session: { core: ChatServices; close(reason: string): Promise<void> },
  options: ChatReplOptions = {},
): Promise<never> {
  onShutdownSignal((signal) => void session.close(signal).then(() => exit(0)));
  try {
    await runChatRepl(session.core, options);
  } finally {
    await session.close('end of input');
  }
  return exit(0);
}
