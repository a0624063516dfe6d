/**
 * The output-parsing stage of a choice: a pure incremental transformer fed the choice's text
 * deltas (after detokenization and stop handling), emitting typed events: content, reasoning,
 * and tool calls (the name first, then the arguments in pieces, then the end). Chat,
 * completions, Responses and Anthropic Messages all read these events (through the chat
 * chunks' `content`, `reasoning_content` and `tool_calls` deltas), so every API parses alike.
 *
 * Selected by the model card's `reasoning_parser` and `tool_call_parser` (Dynamo's names);
 * `tool_choice` `required` or a named function switch tool parsing to the bare JSON that guided
 * decoding makes the model write.
 */
import { createHarmonyParser } from './harmony.ts';
import { createReasoningParser, REASONING_PARSERS, reasoningStartOf } from './reasoning.ts';
import {
  createGuidedToolParser,
  createToolCallParser,
  isToolCallParser,
  type ToolCallParser,
  type ToolEvent,
  type ToolSchemas,
} from './tool-calls.ts';

export type OutputEvent =
  | { type: 'content'; text: string }
  | { type: 'reasoning'; text: string }
  | { type: 'call'; index: number; name: string; id?: string }
  | { type: 'args'; index: number; text: string }
  | { type: 'end'; index: number };

export interface OutputParser {
  push(text: string): OutputEvent[];
  finish(): OutputEvent[];
  /** At least one tool call was emitted. */
  readonly sawToolCall: boolean;
}

/** How tool calls are to be read from the answer. */
export type ToolMode =
  /** No tools, or `tool_choice: "none"`: no tool parsing. */
  | { kind: 'off' }
  /** `auto`: the model's own format, by the card's tool-call parser. */
  | { kind: 'auto' }
  /** `required`: guided decoding makes the answer a JSON array of `{name, parameters}`. */
  | { kind: 'required' }
  /** A named function: guided decoding makes the answer that function's arguments. */
  | { kind: 'named'; name: string };

export interface OutputParserOptions {
  /** The card's `reasoning_parser` (a known name, or undefined for none). */
  reasoningParser?: string;
  /** The card's `tool_call_parser` (a known name, or undefined for none). */
  toolCallParser?: string;
  tools: ToolMode;
  /** The rendered prompt, to tell whether the template already opened the reasoning. */
  prompt?: string;
  /** The request's tools' parameter schemas, by name (XML formats type values with them). */
  toolSchemas?: ToolSchemas;
}

/** True when the rendered prompt leaves the model inside a reasoning block (`...<think>\n`). */
export function promptOpensReasoning(parser: string | undefined, prompt: string | undefined) {
  if (!parser || prompt === undefined) return false;
  const start = reasoningStartOf(parser);
  return start !== undefined && prompt.trimEnd().endsWith(start);
}

/**
 * The parser for one choice, or undefined when there is nothing to parse (no reasoning parser
 * and no tool parsing): the text then passes through untouched.
 */
export function createOutputParser(options: OutputParserOptions): OutputParser | undefined {
  const { reasoningParser, toolCallParser, tools } = options;
  const harmony = reasoningParser === 'gpt_oss' ||
    (toolCallParser === 'harmony' && tools.kind === 'auto');
  let sawToolCall = false;
  const note = (events: OutputEvent[]) => {
    if (!sawToolCall && events.some((e) => e.type === 'call')) sawToolCall = true;
    return events;
  };

  if (harmony && (tools.kind === 'auto' || tools.kind === 'off')) {
    const parser = createHarmonyParser({
      toolCalls: tools.kind === 'auto' && toolCallParser === 'harmony',
    });
    return {
      push: (text) => note(parser.push(text)),
      finish: () => note(parser.finish()),
      get sawToolCall() {
        return sawToolCall;
      },
    };
  }

  const reasoning = reasoningParser && typeof REASONING_PARSERS[reasoningParser] === 'object'
    ? createReasoningParser(reasoningParser, {
      inReasoning: promptOpensReasoning(reasoningParser, options.prompt),
    })
    : undefined;
  let toolParser: ToolCallParser | undefined;
  if (tools.kind === 'required') toolParser = createGuidedToolParser({ required: true });
  else if (tools.kind === 'named') toolParser = createGuidedToolParser({ name: tools.name });
  else if (
    tools.kind === 'auto' && toolCallParser && toolCallParser !== 'harmony' &&
    isToolCallParser(toolCallParser)
  ) {
    toolParser = createToolCallParser(toolCallParser, { tools: options.toolSchemas });
  }
  if (!reasoning && !toolParser) return undefined;

  const run = (split: { reasoning: string; content: string }, final: boolean): OutputEvent[] => {
    const events: OutputEvent[] = [];
    if (split.reasoning !== '') events.push({ type: 'reasoning', text: split.reasoning });
    if (toolParser) {
      const tool: ToolEvent[] = split.content !== '' ? toolParser.push(split.content) : [];
      if (final) tool.push(...toolParser.finish());
      events.push(...tool);
    } else if (split.content !== '') {
      events.push({ type: 'content', text: split.content });
    }
    return note(events);
  };

  return {
    push: (text) => run(reasoning ? reasoning.push(text) : { reasoning: '', content: text }, false),
    finish: () => run(reasoning ? reasoning.finish() : { reasoning: '', content: '' }, true),
    get sawToolCall() {
      return sawToolCall;
    },
  };
}
