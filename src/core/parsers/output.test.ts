import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { createOutputParser, type OutputEvent, type OutputParserOptions } from './output.ts';

interface Folded {
  content: string;
  reasoning: string;
  calls: Array<{ name: string; arguments: string; id?: string }>;
  /** Argument pieces seen per call (to prove streaming). */
  pieces: number[];
  events: OutputEvent[];
}

function fold(events: OutputEvent[]): Folded {
  const out: Folded = { content: '', reasoning: '', calls: [], pieces: [], events };
  const open = new Set<number>();
  for (const e of events) {
    if (e.type === 'content') out.content += e.text;
    else if (e.type === 'reasoning') out.reasoning += e.text;
    else if (e.type === 'call') {
      assert.equal(e.index, out.calls.length, 'calls are numbered in order');
      out.calls.push({ name: e.name, arguments: '', ...(e.id ? { id: e.id } : {}) });
      out.pieces.push(0);
      open.add(e.index);
    } else if (e.type === 'args') {
      assert.ok(open.has(e.index), 'arguments come after their call and before its end');
      out.calls[e.index]!.arguments += e.text;
      out.pieces[e.index]!++;
    } else {
      assert.ok(open.delete(e.index), 'a call ends once');
    }
  }
  assert.equal(open.size, 0, 'every call ended');
  return out;
}

/** Runs `text` through a fresh parser cut into pieces of `size` characters (0: whole). */
function run(options: OutputParserOptions, text: string, size = 0): Folded {
  const parser = createOutputParser(options);
  assert.ok(parser);
  const events: OutputEvent[] = [];
  const step = size === 0 ? text.length || 1 : size;
  for (let i = 0; i < text.length; i += step) events.push(...parser.push(text.slice(i, i + step)));
  events.push(...parser.finish());
  return fold(events);
}

/** The same answer whatever the chunking: whole, 1 char, 2, 3 and 7 chars at a time. */
function same(options: OutputParserOptions, text: string): Folded {
  const whole = run(options, text);
  for (const size of [1, 2, 3, 7]) {
    const cut = run(options, text, size);
    assert.equal(cut.content, whole.content, `content with pieces of ${size}`);
    assert.equal(cut.reasoning, whole.reasoning, `reasoning with pieces of ${size}`);
    assert.deepEqual(
      cut.calls.map((c) => ({ ...c, arguments: JSON.parse(c.arguments) })),
      whole.calls.map((c) => ({ ...c, arguments: JSON.parse(c.arguments) })),
      `calls with pieces of ${size}`,
    );
  }
  return whole;
}

const auto = (toolCallParser: string, reasoningParser?: string): OutputParserOptions => ({
  toolCallParser,
  ...(reasoningParser ? { reasoningParser } : {}),
  tools: { kind: 'auto' },
});
const args = (f: Folded) => f.calls.map((c) => [c.name, JSON.parse(c.arguments)]);

describe('reasoning parsers', () => {
  test('qwen3: <think> blocks become reasoning, the rest content, markers split anywhere', () => {
    const f = same(
      { reasoningParser: 'qwen3', tools: { kind: 'off' } },
      '<think>\nLet me see: 2+2.\n</think>\n\nIt is 4.',
    );
    assert.equal(f.reasoning, 'Let me see: 2+2.\n');
    assert.equal(f.content, 'It is 4.');
  });

  test('qwen3 without a think block is all content; a lone "<" is not held forever', () => {
    const f = same({ reasoningParser: 'qwen3', tools: { kind: 'off' } }, 'a < b and <thin');
    assert.equal(f.content, 'a < b and <thin');
    assert.equal(f.reasoning, '');
  });

  test('qwen3 starts inside reasoning when the prompt ends with <think>', () => {
    const f = run(
      {
        reasoningParser: 'qwen3',
        tools: { kind: 'off' },
        prompt: 'x<|im_start|>assistant\n<think>\n',
      },
      'hmm</think>ok',
    );
    assert.equal(f.reasoning, 'hmm');
    assert.equal(f.content, 'ok');
  });

  test('deepseek_r1 reasons from the first token, with or without the opening marker', () => {
    for (const text of ['step one</think>Answer', '<think>step one</think>Answer']) {
      const f = same({ reasoningParser: 'deepseek_r1', tools: { kind: 'off' } }, text);
      assert.equal(f.reasoning, 'step one');
      assert.equal(f.content, 'Answer');
    }
    const cut = run({ reasoningParser: 'deepseek_r1', tools: { kind: 'off' } }, 'never closed');
    assert.equal(cut.reasoning, 'never closed');
  });

  test('kimi uses ◁think▷ and mistral [THINK]', () => {
    const k = same({ reasoningParser: 'kimi', tools: { kind: 'off' } }, '◁think▷a◁/think▷b');
    assert.deepEqual([k.reasoning, k.content], ['a', 'b']);
    const m = same({ reasoningParser: 'mistral', tools: { kind: 'off' } }, '[THINK]a[/THINK]b');
    assert.deepEqual([m.reasoning, m.content], ['a', 'b']);
  });
});

