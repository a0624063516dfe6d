/**
 * CPU the output parsers add per streamed token: each family's typical answer (reasoning, text,
 * two tool calls, ~400 tokens) cut into token-sized deltas (the fixture's Qwen3 tokenizer,
 * decoded one token at a time) and pushed through `createChatDeltaParser`, the exact stage the
 * chat pipeline runs per chunk. Prints microseconds per token (median of runs) next to the
 * unparsed pass-through. Results go in docs/preprocessing.md.
 *
 *   node --import tsx bench/parsers.ts [--runs 7]
 *   bun bench/parsers.ts
 *   deno run -A bench/parsers.ts
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { createChatDeltaParser } from '../src/core/parsers/chat-deltas.ts';
import type { ToolMode } from '../src/core/parsers/output.ts';
import { loadTokenizer } from '../src/core/preprocess/tokenizer.ts';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const MODEL = `${ROOT}tests/fixtures/model/`;
const { values: args } = parseArgs({ options: { runs: { type: 'string', default: '7' } } });
const runs = Number(args.runs);

const words = (n: number) =>
  Array.from({ length: n }, (_, i) => ['the', 'weather', 'in', 'Paris', 'is', 'mild,', 'so'][i % 7])
    .join(' ');
const argsJson = (city: string) =>
  JSON.stringify({ city, days: 3, units: 'metric', note: words(30) }, null, 1);

const think = `<think>\n${words(120)}\n</think>\n\n`;
const CASES: Array<{ name: string; reasoning?: string; tools?: string; text: string }> = [
  {
    name: 'hermes + qwen3',
    reasoning: 'qwen3',
    tools: 'hermes',
    text: `${think}${words(40)}\n<tool_call>\n{"name": "get_weather", "arguments": ${
      argsJson('Paris')
    }}\n</tool_call>\n<tool_call>\n{"name": "get_weather", "arguments": ${
      argsJson('Rome')
    }}\n</tool_call>`,
  },
  {
    name: 'llama3_json',
    tools: 'llama3_json',
    text: `<|python_tag|>{"name": "get_weather", "parameters": ${argsJson('Paris')}}; ` +
      `{"name": "get_weather", "parameters": ${argsJson('Rome')}}`,
  },
  {
    name: 'mistral',
    tools: 'mistral',
    text: `${words(40)}[TOOL_CALLS][{"name": "get_weather", "arguments": ${
      argsJson('Paris')
    }}, {"name": "get_weather", "arguments": ${argsJson('Rome')}}]`,
  },
  {
    name: 'deepseek_v3 + deepseek_r1',
    reasoning: 'deepseek_r1',
    tools: 'deepseek_v3',
    text: `${words(120)}</think>${words(40)}<｜tool▁calls▁begin｜><｜tool▁call▁begin｜>function` +
      `<｜tool▁sep｜>get_weather\n\`\`\`json\n${argsJson('Paris')}\n\`\`\`<｜tool▁call▁end｜>` +
      `<｜tool▁calls▁end｜>`,
  },
  {
    name: 'kimi_k2',
    tools: 'kimi_k2',
    text: `${words(40)}<|tool_calls_section_begin|><|tool_call_begin|>functions.get_weather:0` +
      `<|tool_call_argument_begin|>${argsJson('Paris')}<|tool_call_end|>` +
      `<|tool_calls_section_end|>`,
  },
  {
    name: 'harmony (gpt_oss)',
    reasoning: 'gpt_oss',
    tools: 'harmony',
    text: `<|channel|>analysis<|message|>${words(120)}<|end|><|start|>assistant<|channel|>` +
      `commentary to=functions.get_weather <|constrain|>json<|message|>${
        argsJson('Paris')
      }<|call|>`,
  },
  { name: 'reasoning only (qwen3), no tools', reasoning: 'qwen3', text: `${think}${words(200)}` },
];

const tokenizer = await loadTokenizer({
  tokenizerJson: readFileSync(`${MODEL}tokenizer.json`, 'utf8'),
  tokenizerConfigJson: readFileSync(`${MODEL}tokenizer_config.json`, 'utf8'),
});
const pieces = (text: string) =>
  tokenizer.encode(text, { addSpecialTokens: false }).map((id) => tokenizer.decode([id]));

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
let sink = 0;
function measure(deltas: string[], make: () => ReturnType<typeof createChatDeltaParser>) {
  const REPEAT = 200;
  const times: number[] = [];
  for (let r = 0; r < runs + 2; r++) {
    const start = performance.now();
    for (let k = 0; k < REPEAT; k++) {
      const p = make();
      for (let i = 0; i < deltas.length; i++) {
        const d = p.active
          ? p.push(0, deltas[i]!, i === deltas.length - 1)
          : { content: deltas[i]! };
        sink += d.content?.length ?? 0;
      }
    }
    const us = (performance.now() - start) * 1000 / (REPEAT * deltas.length);
    if (r >= 2) times.push(us); // two warm-up runs
  }
  return median(times);
}

let n = 0;
const newId = () => `id-${n++}`;
const runtime = 'Bun' in globalThis ? 'bun' : 'Deno' in globalThis ? 'deno' : 'node';
console.log(`runtime ${runtime}, median of ${runs} runs, us per streamed token`);
console.log('| case | tokens | pass-through | parsed |');
console.log('|---|---:|---:|---:|');
for (const c of CASES) {
  const deltas = pieces(c.text);
  const tools: ToolMode = c.tools ? { kind: 'auto' } : { kind: 'off' };
  const plain = measure(deltas, () => createChatDeltaParser({ tools: { kind: 'off' }, newId }));
  const parsed = measure(deltas, () =>
    createChatDeltaParser({
      ...(c.reasoning ? { reasoningParser: c.reasoning } : {}),
      ...(c.tools ? { toolCallParser: c.tools } : {}),
      tools,
      newId,
    }));
  console.log(`| ${c.name} | ${deltas.length} | ${plain.toFixed(3)} | ${parsed.toFixed(3)} |`);
}
if (sink < 0) console.log(sink);
