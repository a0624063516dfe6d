/**
 * Writes a synthetic trace in the Mooncake format (`../shared/traces/README.md`) with a structure
 * unlike the public one, so routing can be checked on more than one file: multi-turn
 * conversations that each start from one of a few shared system prompts, most with a private
 * document after it, each turn appending the last answer and a new user message. Conversations
 * start as a Poisson process; a turn follows the previous one's end after an exponential think
 * time (the trace does not know the serving latency, so "end" is the arrival plus an assumed
 * service time of 40 ms per output token). Deterministic for a seed.
 *
 * Hash ids follow the format: one per 512-token block of a conversation's token stream; a full
 * block keeps its id in every later turn, and a turn's last, partial block gets a fresh one
 * (its content changes with the next turn). Shared system prompts have the same ids everywhere.
 *
 *   node --import tsx bench/make-trace.ts [--conversations 300] [--turns 4] [--rate 2]
 *     [--seed 1] > trace.jsonl
 */
import process from 'node:process';
import { parseArgs } from 'node:util';
import { createRandom } from '../src/mocker/engine/random.ts';

const BLOCK = 512;

const HELP = `Usage: node --import tsx bench/make-trace.ts [options] > trace.jsonl
  --conversations N  conversations (default: 300)
  --turns N          mean turns per conversation, 1 or more (default: 4)
  --rate R           conversations started per second (default: 2)
  --think-secs S     mean think time between a turn's end and the next (default: 20)
  --system-prompts N shared system prompts (default: 4), 1,024-4,096 tokens each
  --doc-share F      share of conversations with a private document (default: 0.7), 2k-16k tokens
  --seed N           (default: 1)
`;

const { values } = parseArgs({
  options: {
    conversations: { type: 'string', default: '300' },
    turns: { type: 'string', default: '4' },
    rate: { type: 'string', default: '2' },
    'think-secs': { type: 'string', default: '20' },
    'system-prompts': { type: 'string', default: '4' },
    'doc-share': { type: 'string', default: '0.7' },
    seed: { type: 'string', default: '1' },
    help: { type: 'boolean', short: 'h', default: false },
  },
});
if (values.help) {
  process.stdout.write(HELP);
  process.exit(0);
}
const num = (name: string, min: number) => {
  const n = Number(values[name as keyof typeof values]);
  if (!(n >= min)) {
    process.stderr.write(`make-trace: --${name} must be a number >= ${min}\n`);
    process.exit(1);
  }
  return n;
};
const conversations = num('conversations', 1);
const meanTurns = num('turns', 1);
const rate = num('rate', 0.001);
const thinkSecs = num('think-secs', 0);
const systemPrompts = num('system-prompts', 1);
const docShare = num('doc-share', 0);
const random = createRandom(num('seed', 0));

const between = (lo: number, hi: number) => Math.floor(lo + random() * (hi - lo + 1));
const exponential = (mean: number) => -Math.log(1 - random()) * mean;

let nextId = 0;
const systems = Array.from({ length: systemPrompts }, () => {
  const tokens = between(2, 8) * BLOCK; // whole blocks: a shared prefix ends on a boundary
  return { tokens, ids: Array.from({ length: tokens / BLOCK }, () => nextId++) };
});

interface Row {
  timestamp: number;
  input_length: number;
  output_length: number;
  hash_ids: number[];
}
const rows: Row[] = [];
let start = 0;
for (let c = 0; c < conversations; c++) {
  start += exponential(1000 / rate);
  const system = systems[Math.floor(random() * systems.length)]!;
  const full = [...system.ids];
  let length = system.tokens;
  const extend = (tokens: number) => {
    // Full blocks of the stream so far keep their ids; the tail block is re-issued per turn.
    const before = Math.floor(length / BLOCK);
    length += tokens;
    const after = Math.floor(length / BLOCK);
    for (let b = before; b < after; b++) full.push(nextId++);
  };
  if (random() < docShare) extend(between(2_000, 16_000));
  let at = start;
  const turns = 1 + Math.floor(exponential(meanTurns - 1 + 1e-9));
  for (let t = 0; t < turns; t++) {
    extend(between(50, 800)); // the user's message
    const output = between(50, 500);
    const tail = length % BLOCK === 0 ? [] : [nextId++];
    rows.push({
      timestamp: Math.round(at),
      input_length: length,
      output_length: output,
      hash_ids: [...full, ...tail],
    });
    extend(output); // the answer becomes part of the next prompt
    at += output * 40 + exponential(thinkSecs * 1000);
  }
}
rows.sort((a, b) => a.timestamp - b.timestamp);
for (const row of rows) process.stdout.write(`${JSON.stringify(row)}\n`);
process.stderr.write(
  `make-trace: ${rows.length} requests from ${conversations} conversations over ${
    Math.round((rows.at(-1)?.timestamp ?? 0) / 1000)
  } s\n`,
);