describe('tool-call parsers', () => {
  test('hermes: text, then parallel calls; arguments stream in pieces', () => {
    const text = 'Checking.\n<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris", ' +
      '"days": [1, 2]}}\n</tool_call>\n<tool_call>\n{"name": "get_time", "arguments": ' +
      '{"tz": "CET"}}\n</tool_call>';
    const f = same(auto('hermes'), text);
    assert.equal(f.content, 'Checking.\n');
    assert.deepEqual(args(f), [['get_weather', { city: 'Paris', days: [1, 2] }], [
      'get_time',
      { tz: 'CET' },
    ]]);
    const streamed = run(auto('hermes'), text, 3);
    assert.ok((streamed.pieces[0] ?? 0) > 5, `arguments arrive in pieces: ${streamed.pieces}`);
    // The call (with its name) comes before any of its arguments.
    const first = streamed.events.findIndex((e) => e.type === 'call');
    const firstArgs = streamed.events.findIndex((e) => e.type === 'args');
    assert.ok(first >= 0 && first < firstArgs);
  });

  test('hermes with reasoning first (qwen3 + hermes, as Qwen3 answers)', () => {
    const f = same(
      auto('hermes', 'qwen3'),
      '<think>The user wants weather.</think>\n\n<tool_call>\n{"name": "w", "arguments": {}}\n</tool_call>',
    );
    assert.equal(f.reasoning, 'The user wants weather.');
    assert.equal(f.content, '');
    assert.deepEqual(args(f), [['w', {}]]);
  });

  test('hermes: other key orders and string arguments are parsed whole; junk stays text', () => {
    const f = same(
      auto('hermes'),
      '<tool_call>{"arguments": "{\\"a\\": 1}", "name": "x"}</tool_call>',
    );
    assert.deepEqual(args(f), [['x', { a: 1 }]]);
    const junk = run(auto('hermes'), 'a <tool_call>not json</tool_call> b', 1);
    assert.equal(junk.content, 'a <tool_call>not json</tool_call> b');
    assert.equal(junk.calls.length, 0);
  });

  test('hermes: a call cut off by max_tokens ends with what arrived', () => {
    const f = run(auto('hermes'), '<tool_call>{"name": "x", "arguments": {"a": "lo', 2);
    assert.equal(f.calls[0]?.name, 'x');
    assert.equal(f.calls[0]?.arguments, '{"a": "lo');
  });

  test('nemotron_deci and jamba: an array inside the markers', () => {
    const f = same(
      auto('nemotron_deci'),
      '<TOOLCALL>[{"name": "a", "arguments": {"x": 1}}, {"name": "b", "arguments": {}}]</TOOLCALL>',
    );
    assert.deepEqual(args(f), [['a', { x: 1 }], ['b', {}]]);
    const j = same(
      auto('jamba'),
      '<tool_calls>[{"name": "a", "arguments": {"x": 1}}]</tool_calls>',
    );
    assert.deepEqual(args(j), [['a', { x: 1 }]]);
  });

  test('llama3_json: <|python_tag|> or a bare JSON answer, "parameters", ";" between calls', () => {
    const f = same(
      auto('llama3_json'),
      '<|python_tag|>{"name": "a", "parameters": {"x": 1}}; {"name": "b", "parameters": {"y": "z"}}',
    );
    assert.deepEqual(args(f), [['a', { x: 1 }], ['b', { y: 'z' }]]);
    const bare = same(auto('llama3_json'), '  {"name": "a", "parameters": {"q": "{}"}}');
    assert.deepEqual(args(bare), [['a', { q: '{}' }]]);
    const prose = same(auto('llama3_json'), 'Use {braces} freely.');
    assert.equal(prose.content, 'Use {braces} freely.');
    assert.equal(prose.calls.length, 0);
  });

  test('mistral: the JSON array form and the [ARGS] form', () => {
    const f = same(
      auto('mistral'),
      '[TOOL_CALLS][{"name": "a", "arguments": {"x": 1}}, {"name": "b", "arguments": {"y": 2}}]',
    );
    assert.deepEqual(args(f), [['a', { x: 1 }], ['b', { y: 2 }]]);
    const v11 = same(auto('mistral'), '[TOOL_CALLS]a[ARGS]{"x": {"n": 1}}[TOOL_CALLS]b[ARGS]{}');
    assert.deepEqual(args(v11), [['a', { x: { n: 1 } }], ['b', {}]]);
  });

  test('phi4: functools[...]', () => {
    const f = same(auto('phi4'), 'functools[{"name": "a", "arguments": {"x": 1}}]');
    assert.deepEqual(args(f), [['a', { x: 1 }]]);
  });

  test('deepseek_v3: fenced JSON per call, two calls', () => {
    const call = (name: string, json: string) =>
      `<｜tool▁call▁begin｜>function<｜tool▁sep｜>${name}\n\`\`\`json\n${json}\n\`\`\`<｜tool▁call▁end｜>`;
    const f = same(
      auto('deepseek_v3'),
      `Sure.<｜tool▁calls▁begin｜>${call('a', '{"x": "a`b"}')}\n${
        call('b', '{}')
      }<｜tool▁calls▁end｜>Done`,
    );
    assert.equal(f.content, 'Sure.Done');
    assert.deepEqual(args(f), [['a', { x: 'a`b' }], ['b', {}]]);
  });

  test('deepseek_v3_1: name<｜tool▁sep｜>arguments', () => {
    const f = same(
      auto('deepseek_v3_1'),
      '<｜tool▁calls▁begin｜><｜tool▁call▁begin｜>get_weather<｜tool▁sep｜>{"city": "Oslo"}' +
        '<｜tool▁call▁end｜><｜tool▁calls▁end｜>',
    );
    assert.deepEqual(args(f), [['get_weather', { city: 'Oslo' }]]);
  });

  test('kimi_k2: section, functions.NAME:IDX ids, arguments streamed', () => {
    const text = 'ok <|tool_calls_section_begin|><|tool_call_begin|>functions.search:0' +
      '<|tool_call_argument_begin|>{"q": "cats"}<|tool_call_end|><|tool_call_begin|>' +
      'functions.open:1<|tool_call_argument_begin|>{"id": 3}<|tool_call_end|>' +
      '<|tool_calls_section_end|>';
    const f = same(auto('kimi_k2'), text);
    assert.equal(f.content, 'ok ');
    assert.deepEqual(args(f), [['search', { q: 'cats' }], ['open', { id: 3 }]]);
    assert.deepEqual(f.calls.map((c) => c.id), ['functions.search:0', 'functions.open:1']);
    assert.ok((run(auto('kimi_k2'), text, 2).pieces[0] ?? 0) > 3);
  });

  test('harmony (gpt-oss): analysis is reasoning, commentary to=functions.* a call, final content', () => {
    const text = '<|channel|>analysis<|message|>Need weather.<|end|><|start|>assistant' +
      '<|channel|>commentary to=functions.get_weather <|constrain|>json<|message|>' +
      '{"city": "SF"}<|call|>';
    const f = same(auto('harmony', 'gpt_oss'), text);
    assert.equal(f.reasoning, 'Need weather.');
    assert.deepEqual(args(f), [['get_weather', { city: 'SF' }]]);
    const answer = same(
      { reasoningParser: 'gpt_oss', tools: { kind: 'off' } },
      '<|channel|>analysis<|message|>think<|end|><|start|>assistant<|channel|>final<|message|>Hi!<|return|>',
    );
    assert.deepEqual([answer.reasoning, answer.content], ['think', 'Hi!']);
  });

  test('tool parsing is off with tool_choice none (or no tools): markers stay text', () => {
    const text = '<tool_call>{"name": "a", "arguments": {}}</tool_call>';
    assert.equal(
      createOutputParser({ toolCallParser: 'hermes', tools: { kind: 'off' } }),
      undefined,
    );
    const f = run(
      { toolCallParser: 'hermes', reasoningParser: 'qwen3', tools: { kind: 'off' } },
      text,
      1,
    );
    assert.equal(f.content, text);
  });
});

