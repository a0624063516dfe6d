/**
 * `switchboard demo -i` in a real pseudo-terminal (tmux), on the runtime under test: streamed
 * answers, the multi-line prompt, Ctrl-C stopping an answer, up-arrow history and Ctrl-D
 * exiting with status 0. Skipped, with the reason, where tmux is not installed.
 */
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import process from 'node:process';
import { after, describe, test } from 'node:test';
import { PassThrough } from 'node:stream';
import { runChatRepl } from '../../src/commands/interactive.ts';
import { currentRuntime, ROOT, runtimeCommand } from '../helpers/process.ts';
import { MODEL, startStack } from '../helpers/stack.ts';
import { waitFor } from '../helpers/wait.ts';

const hasTmux = spawnSync('tmux', ['-V']).status === 0;
// A private tmux server, so the test never touches anyone's sessions.
const SOCKET = `switchboard-test-${currentRuntime()}-${process.pid}`;
const SESSION = 'chat';

const tmux = (...args: string[]) =>
  execFileSync('tmux', ['-L', SOCKET, ...args], { encoding: 'utf8' });
/** The screen, wrapped lines joined, trailing blank lines dropped. */
const screen = () => tmux('capture-pane', '-p', '-J', '-t', SESSION).replace(/\n+$/, '');
const lastLine = () => screen().split('\n').at(-1) ?? '';
const shellQuote = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;

async function until(what: string, check: (text: string) => boolean, timeoutMs = 30_000) {
  try {
    return await waitFor(() => {
      const text = screen();
      return check(text) ? text : undefined;
    }, { timeoutMs, intervalMs: 100, what });
  } catch (error) {
    throw new Error(`${(error as Error).message}; the screen:\n${screen()}`);
  }
}

/** The text after the last line that is exactly `> ${input}` (the answer so far). */
function answerAfter(text: string, input: string): string | undefined {
  const lines = text.split('\n');
  const at = lines.lastIndexOf(`> ${input}`);
  return at < 0 ? undefined : lines.slice(at + 1).join('\n');
}

describe(`interactive mode on ${currentRuntime()}`, () => {
  after(() => {
    if (hasTmux) spawnSync('tmux', ['-L', SOCKET, 'kill-server']);
  });

  test(
    'streams answers, continues lines, stops on Ctrl-C, recalls history, exits 0 on Ctrl-D',
    { skip: hasTmux ? false : 'tmux is not installed (apt-get install tmux)' },
    async () => {
      const [cmd, pre] = runtimeCommand('src/main.ts');
      // Slow simulated time (an answer of 100 tokens takes seconds) so the answer can be seen
      // streaming and stopped half-way.
      const argv = [cmd, ...pre, 'demo', '-i', '--workers', '1', '--speedup-ratio', '0.1'];
      const shell = `${argv.map(shellQuote).join(' ')}; echo "EXIT:$?"; sleep 60`;
      tmux('new-session', '-d', '-s', SESSION, '-x', '200', '-y', '50', '-c', ROOT, shell);

      await until(
        'the greeting',
        (t) => /Chatting with Qwen\/Qwen3-0\.6B/.test(t) && /^> ?$/m.test(t),
      );

      // A streamed answer: text shows up before the answer ends, then the prompt comes back.
      tmux('send-keys', '-t', SESSION, '-l', 'Hello there');
      tmux('send-keys', '-t', SESSION, 'Enter');
      const partial = await until('the first words of the answer', (t) => {
        const answer = answerAfter(t, 'Hello there');
        return answer !== undefined && answer.trim().length > 0;
      });
      assert.doesNotMatch(answerAfter(partial, 'Hello there') ?? '', /\n> ?$/, 'still streaming');
      // 100 tokens of slow simulated time: 10-20 s on a quiet machine, longer on a loaded one
      // (the simulation falls behind); the deadline only bounds a hang.
      const answered = await until('the answer to end', (t) => {
        const answer = answerAfter(t, 'Hello there');
        return answer !== undefined && /\S[\s\S]*\n> ?$/.test(answer);
      }, 120_000);
      assert.ok((answerAfter(answered, 'Hello there') ?? '').split(/\s+/).length > 20, answered);

      // A trailing backslash continues the message on a "." prompt.
      tmux('send-keys', '-t', SESSION, '-l', 'first line\\');
      tmux('send-keys', '-t', SESSION, 'Enter');
      await until('the continuation prompt', () => /^\. ?$/.test(lastLine()));
      tmux('send-keys', '-t', SESSION, '-l', 'second line');
      tmux('send-keys', '-t', SESSION, 'Enter');
      await until('the second answer to start', (t) => {
        const answer = answerAfter(t, 'first line\\');
        return answer !== undefined && /second line\n.*\S/.test(answer);
      });

      // Ctrl-C stops it; the prompt comes back and the process lives on.
      tmux('send-keys', '-t', SESSION, 'C-c');
      await until('the answer to stop', (t) => /\[stopped\]\n> ?$/.test(t));

      // Up arrow recalls the last line typed.
      tmux('send-keys', '-t', SESSION, 'Up');
      await until('the recalled line', () => lastLine() === '> second line');
      tmux('send-keys', '-t', SESSION, 'C-e', 'C-u');
      await until('an empty prompt', () => /^> ?$/.test(lastLine()));

      // Ctrl-D ends the session with status 0.
      tmux('send-keys', '-t', SESSION, 'C-d');
      const end = await until('the exit status', (t) => /EXIT:\d+/.test(t), 20_000);
      assert.match(end, /EXIT:0/);
    },
  );

  test('sends the whole conversation each turn; /clear starts over; piped input ends it', async () => {
    const stack = await startStack({ frontendArgs: ['--dyn-debug-perf'] });
    try {
      const input = new PassThrough();
      const output = new PassThrough();
      let shown = '';
      output.on('data', (d: Buffer) => (shown += d.toString()));
      input.end(['Hi', 'and\\', 'more', '/clear', 'Hi', '/nope', ''].join('\n'));
      await runChatRepl(stack.frontend.core, { input, output, terminal: false, maxTokens: 5 });
      const turns = stack.logs.filter((l) => l.msg === 'request timings');
      const prompts = turns.map((l) => l.prompt_tokens as number);
      assert.equal(turns.length, 3, shown);
      assert.ok(turns.every((l) => l.model === MODEL && l.completion_tokens === 5));
      // Turn 2 carries turn 1 and its answer; after /clear the first prompt comes back.
      assert.ok((prompts[1] ?? 0) > (prompts[0] ?? 0) + 5, String(prompts));
      assert.equal(prompts[2], prompts[0]);
      assert.match(shown, /\(conversation cleared\)/);
      assert.match(shown, /Ctrl-D exits/); // an unknown command shows the help
      assert.equal(shown.split('\n').filter((l) => l.trim() !== '').length, 5, shown);
    } finally {
      await stack.close();
    }
  });
});
