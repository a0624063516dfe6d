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
 * Reasoning and tool calls arrive already parsed, as the chat chunks' `reasoning_content` and
 * `tool_calls` deltas (the model card's parsers, `src/core/parsers/`): reasoning becomes a
 * thinking block, and each tool call a tool_use block that opens when its name arrives and
 * streams its arguments as `input_json_delta`s.
 */
import type {
  AnthropicContentBlock,
  AnthropicMessage,
  AnthropicStopReason,
  AnthropicUsage,
} from './schemas.ts';
import type { ChatCompletionChunk } from '../openai/schemas.ts';
import type { ToolCallDelta } from '../../parsers/chat-deltas.ts';

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
  /** Send reasoning as thinking blocks (else it is dropped). @default true */
  parseThinking?: boolean;
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

  let open: { index: number; kind: 'text' | 'thinking' | 'tool' } | undefined;
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
  /** Tool-call index -> its tool_use block. */
  const toolBlocks = new Map<number, number>();
  const toolDelta = (call: ToolCallDelta) => {
    let index = toolBlocks.get(call.index);
    if (index === undefined) {
      if (!call.function?.name) return;
      close();
      sawTool = true;
      index = next++;
      toolBlocks.set(call.index, index);
      open = { index, kind: 'tool' };
      events.push({
        type: 'content_block_start',
        index,
        content_block: {
          type: 'tool_use',
          id: `toolu_${options.newId().replaceAll('-', '')}`,
          name: call.function.name,
          input: {},
        },
      });
    }
    const args = call.function?.arguments;
    if (args) {
      events.push({
        type: 'content_block_delta',
        index,
        delta: { type: 'input_json_delta', partial_json: args },
      });
    }
  };

  const thinking = options.parseThinking !== false;
  let finish: string | null = null;
  let matched: unknown;
  let usage: ChatCompletionChunk['usage'] | undefined;
  let contentChunks = 0;

  for await (const chunk of chunks) {
    if (chunk.usage) usage = chunk.usage;
    const choice = chunk.choices.find((c) => c.index === 0) as ChunkChoice | undefined;
    if (!choice) continue;
    const { delta } = choice;
    if (delta.reasoning_content && thinking) write('thinking', delta.reasoning_content);
    if (delta.content) {
      contentChunks++;
      write('text', delta.content);
    }
    for (const call of delta.tool_calls ?? []) toolDelta(call as ToolCallDelta);
    if (choice.finish_reason) finish = choice.finish_reason;
    if (choice.stop_reason !== undefined && choice.stop_reason !== null) {
      matched = choice.stop_reason;
    }
    yield* events.splice(0);
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
