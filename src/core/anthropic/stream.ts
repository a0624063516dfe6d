/**
 * Chat completion chunks -> Anthropic Messages stream events (reference §7.3-§7.4), and the fold
 * of those events into the unary `message`, so both answers come from one conversion.
 *
 *   message_start, ping,
 *   per block: content_block_start, content_block_delta..., content_block_stop
 *     (thinking -> thinking_delta, closed by signature_delta "erased"; text -> text_delta;
 *      tool_use -> one input_json_delta with the whole arguments)
 *   message_delta {stop_reason, stop_sequence, usage}, message_stop
 *
 * The chat pipeline forwards a model's text as is (it runs no reasoning or tool-call parser), so
 * the blocks are found here in the text: `<think>...</think>` becomes a thinking block and, when
 * the request declared tools, `<tool_call>{"name":..., "arguments":...}</tool_call>` a tool_use
 * block (the Hermes/Qwen format). `reasoning_content` and `tool_calls` deltas, which an engine
 * behind a text-input model may send, are used as they come.
 */
import type {
  AnthropicContentBlock,
  AnthropicMessage,
  AnthropicStopReason,
  AnthropicUsage,
} from '../protocols/anthropic.ts';
import type { ChatCompletionChunk } from '../protocols/openai.ts';
import { parseToolCallText } from '../responses/to-response.ts';

type Delta =
  | { type: 'text_delta'; text: string }
  | { type: 'thinking_delta'; thinking: string }
  | { type: 'signature_delta'; signature: string }
  | { type: 'input_json_delta'; partial_json: string };

export type MessagesStreamEvent =
  | { type: 'message_start'; message: AnthropicMessage }
  | { type: 'ping' }
  | { type: 'content_block_start'; index: number; content_block: AnthropicContentBlock }
  | { type: 'content_block_delta'; index: number; delta: Delta }
  | { type: 'content_block_stop'; index: number }
  | {
    type: 'message_delta';
    delta: { stop_reason: AnthropicStopReason; stop_sequence: string | null };
    usage: AnthropicUsage;
  }
  | { type: 'message_stop' };

export interface MessagesStreamOptions {
  /** The message id (`msg_...`). */
  id: string;
  model: string;
  /** The prompt's token count, for `message_start` (the final usage replaces it). */
  inputTokens: number;
  /** A fresh unique id for tool_use blocks; dashes are removed. */
  newId: () => string;
  /** The request's `stop_sequences`, to tell a stop sequence from the end of a turn. @default [] */
  stopSequences?: readonly string[];
  /** Turn `<tool_call>` blocks of the text into tool_use blocks. @default false */
  parseToolCalls?: boolean;
  /** Turn `<think>` blocks of the text into thinking blocks. @default true */
  parseThinking?: boolean;
}

// ------------------------------------------------------------------------------------------
// Tags in the text
// ------------------------------------------------------------------------------------------

export type Segment =
  | { kind: 'text' | 'thinking'; text: string }
  | { kind: 'tool'; name: string; arguments: string };

const THINK = '<think>';
const THINK_END = '</think>';
const TOOL = '<tool_call>';
const TOOL_END = '</tool_call>';

/** Length of the longest end of `text` that begins one of `tags` (held back for the next delta). */
function partialTagLength(text: string, tags: readonly string[]): number {
  let best = 0;
  for (const tag of tags) {
    for (let n = Math.min(tag.length - 1, text.length); n > best; n--) {
      if (text.endsWith(tag.slice(0, n))) {
        best = n;
        break;
      }
    }
  }
  return best;
}

/**
 * Splits streamed text into text, thinking and tool-call segments as the deltas arrive, holding
 * back only what could be the start of a tag.
 */
