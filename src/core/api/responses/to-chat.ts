/**
 * Responses API request -> chat completion request (reference §8.1). The chat request is what the
 * pipeline runs; it is validated again here, as Dynamo does, so an input that converts to nothing
 * fails with the chat rules' messages.
 */
import { ValidationError } from '../../errors.ts';
import type {
  ChatCompletionRequest,
  ChatMessage,
  ChatTool,
  ChatToolCall,
  ChatToolChoice,
  ChatUserContentPart,
  ResponseFormat,
  ResponsesFunctionCallItem,
  ResponsesFunctionCallOutputItem,
  ResponsesInputContent,
  ResponsesInputItem,
  ResponsesMessageItem,
  ResponsesRequest,
} from '../openai/schemas.ts';
import { LIMITS } from '../openai/schemas.ts';
import { validateChatCompletionRequest } from '../openai/validate.ts';
import { decodeCompaction } from './compaction.ts';

type Content = string | readonly ResponsesInputContent[];

/** The text of a content list: its text parts joined; other parts are skipped. */
function textOf(content: Content): string {
  if (typeof content === 'string') return content;
  let out = '';
  for (const part of content) {
    if (part.type === 'input_text' || part.type === 'output_text') out += part.text;
  }
  return out;
}

function isUrl(value: string): boolean {
  try {
    new URL(value);
    return true;
  } catch {
    return false;
  }
}

function userContent(content: Content, at: string): string | ChatUserContentPart[] {
  if (typeof content === 'string') return content;
  const only = content[0];
  if (content.length === 1 && only?.type === 'input_text') return only.text;
  const parts: ChatUserContentPart[] = [];
  content.forEach((part, j) => {
    const param = `${at}.content[${j}]`;
    switch (part.type) {
      case 'input_text':
      case 'output_text':
        parts.push({ type: 'text', text: part.text });
        break;
      case 'input_image': {
        const url = part.image_url ?? '';
        if (!isUrl(url)) {
          throw new ValidationError(
            `Invalid value for "${param}.image_url": must be a URL (got ${
              JSON.stringify(url.slice(0, 40))
            })`,
            { param: `${param}.image_url` },
          );
        }
        parts.push({ type: 'image_url', image_url: { url, detail: part.detail ?? 'auto' } });
        break;
      }
      case 'input_video':
        if (!isUrl(part.video)) {
          throw new ValidationError(`Invalid value for "${param}.video": must be a URL`, {
            param: `${param}.video`,
          });
        }
        parts.push({ type: 'video_url', video_url: { url: part.video } });
        break;
      case 'input_audio':
        throw new ValidationError('Audio input content is not yet supported', { param });
      case 'input_file':
        // planResponse() has turned files into input_text parts (preprocess/file-parts.ts).
        throw new ValidationError(`File input content is not supported in "${param}"`, { param });
      default:
        break;
    }
  });
  return parts;
}

function toMessages(items: readonly ResponsesInputItem[]): ChatMessage[] {
  const messages: ChatMessage[] = [];
  items.forEach((item, i) => {
    // The schema guarantees the shape that goes with each type (no type means a message).
    switch (item.type ?? 'message') {
      case 'message': {
        const m = item as ResponsesMessageItem;
        if (m.role === 'user') {
          messages.push({ role: 'user', content: userContent(m.content, `input[${i}]`) });
        } else if (m.role === 'assistant') {
          messages.push({ role: 'assistant', content: textOf(m.content) });
        } else {
          messages.push({ role: 'system', content: textOf(m.content) });
        }
        return;
      }
      case 'function_call': {
        const fc = item as ResponsesFunctionCallItem;
        const call: ChatToolCall = {
          id: fc.call_id,
          type: 'function',
          function: { name: fc.name, arguments: fc.arguments },
        };
        // Consecutive calls are one assistant turn with parallel tool calls.
        const last = messages[messages.length - 1];
        if (last?.role === 'assistant' && last.tool_calls && !last.content) {
          last.tool_calls.push(call);
        } else {
          messages.push({ role: 'assistant', content: null, tool_calls: [call] });
        }
        return;
      }
      case 'function_call_output': {
        const out = item as ResponsesFunctionCallOutputItem;
        messages.push({ role: 'tool', tool_call_id: out.call_id, content: textOf(out.output) });
        return;
      }
      case 'compaction': {
        // A summary `/v1/responses/compact` made stands in for the turns it replaced.
        const summary = decodeCompaction(
          (item as { encrypted_content?: unknown }).encrypted_content,
        );
        if (summary === undefined) {
          throw new ValidationError(
            `Invalid value for "input[${i}].encrypted_content": not a compaction item this ` +
              'server made (from POST /v1/responses/compact)',
            { param: `input[${i}].encrypted_content` },
          );
        }
        messages.push({
          role: 'assistant',
          content: `Summary of the conversation so far:\n${summary}`,
        });
        return;
      }
      default:
        // Item references, reasoning and hosted-tool items are skipped.
        return;
    }
  });
  return messages;
}

