/**
 * The two answers the parser benches stream (bench/parser-overhead.ts end to end,
 * bench/parser-ab.ts in process): `agent`, a `<think>` block, a sentence and one hermes
 * `<tool_call>` (~130 tokens), and `text`, plain prose (~100 tokens) that the parsers only scan.
 */
export type AnswerKind = 'agent' | 'text';

const words = (n: number, from = 0) =>
  Array.from(
    { length: n },
    (_, i) =>
      ['the', 'weather', 'in', 'Paris', 'is', 'mild', 'today', 'so', 'we', 'walk'][(i + from) % 10],
  ).join(' ');

export const ANSWERS: Record<AnswerKind, string> = {
  agent: `<think>\n${words(60)}.\n</think>\n\nLet me check the weather.\n<tool_call>\n` +
    `{"name": "get_weather", "arguments": {"city": "Paris", "days": 3, "note": "${
      words(30, 3)
    }"}}` +
    '\n</tool_call>',
  text: `${words(100, 5)}.`,
};

/** The tool the agent answer calls. */
export const WEATHER_TOOL = {
  type: 'function',
  function: {
    name: 'get_weather',
    parameters: { type: 'object', properties: { city: { type: 'string' } } },
  },
};

/** The user message the scripted worker answers with each kind. */
export const promptOf = (kind: AnswerKind) => kind === 'agent' ? 'AGENT please' : 'TEXT please';