export function createTagSplitter(options: { thinking: boolean; toolCalls: boolean }) {
  const opening = [...(options.thinking ? [THINK] : []), ...(options.toolCalls ? [TOOL] : [])];
  let state: 'text' | 'thinking' | 'tool' = 'text';
  let buffer = '';

  const toolSegment = (body: string, closed: boolean): Segment => {
    const [call] = parseToolCallText(`${TOOL}${body}${TOOL_END}`);
    if (call) return { kind: 'tool', name: call.name, arguments: call.arguments };
    // Not a call after all: the text stays text.
    return { kind: 'text', text: `${TOOL}${body}${closed ? TOOL_END : ''}` };
  };

  const drain = (out: Segment[]) => {
    for (;;) {
      if (state === 'text') {
        let at = -1;
        let tag = '';
        for (const t of opening) {
          const i = buffer.indexOf(t);
          if (i >= 0 && (at < 0 || i < at)) [at, tag] = [i, t];
        }
        if (at < 0) {
          const keep = partialTagLength(buffer, opening);
          out.push({ kind: 'text', text: buffer.slice(0, buffer.length - keep) });
          buffer = buffer.slice(buffer.length - keep);
          return;
        }
        out.push({ kind: 'text', text: buffer.slice(0, at) });
        buffer = buffer.slice(at + tag.length);
        state = tag === THINK ? 'thinking' : 'tool';
      } else if (state === 'thinking') {
        const at = buffer.indexOf(THINK_END);
        if (at < 0) {
          const keep = partialTagLength(buffer, [THINK_END]);
          out.push({ kind: 'thinking', text: buffer.slice(0, buffer.length - keep) });
          buffer = buffer.slice(buffer.length - keep);
          return;
        }
        out.push({ kind: 'thinking', text: buffer.slice(0, at) });
        buffer = buffer.slice(at + THINK_END.length);
        state = 'text';
      } else {
        const at = buffer.indexOf(TOOL_END);
        if (at < 0) return;
        out.push(toolSegment(buffer.slice(0, at), true));
        buffer = buffer.slice(at + TOOL_END.length);
        state = 'text';
      }
    }
  };

  const nonEmpty = (segments: Segment[]) =>
    segments.filter((s) => s.kind === 'tool' || s.text !== '');

  return {
    push(text: string): Segment[] {
      buffer += text;
      const out: Segment[] = [];
      drain(out);
      return nonEmpty(out);
    },
    /** The stream ended: whatever is held back, an unclosed tool call parsed if it can be. */
    end(): Segment[] {
      const rest = buffer;
      buffer = '';
      if (rest === '') return [];
      if (state === 'tool') return nonEmpty([toolSegment(rest, false)]);
      return nonEmpty([{ kind: state, text: rest }]);
    },
  };
}

// ------------------------------------------------------------------------------------------
// Events
// ------------------------------------------------------------------------------------------

type ChunkChoice = ChatCompletionChunk['choices'][number] & { stop_reason?: unknown };

function stopReasonOf(
  finish: string | null,
  options: { sawTool: boolean; matched: unknown; stopSequences: readonly string[] },
): { stop_reason: AnthropicStopReason; stop_sequence: string | null } {
  switch (finish) {
    case 'length':
      return { stop_reason: 'max_tokens', stop_sequence: null };
    case 'tool_calls':
    case 'function_call':
      return { stop_reason: 'tool_use', stop_sequence: null };
    case 'content_filter':
      return { stop_reason: 'refusal', stop_sequence: null };
  }
  if (options.sawTool) return { stop_reason: 'tool_use', stop_sequence: null };
  const { matched } = options;
  if (typeof matched === 'string' && options.stopSequences.includes(matched)) {
    return { stop_reason: 'stop_sequence', stop_sequence: matched };
  }
  return { stop_reason: 'end_turn', stop_sequence: null };
}

