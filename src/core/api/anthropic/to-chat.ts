/**
 * Anthropic Messages request -> chat completion request (reference §7.1-§7.2): the block rules
 * with Dynamo's messages, then the translation the chat pipeline runs. The chat request is
 * checked again by the chat rules (a `tool_choice` naming an undeclared tool, tool arguments).
 */
import { ValidationError } from '../../errors.ts';
import type {
  AnthropicMessageParam,
  AnthropicTool,
  AnthropicToolChoice,
  CountTokensRequest,
  MessagesRequest,
} from './schemas.ts';
import type {
  ChatCompletionRequest,
  ChatMessage,
  ChatTool,
  ChatToolCall,
  ChatToolChoice,
} from '../openai/schemas.ts';
import { validateChatCompletionRequest } from '../openai/validate.ts';

/** Block types a request may carry; anything else is refused (the current Dynamo validator). */
const KNOWN_BLOCKS = new Set([
  'text',
  'image',
  'document',
  'tool_use',
  'tool_result',
  'thinking',
  'redacted_thinking',
  'server_tool_use',
  'web_search_tool_result',
]);

type Block = { type: string; [key: string]: unknown };

const fail = (param: string, message: string) => new ValidationError(message, { param });

/** §7.1: non-empty messages, non-empty block lists of objects with known types. */
export function checkMessages(messages: readonly AnthropicMessageParam[] | undefined): void {
  if (!messages || messages.length === 0) throw fail('messages', 'messages: field required');
  messages.forEach((message, i) => {
    const { content } = message;
    if (typeof content === 'string') return;
    const at = `messages[${i}].content`;
    if (content.length === 0) throw fail(at, `${at}: must contain at least one content block`);
    content.forEach((block, j) => {
      if (block === null || typeof block !== 'object' || Array.isArray(block)) {
        throw fail(`${at}[${j}]`, `${at}[${j}]: content blocks must be objects`);
      }
      const type = (block as { type?: unknown }).type;
      if (typeof type !== 'string' || !KNOWN_BLOCKS.has(type)) {
        throw fail(`${at}[${j}].type`, `content block type "${String(type)}" is not supported`);
      }
    });
  });
}

function checkTools(tools: readonly AnthropicTool[]): void {
  tools.forEach((tool, i) => {
    const type = tool.type ?? 'custom';
    if (type !== 'custom') {
      throw fail(`tools[${i}].type`, `server tool type "${type}" is not supported`);
    }
    if (!tool.input_schema) {
      throw fail(`tools[${i}].input_schema`, `tools[${i}].input_schema: field required`);
    }
  });
}

/** The rules of §7.1 on a request that passed `MessagesRequestSchema`. */
export function validateMessagesRequest(request: MessagesRequest): MessagesRequest {
  checkMessages(request.messages);
  if (request.max_tokens <= 0) {
    throw fail('max_tokens', 'max_tokens: must be greater than 0');
  }
  checkTools(request.tools ?? []);
  (request.stop_sequences ?? []).forEach((s, i) => {
    if (s === '') throw fail(`stop_sequences[${i}]`, 'stop_sequences: entries must not be empty');
  });
  return request;
}

const blocksOf = (content: string | readonly unknown[]): Block[] =>
  typeof content === 'string' ? [{ type: 'text', text: content }] : content as Block[];

const str = (value: unknown) => (typeof value === 'string' ? value : '');

/** `system` as one string: a string, or text blocks joined with newlines. */
export function systemText(system: MessagesRequest['system']): string | undefined {
  if (system === undefined || system === null) return undefined;
  if (typeof system === 'string') return system;
  return system.map((b) => b.text).join('\n');
}

/** A `tool_result`'s content as text; images inside it become `[image]`. */
function toolResultText(content: unknown): string {
  if (typeof content === 'string') return content;
  if (!Array.isArray(content)) return '';
  return content.map((b: Block) =>
    b?.type === 'text' ? str(b.text) : b?.type === 'image' ? '[image]' : ''
  ).filter((t) => t !== '').join('\n');
}

function userMessages(content: string | readonly unknown[]): ChatMessage[] {
  if (typeof content === 'string') return [{ role: 'user', content }];
  const out: ChatMessage[] = [];
  let text: string[] = [];
  const flush = () => {
    if (text.length > 0) out.push({ role: 'user', content: text.join('\n') });
    text = [];
  };
  for (const block of blocksOf(content)) {
    switch (block.type) {
      case 'text':
        text.push(str(block.text));
        break;
      case 'image':
        text.push('[image]');
        break;
      case 'document':
        text.push('[document]');
        break;
      case 'tool_result':
        flush();
        out.push({
          role: 'tool',
          tool_call_id: str(block.tool_use_id),
          content: toolResultText(block.content),
        });
        break;
      default:
        // thinking, tool_use and server blocks in a user turn carry nothing for the model.
        break;
    }
  }
  flush();
  return out;
}