function toTools(tools: ResponsesRequest['tools']): ChatTool[] | undefined {
  const out: ChatTool[] = [];
  for (const tool of tools ?? []) {
    if (tool.type !== 'function' || !('name' in tool) || typeof tool.name !== 'string') continue;
    const fn = tool as {
      name: string;
      description?: unknown;
      parameters?: unknown;
      strict?: unknown;
    };
    out.push({
      type: 'function',
      function: {
        name: fn.name,
        ...(typeof fn.description === 'string' ? { description: fn.description } : {}),
        ...(fn.parameters && typeof fn.parameters === 'object'
          ? { parameters: fn.parameters as Record<string, unknown> }
          : {}),
        ...(typeof fn.strict === 'boolean' ? { strict: fn.strict } : {}),
      },
    });
  }
  return out.length > 0 ? out : undefined;
}

function toToolChoice(choice: ResponsesRequest['tool_choice']): ChatToolChoice | undefined {
  if (choice === undefined || choice === null) return undefined;
  if (typeof choice === 'string') return choice;
  if (choice.type === 'function' && 'name' in choice && typeof choice.name === 'string') {
    return { type: 'function', function: { name: choice.name } };
  }
  return 'auto';
}

function toResponseFormat(request: ResponsesRequest): ResponseFormat | undefined {
  const format = request.text?.format;
  if (!format) return undefined;
  if (format.type !== 'json_schema') return { type: format.type };
  return {
    type: 'json_schema',
    json_schema: {
      name: format.name,
      schema: format.schema,
      ...(format.description ? { description: format.description } : {}),
      ...(typeof format.strict === 'boolean' ? { strict: format.strict } : {}),
    },
  };
}

/**
 * The chat request a Responses request runs as: instructions become a leading system message,
 * the input becomes messages, function tools and tool_choice map across, `max_output_tokens`
 * becomes `max_completion_tokens`, `text.format` becomes `response_format`, and the request is
 * streamed with usage (the route folds it for non-streaming clients). Call
 * `validateResponsesRequest()` first; this throws `ValidationError` for what cannot convert.
 */
export function responsesToChat(request: ResponsesRequest): ChatCompletionRequest {
  const input = request.input;
  if (input === undefined) {
    throw new ValidationError('Missing required parameter "input"', { param: 'input' });
  }
  if (input.length === 0) {
    throw new ValidationError('Invalid value for "input": must not be empty', { param: 'input' });
  }
  const messages: ChatMessage[] = [];
  if (typeof request.instructions === 'string') {
    messages.push({ role: 'system', content: request.instructions });
  }
  if (typeof input === 'string') messages.push({ role: 'user', content: input });
  else messages.push(...toMessages(input));

  const chat: ChatCompletionRequest = {
    model: request.model,
    messages,
    stream: true,
    stream_options: { include_usage: true },
  };
  const tools = toTools(request.tools);
  if (tools) chat.tools = tools;
  const toolChoice = toToolChoice(request.tool_choice);
  if (toolChoice !== undefined) chat.tool_choice = toolChoice;
  if (typeof request.parallel_tool_calls === 'boolean') {
    chat.parallel_tool_calls = request.parallel_tool_calls;
  }
  if (typeof request.max_output_tokens === 'number') {
    chat.max_completion_tokens = request.max_output_tokens;
  }
  if (typeof request.temperature === 'number') chat.temperature = request.temperature;
  if (typeof request.top_p === 'number') chat.top_p = request.top_p;
  if (typeof request.top_logprobs === 'number') {
    chat.top_logprobs = Math.min(request.top_logprobs, LIMITS.maxTopLogprobs);
  }
  if (request.metadata) chat.metadata = request.metadata;
  if (typeof request.user === 'string') chat.user = request.user;
  const format = toResponseFormat(request);
  if (format) chat.response_format = format;
  if (request.nvext) chat.nvext = request.nvext;
  return validateChatCompletionRequest(chat, { ignoreUnsupported: true });
}