/** The Anthropic events of a chat chunk stream (choice 0). */
export async function* toMessagesEvents(
  chunks: AsyncIterable<ChatCompletionChunk>,
  options: MessagesStreamOptions,
): AsyncGenerator<MessagesStreamEvent> {
  const stopSequences = options.stopSequences ?? [];
  yield {
    type: 'message_start',
    message: {
      id: options.id,
      type: 'message',
      role: 'assistant',
      model: options.model,
      content: [],
      stop_reason: null,
      stop_sequence: null,
      usage: {
        input_tokens: options.inputTokens,
        output_tokens: 0,
        cache_creation_input_tokens: 0,
      },
    },
  };
  yield { type: 'ping' };

  let open: { index: number; kind: 'text' | 'thinking' } | undefined;
  let next = 0;
  let sawTool = false;
  const events: MessagesStreamEvent[] = [];
  const close = () => {
    if (!open) return;
    if (open.kind === 'thinking') {
      events.push({
        type: 'content_block_delta',
        index: open.index,
        delta: { type: 'signature_delta', signature: 'erased' },
      });
    }
    events.push({ type: 'content_block_stop', index: open.index });
    open = undefined;
  };
  const write = (kind: 'text' | 'thinking', given: string) => {
    let text = given;
    if (open?.kind !== kind) {
      // A block does not open on whitespace alone (the newlines after `</think>`).
      text = text.trimStart();
      if (text === '') return;
      close();
      open = { index: next++, kind };
      events.push({
        type: 'content_block_start',
        index: open.index,
        content_block: kind === 'text'
          ? { type: 'text', text: '' }
          : { type: 'thinking', thinking: '', signature: '' },
      });
    }
    events.push({
      type: 'content_block_delta',
      index: open!.index,
      delta: kind === 'text'
        ? { type: 'text_delta', text }
        : { type: 'thinking_delta', thinking: text },
    });
  };
  const tool = (name: string, args: string, id?: string) => {
    close();
    sawTool = true;
    const index = next++;
    events.push({
      type: 'content_block_start',
      index,
      content_block: {
        type: 'tool_use',
        id: id || `toolu_${options.newId().replaceAll('-', '')}`,
        name,
        input: {},
      },
    });
    if (args !== '') {
      events.push({
        type: 'content_block_delta',
        index,
        delta: { type: 'input_json_delta', partial_json: args },
      });
    }
    events.push({ type: 'content_block_stop', index });
  };
  const apply = (segments: Segment[]) => {
    for (const s of segments) {
      if (s.kind === 'tool') tool(s.name, s.arguments);
      else write(s.kind, s.text);
    }
  };

  const splitter = createTagSplitter({
    thinking: options.parseThinking !== false,
    toolCalls: options.parseToolCalls === true,
  });
  const deltaCalls = new Map<number, { id: string; name: string; arguments: string }>();
  let finish: string | null = null;
  let matched: unknown;
  let usage: ChatCompletionChunk['usage'] | undefined;
  let contentChunks = 0;

  for await (const chunk of chunks) {
    if (chunk.usage) usage = chunk.usage;
    const choice = chunk.choices.find((c) => c.index === 0) as ChunkChoice | undefined;
    if (!choice) continue;
    const { delta } = choice;
    if (delta.reasoning_content) write('thinking', delta.reasoning_content);
    if (delta.content) {
      contentChunks++;
      apply(splitter.push(delta.content));
    }
    for (const call of delta.tool_calls ?? []) {
      const entry = deltaCalls.get(call.index) ?? { id: '', name: '', arguments: '' };
      if (call.id) entry.id = call.id;
      if (call.function?.name) entry.name += call.function.name;
      if (call.function?.arguments) entry.arguments += call.function.arguments;
      deltaCalls.set(call.index, entry);
    }
    if (choice.finish_reason) finish = choice.finish_reason;
    if (choice.stop_reason !== undefined && choice.stop_reason !== null) {
      matched = choice.stop_reason;
    }
    yield* events.splice(0);
  }
  apply(splitter.end());
  for (const [, call] of [...deltaCalls].sort(([a], [b]) => a - b)) {
    if (call.name !== '') tool(call.name, call.arguments, call.id);
  }
  close();
  yield* events.splice(0);

  const cached = usage?.prompt_tokens_details?.cached_tokens ?? undefined;
  const prompt = usage?.prompt_tokens ?? options.inputTokens;
  yield {
    type: 'message_delta',
    delta: stopReasonOf(finish, { sawTool, matched, stopSequences }),
    usage: {
      input_tokens: prompt - (cached ?? 0),
      output_tokens: usage?.completion_tokens ?? contentChunks,
      ...(cached !== undefined ? { cache_read_input_tokens: cached } : {}),
    },
  };
  yield { type: 'message_stop' };
}

/** Folds the events into the unary `message` (tool inputs parsed; `{}` when they do not). */
export async function foldMessage(
  events: AsyncIterable<MessagesStreamEvent>,
): Promise<AnthropicMessage> {
  let message: AnthropicMessage | undefined;
  const json = new Map<number, string>();
  for await (const event of events) {
    switch (event.type) {
      case 'message_start':
        message = { ...event.message, content: [], usage: { ...event.message.usage } };
        break;
      case 'content_block_start':
        message!.content[event.index] = { ...event.content_block };
        break;
      case 'content_block_delta': {
        const block = message!.content[event.index] as Record<string, unknown>;
        const { delta } = event;
        if (delta.type === 'text_delta') block.text = `${block.text}${delta.text}`;
        else if (delta.type === 'thinking_delta') {
          block.thinking = `${block.thinking}${delta.thinking}`;
        } else if (delta.type === 'signature_delta') block.signature = delta.signature;
        else json.set(event.index, (json.get(event.index) ?? '') + delta.partial_json);
        break;
      }
      case 'content_block_stop': {
        const block = message!.content[event.index];
        if (block?.type === 'tool_use') block.input = parseInput(json.get(event.index));
        break;
      }
      case 'message_delta':
        message!.stop_reason = event.delta.stop_reason;
        message!.stop_sequence = event.delta.stop_sequence;
        message!.usage = { ...message!.usage, ...event.usage };
        break;
      default:
        break;
    }
  }
  if (!message) throw new Error('the stream had no message_start');
  return message;
}

function parseInput(text: string | undefined): Record<string, unknown> {
  if (!text) return {};
  try {
    const value: unknown = JSON.parse(text);
    return value !== null && typeof value === 'object' && !Array.isArray(value)
      ? value as Record<string, unknown>
      : {};
  } catch {
    return {};
  }
}