describe('guided tool choice', () => {
  test('required: a JSON array of {name, parameters}', () => {
    const f = same(
      { tools: { kind: 'required' } },
      '[{"name": "a", "parameters": {"x": 1}}, {"name": "b", "parameters": {}}]',
    );
    assert.deepEqual(args(f), [['a', { x: 1 }], ['b', {}]]);
  });

  test('named: the whole answer is the arguments, streamed', () => {
    const f = same({ tools: { kind: 'named', name: 'pick' } }, ' {"choice": "red"}');
    assert.deepEqual(args(f), [['pick', { choice: 'red' }]]);
    assert.ok(
      (run({ tools: { kind: 'named', name: 'pick' } }, '{"choice": "red"}', 2).pieces[0] ?? 0) > 3,
    );
  });

  test('reasoning before a guided answer is still split off', () => {
    const f = same(
      { reasoningParser: 'qwen3', tools: { kind: 'named', name: 'pick' } },
      '<think>hm</think>{"c": 1}',
    );
    assert.equal(f.reasoning, 'hm');
    assert.deepEqual(args(f), [['pick', { c: 1 }]]);
  });
});

describe('partialLength()', () => {
  test('the longest end of the text that starts a marker, never a whole marker', async () => {
    const { partialLength } = await import('./_scan.ts');
    assert.equal(partialLength('abc<tool_ca', ['<tool_call>']), 8);
    assert.equal(partialLength('abc<', ['<tool_call>', '<think>']), 1);
    assert.equal(partialLength('x<th', ['<tool_call>', '<think>']), 3);
    assert.equal(partialLength('<tool_call>', ['<tool_call>']), 0);
    assert.equal(partialLength('a<<', ['<<x']), 2);
    assert.equal(partialLength('', ['<a>']), 0);
    assert.equal(partialLength('plain', ['<a>']), 0);
  });
});

