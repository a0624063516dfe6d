/**
 * File parts of a request -> text parts, before anything else reads the request: chat's `file`
 * parts (`startChat`) and the Responses API's `input_file` parts (`planResponse`, compaction).
 * Both go through `fileInputText()`; the characters of all files together stay within one
 * budget. A request without file parts comes back as it was, untouched.
 */
import type { ChatMessage, ResponsesInputItem } from '../api/openai/schemas.ts';
import { type FileInput, fileInputText } from './file-input.ts';

export interface FileLimits {
  /** Largest decoded file, in bytes. */
  maxBytes: number;
  /** Characters of text all files of a request may give together. */
  maxChars: number;
}

/** The limits from the frontend's settings: DYN_MULTIMODAL_MAX_MB, --http-max-request-chars. */
export function fileLimitsOf(
  config: { multimodalMaxMb: number; httpMaxRequestChars: number },
): FileLimits {
  return {
    maxBytes: Math.floor(config.multimodalMaxMb * 1024 * 1024),
    maxChars: config.httpMaxRequestChars,
  };
}

type Part = { type?: unknown } & Record<string, unknown>;

const hasPart = (content: unknown, type: string) =>
  Array.isArray(content) && content.some((p) => (p as Part | null)?.type === type);

/** Converts each file part of `content` to a text part; `param(j)` names part j's fields. */
async function convert(
  content: readonly Part[],
  options: {
    type: string;
    fields: (part: Part) => FileInput;
    param: (j: number) => string;
    text: string;
    budget: { chars: number; maxBytes: number };
  },
): Promise<Part[]> {
  const out: Part[] = [];
  for (const [j, part] of content.entries()) {
    if (part?.type !== options.type) {
      out.push(part);
      continue;
    }
    const text = await fileInputText(options.fields(part), {
      param: options.param(j),
      maxBytes: options.budget.maxBytes,
      maxChars: options.budget.chars,
    });
    options.budget.chars -= text.length;
    out.push({ type: options.text, text });
  }
  return out;
}

/** `messages` with each chat `file` part as a text part (the same array when there are none). */
export async function withChatFileText(
  messages: readonly ChatMessage[],
  limits: FileLimits,
): Promise<readonly ChatMessage[]> {
  if (!messages.some((m) => hasPart(m.content, 'file'))) return messages;
  const budget = { chars: limits.maxChars, maxBytes: limits.maxBytes };
  const out: ChatMessage[] = [];
  for (const [i, message] of messages.entries()) {
    if (!hasPart(message.content, 'file')) {
      out.push(message);
      continue;
    }
    const content = await convert(message.content as Part[], {
      type: 'file',
      fields: (part) => (part.file ?? {}) as FileInput,
      param: (j) => `messages[${i}].content[${j}].file`,
      text: 'text',
      budget,
    });
    out.push({ ...message, content } as ChatMessage);
  }
  return out;
}

/** Responses `input` items with each `input_file` part as an `input_text` part (or the same). */
export async function withInputFileText(
  items: readonly ResponsesInputItem[],
  limits: FileLimits,
): Promise<readonly ResponsesInputItem[]> {
  if (!items.some((item) => hasPart((item as { content?: unknown }).content, 'input_file'))) {
    return items;
  }
  const budget = { chars: limits.maxChars, maxBytes: limits.maxBytes };
  const out: ResponsesInputItem[] = [];
  for (const [i, item] of items.entries()) {
    const content = (item as { content?: unknown }).content;
    if (!hasPart(content, 'input_file')) {
      out.push(item);
      continue;
    }
    const converted = await convert(content as Part[], {
      type: 'input_file',
      fields: (part) => part as FileInput,
      param: (j) => `input[${i}].content[${j}]`,
      text: 'input_text',
      budget,
    });
    out.push({ ...item, content: converted } as ResponsesInputItem);
  }
  return out;
}
