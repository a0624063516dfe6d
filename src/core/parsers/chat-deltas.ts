/**
 * The output parser per choice, shaped as chat completion deltas: `content`,
 * `reasoning_content` and OpenAI's `tool_calls` deltas (the first one of a call carries its
 * `index`, `id`, `type` and `function.name` with empty arguments; the next ones `index` and
 * `function.arguments` pieces). The chat stream writes these; Responses and Anthropic Messages
 * read the same deltas.
 */
import type { ModelCard } from '../discovery/model-card.ts';
import type { Logger } from '../logger.ts';
import {
  createOutputParser,
  type OutputEvent,
  type OutputParser,
  type ToolMode,
} from './output.ts';
import { isReasoningParser } from './reasoning.ts';
import { isToolCallParser } from './tool-calls.ts';

export interface ToolCallDelta {
  index: number;
  id?: string;
  type?: 'function';
  function: { name?: string; arguments: string };
}

export interface ParsedDelta {
  content?: string;
  reasoning_content?: string;
  tool_calls?: ToolCallDelta[];
}

export interface ParserNames {
  reasoningParser?: string;
  toolCallParser?: string;
}

const warned = new WeakSet<ModelCard>();

/**
 * The card's parser names the frontend implements. An unknown reasoning parser falls back to
 * `basic` (`<think>`), as Dynamo does; an unknown tool-call parser parses no tool calls. Both
 * are logged once per card.
 */
export function parserNamesOf(card: ModelCard, logger?: Logger): ParserNames {
  const reasoning = card.runtime_config.reasoning_parser ?? undefined;
  const tools = card.runtime_config.tool_call_parser ?? undefined;
  const out: ParserNames = {};
  if (reasoning) out.reasoningParser = isReasoningParser(reasoning) ? reasoning : 'basic';
  if (tools && isToolCallParser(tools)) out.toolCallParser = tools;
  if (
    !warned.has(card) &&
    ((reasoning && !isReasoningParser(reasoning)) || (tools && !isToolCallParser(tools)))
  ) {
    warned.add(card);
    logger?.warn('the model card names a parser the frontend does not have', {
      model: card.display_name,
      reasoning_parser: reasoning,
      tool_call_parser: tools,
    });
  }
  return out;
}

/** The request's function tools' parameter schemas by name. */
export function toolSchemasOf(tools: readonly unknown[] | null | undefined): Map<string, unknown> {
  const map = new Map<string, unknown>();
  for (const t of tools ?? []) {
    const fn = (t as { function?: { name?: unknown; parameters?: unknown } }).function;
    if (typeof fn?.name === 'string') map.set(fn.name, fn.parameters);
  }
  return map;
}

export interface ChatDeltaParserOptions extends ParserNames {
  tools: ToolMode;
  /** Parameter schemas of the request's tools, by name. @default none */
  toolSchemas?: ReadonlyMap<string, unknown>;
  prompt?: string;
  /** `parallel_tool_calls: false`: only the first call is sent. @default true */
  parallelToolCalls?: boolean;
  /** A fresh id for a call (`call_` is put in front). */
  newId: () => string;
}

export interface ChatDeltaParser {
  /** Whether anything is parsed at all (else text passes through untouched). */
  readonly active: boolean;
  /** The deltas of `text` for choice `index`; `final` flushes what the parser holds. */
  push(index: number, text: string, final: boolean): ParsedDelta;
  /** Choice `index` produced a tool call (its finish reason becomes `tool_calls`). */
  sawToolCall(index: number): boolean;
}

export function createChatDeltaParser(options: ChatDeltaParserOptions): ChatDeltaParser {
  const probe = createOutputParser(options);
  const parsers = new Map<number, OutputParser>();
  const parallel = options.parallelToolCalls !== false;
  const parserOf = (index: number) => {
    let parser = parsers.get(index);
    if (!parser) {
      parser = index === 0 && probe ? probe : createOutputParser(options)!;
      parsers.set(index, parser);
    }
    return parser;
  };

  const shape = (events: OutputEvent[]): ParsedDelta => {
    const delta: ParsedDelta = {};
    const calls: ToolCallDelta[] = [];
    for (const e of events) {
      if (e.type === 'content') delta.content = (delta.content ?? '') + e.text;
      else if (e.type === 'reasoning') {
        delta.reasoning_content = (delta.reasoning_content ?? '') + e.text;
      } else if (e.type === 'call') {
        if (!parallel && e.index > 0) continue;
        calls.push({
          index: e.index,
          id: e.id ?? `call_${options.newId().replaceAll('-', '')}`,
          type: 'function',
          function: { name: e.name, arguments: '' },
        });
      } else if (e.type === 'args') {
        if (!parallel && e.index > 0) continue;
        const last = calls[calls.length - 1];
        if (last?.index === e.index) last.function.arguments += e.text;
        else calls.push({ index: e.index, function: { arguments: e.text } });
      }
    }
    if (calls.length > 0) delta.tool_calls = calls;
    return delta;
  };

  return {
    active: probe !== undefined,
    push(index, text, final) {
      const parser = parserOf(index);
      const events = text === '' ? [] : parser.push(text);
      if (final) events.push(...parser.finish());
      return shape(events);
    },
    sawToolCall: (index) => parsers.get(index)?.sawToolCall === true,
  };
}