function assistantMessage(content: string | readonly unknown[]): ChatMessage {
  if (typeof content === 'string') return { role: 'assistant', content };
  let text = '';
  const calls: ChatToolCall[] = [];
  // Reasoning between tool calls: segment i precedes call i (segments = calls + 1).
  const segments: string[] = [''];
  for (const block of blocksOf(content)) {
    switch (block.type) {
      case 'text':
        text += str(block.text);
        break;
      case 'thinking':
        segments[segments.length - 1] += str(block.thinking);
        break;
      case 'tool_use':
      case 'server_tool_use':
        calls.push({
          id: str(block.id),
          type: 'function',
          function: { name: str(block.name), arguments: JSON.stringify(block.input ?? {}) },
        });
        segments.push('');
        break;
      default:
        break;
    }
  }
  const message: ChatMessage = { role: 'assistant', content: text };
  if (calls.length > 0) (message as { tool_calls?: ChatToolCall[] }).tool_calls = calls;
  if (segments.some((s) => s !== '')) {
    (message as Record<string, unknown>).reasoning_content = calls.length > 0
      ? segments
      : segments[0];
  }
  return message;
}

/** The chat messages of an Anthropic conversation, its system prompt first. */
export function chatMessagesOf(
  request: Pick<MessagesRequest, 'messages' | 'system'>,
): ChatMessage[] {
  const messages: ChatMessage[] = [];
  const system = systemText(request.system);
  if (system !== undefined && system !== '') messages.push({ role: 'system', content: system });
  for (const message of request.messages) {
    if (message.role === 'user') messages.push(...userMessages(message.content));
    else messages.push(assistantMessage(message.content));
  }
  return messages;
}

export function chatToolsOf(tools: readonly AnthropicTool[] | null | undefined): ChatTool[] {
  return (tools ?? []).map((tool) => ({
    type: 'function' as const,
    function: {
      name: tool.name,
      ...(tool.description ? { description: tool.description } : {}),
      parameters: tool.input_schema ?? { type: 'object', properties: {} },
    },
  }));
}

function chatToolChoiceOf(choice: AnthropicToolChoice): ChatToolChoice {
  switch (choice.type) {
    case 'auto':
      return 'auto';
    case 'any':
      return 'required';
    case 'none':
      return 'none';
    default:
      return choice.name ? { type: 'function', function: { name: choice.name } } : 'required';
  }
}

/** `thinking` as the chat template's `enable_thinking`, when the request says. */
function templateArgsOf(thinking: MessagesRequest['thinking']): Record<string, unknown> | null {
  if (!thinking) return null;
  return { enable_thinking: thinking.type !== 'disabled' };
}

/**
 * The chat completion request for `request`, always streamed with usage (the route folds the
 * stream for `stream: false`).
 */
export function messagesToChat(request: MessagesRequest): ChatCompletionRequest {
  const tools = chatToolsOf(request.tools);
  const choice = request.tool_choice;
  const stop = request.stop_sequences ?? [];
  const chat: Record<string, unknown> = {
    model: request.model,
    messages: chatMessagesOf(request),
    max_completion_tokens: request.max_tokens,
    stream: true,
    stream_options: { include_usage: true },
  };
  if (stop.length > 0) chat.stop = [...stop];
  if (tools.length > 0) chat.tools = tools;
  if (choice) {
    chat.tool_choice = chatToolChoiceOf(choice);
    if (choice.disable_parallel_tool_use === true) chat.parallel_tool_calls = false;
  }
  for (const key of ['temperature', 'top_p', 'top_k'] as const) {
    const value = request[key];
    if (value !== undefined && value !== null) chat[key] = value;
  }
  const args = templateArgsOf(request.thinking);
  if (args) chat.chat_template_args = args;
  if (request.nvext) chat.nvext = request.nvext;
  return validateChatCompletionRequest(chat as ChatCompletionRequest);
}

/** What `count_tokens` renders: the same messages and tools as a Messages request would. */
export function countTokensToChat(request: CountTokensRequest): {
  messages: ChatMessage[];
  tools: ChatTool[];
  chatTemplateArgs: Record<string, unknown> | null;
} {
  checkMessages(request.messages);
  const tools = (request.tools ?? []).filter((t): t is AnthropicTool =>
    t !== null && typeof t === 'object' && typeof (t as { name?: unknown }).name === 'string'
  );
  return {
    messages: chatMessagesOf(request),
    tools: chatToolsOf(tools),
    chatTemplateArgs: templateArgsOf(request.thinking as MessagesRequest['thinking']),
  };
}

/** Dynamo's count_tokens heuristic (§7.5): ⌊characters / 3⌋, for models without a tokenizer. */
export function estimateTokens(request: CountTokensRequest): number {
  let chars = systemText(request.system)?.length ?? 0;
  for (const message of request.messages) {
    chars += message.role === 'user' ? 4 : 9;
    chars += typeof message.content === 'string'
      ? message.content.length
      : JSON.stringify(message.content).length;
  }
  for (const tool of request.tools ?? []) chars += JSON.stringify(tool).length;
  return Math.floor(chars / 3);
}