describe('XML tool calls (qwen3_coder)', () => {
  const schemas = new Map<string, unknown>([[
    'get_weather',
    {
      type: 'object',
      properties: { city: { type: 'string' }, days: { type: 'integer' }, opts: { type: 'object' } },
    },
  ]]);
  const xml = (toolCallParser: string): OutputParserOptions => ({
    toolCallParser,
    tools: { kind: 'auto' },
    toolSchemas: schemas,
  });

  test('parameters become typed JSON arguments, one parameter at a time; parallel calls', () => {
    const text = 'Sure.\n<tool_call>\n<function=get_weather>\n<parameter=city>\nNew York\n' +
      '</parameter>\n<parameter=days>\n3\n</parameter>\n<parameter=opts>\n{"u": "c"}\n' +
      '</parameter>\n</function>\n</tool_call>\n<tool_call>\n<function=get_time>\n' +
      '<parameter=tz>\n5\n</parameter>\n</function>\n</tool_call>';
    const f = same(xml('qwen3_coder'), text);
    assert.equal(f.content, 'Sure.\n');
    assert.deepEqual(args(f), [
      ['get_weather', { city: 'New York', days: 3, opts: { u: 'c' } }],
      // No schema for get_time: values stay strings.
      ['get_time', { tz: '5' }],
    ]);
    assert.ok((run(xml('qwen3_coder'), text, 2).pieces[0] ?? 0) >= 4);
  });

  test('a bare <function=...> without the wrapper (nemotron_nano too); a cut call closes', () => {
    const f = same(
      xml('nemotron_nano'),
      '<function=get_weather><parameter=city>Oslo</parameter></function> done',
    );
    assert.deepEqual(args(f), [['get_weather', { city: 'Oslo' }]]);
    assert.equal(f.content, 'done');
    const cut = run(xml('qwen3_coder'), '<tool_call><function=get_weather><parameter=city>Ri', 3);
    assert.deepEqual(args(cut), [['get_weather', { city: 'Ri' }]]);
  });

  test('minimax_m2: <invoke name="N"> with quoted names', () => {
    const f = same(
      xml('minimax_m2'),
      'ok<minimax:tool_call>\n<invoke name="get_weather">\n<parameter name="city">Lima</parameter>' +
        '\n<parameter name="days">2</parameter>\n</invoke>\n</minimax:tool_call>',
    );
    assert.equal(f.content, 'ok');
    assert.deepEqual(args(f), [['get_weather', { city: 'Lima', days: 2 }]]);
  });

  test('deepseek_v3_2 and deepseek_v4 (DSML): string="true|false" types each value', () => {
    const call = (block: string) =>
      `<｜DSML｜${block}>\n<｜DSML｜invoke name="f">\n` +
      '<｜DSML｜parameter name="q" string="true">42</｜DSML｜parameter>\n' +
      '<｜DSML｜parameter name="n" string="false">42</｜DSML｜parameter>\n' +
      '<｜DSML｜parameter name="o" string="false">{"a": [1]}</｜DSML｜parameter>\n' +
      `</｜DSML｜invoke>\n</｜DSML｜${block}>`;
    for (
      const [name, block] of [['deepseek_v3_2', 'function_calls'], ['deepseek_v4', 'tool_calls']]
    ) {
      const f = same(xml(name!), `Hi.${call(block!)}`);
      assert.equal(f.content, 'Hi.');
      assert.deepEqual(args(f), [['f', { q: '42', n: 42, o: { a: [1] } }]]);
    }
  });

  test('glm47: <arg_key>/<arg_value> pairs, one call per wrapper', () => {
    const f = same(
      xml('glm47'),
      'Let me look.<tool_call>get_weather\n<arg_key>city</arg_key>\n<arg_value>Rome</arg_value>\n' +
        '<arg_key>days</arg_key>\n<arg_value>4</arg_value>\n</tool_call><tool_call>get_time\n' +
        '</tool_call>',
    );
    assert.equal(f.content, 'Let me look.');
    assert.deepEqual(args(f), [['get_weather', { city: 'Rome', days: 4 }], ['get_time', {}]]);
  });

  test('pythonic: a list of calls as the answer; Python literals become JSON', () => {
    const f = same(
      auto('pythonic'),
      "[get_weather(city='San Francisco', days=3, opts={'u': True, 'n': None}), get_time()]",
    );
    assert.deepEqual(args(f), [
      ['get_weather', { city: 'San Francisco', days: 3, opts: { u: true, n: null } }],
      ['get_time', {}],
    ]);
    const wrapped = same(auto('pythonic'), '<|python_start|>[f(x="a, b")]<|python_end|>');
    assert.deepEqual(args(wrapped), [['f', { x: 'a, b' }]]);
    const text = same(auto('pythonic'), '[1] is a footnote, not a call.');
    assert.equal(text.content, '[1] is a footnote, not a call.');
    assert.equal(text.calls.length, 0);
  });
});
