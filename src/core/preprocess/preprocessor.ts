/**
 * A model's preprocessing: its tokenizer, chat template, EOS ids and context length, loaded once
 * from the model directory's files, and the two operations a request needs before dispatch:
 * render a chat into a prompt and tokenize it, or tokenize a completion prompt.
 */
import { eosTokenIdsOf, maxContextOf, type ModelDirFiles } from '../discovery/model-dir.ts';
import { type ApiErrorOptions, BadRequestError } from '../errors.ts';
import {
  type ChatMessage,
  type ChatTemplate,
  ChatTemplateError,
  loadChatTemplate,
  MissingChatTemplateError,
} from './template.ts';
import { loadTokenizer, type Tokenizer } from './tokenizer.ts';

export interface ChatPromptRequest {
  messages: readonly ChatMessage[];
  tools?: readonly unknown[] | null;
  /** `"none"` removes the tools from the template, so the model does not see them. */
  tool_choice?: unknown;
  /** Extra template variables (`enable_thinking`, `add_generation_prompt`, ...); they win. */
  chat_template_args?: Record<string, unknown> | null;
  /** `nvext.use_raw_prompt`: skip the template; the messages' text is the prompt. */
  use_raw_prompt?: boolean | null;
}

export interface RenderedPrompt {
  prompt: string;
  tokenIds: number[];
  /** Milliseconds spent rendering the template and tokenizing (for `--dyn-debug-perf`). */
  timings?: { templateMs: number; tokenizeMs: number };
}

export interface ModelPreprocessor {
  readonly tokenizer: Tokenizer;
  /** Absent when the model has no chat template (completions still work). */
  readonly template?: ChatTemplate;
  readonly eosTokenIds: readonly number[];
  readonly contextLength?: number;
  /** Throws `ChatTemplateError` (400) or `PromptTooLongError` (400). */
  renderChat(request: ChatPromptRequest): RenderedPrompt;
  /** A completion prompt's ids, with the tokenizer's special tokens (a BOS where it adds one). */
  tokenizePrompt(text: string): number[];
}

/** The prompt does not fit the model's context window. */
export class PromptTooLongError extends BadRequestError {
  override readonly code = 'context_length_exceeded';
  readonly contextLength: number;
  readonly promptLength: number;
  constructor(contextLength: number, promptLength: number, options: ApiErrorOptions = {}) {
    super(
      `This model's maximum context length is ${contextLength} tokens; the prompt has ` +
        `${promptLength} tokens`,
      options,
    );
    this.contextLength = contextLength;
    this.promptLength = promptLength;
  }
}

/** Characters a token may average before a prompt is refused unread (see `encode`). */
export const MAX_CHARS_PER_TOKEN = 16;

/** The prompt is so long in characters that it cannot fit, whatever it tokenizes to. */
export class PromptTooLargeError extends BadRequestError {
  override readonly code = 'context_length_exceeded';
  readonly contextLength: number;
  /** In characters (the name matches `PromptTooLongError`'s so worker threads carry it alike). */
  readonly promptLength: number;
  constructor(contextLength: number, characters: number, options: ApiErrorOptions = {}) {
    super(
      `This model's maximum context length is ${contextLength} tokens; the prompt has ` +
        `${characters} characters, more than ${contextLength * MAX_CHARS_PER_TOKEN} ` +
        `(${MAX_CHARS_PER_TOKEN} per token), so it cannot fit`,
      options,
    );
    this.contextLength = contextLength;
    this.promptLength = characters;
  }
}

/**
 * `max_tokens` when the request leaves it out: what is left of the context (reference §9.6).
 * Undefined when the context length is unknown (the engine decides); throws
 * `PromptTooLongError` when nothing is left.
 */
export function defaultMaxTokens(
  contextLength: number | undefined,
  promptLength: number,
): number | undefined {
  if (contextLength === undefined) return undefined;
  if (promptLength >= contextLength) throw new PromptTooLongError(contextLength, promptLength);
  return contextLength - promptLength;
}

/** The text of a message's content: a string, or its `text` parts joined by newlines. */
function textOf(content: ChatMessage['content']): string {
  if (typeof content === 'string') return content;
  if (!Array.isArray(content)) return '';
  return content.filter((p) => p?.type === 'text').map((p) => p.text ?? '').join('\n');
}

export async function loadModelPreprocessor(files: ModelDirFiles): Promise<ModelPreprocessor> {
  if (!files.tokenizer) throw new Error(`${files.dir} has no tokenizer.json`);
  const tokenizer = await loadTokenizer({
    tokenizerJson: files.tokenizer.text,
    tokenizerConfigJson: files.tokenizerConfig?.text,
  });
  let template: ChatTemplate | undefined;
  try {
    if (files.tokenizerConfig) template = loadChatTemplate(files.tokenizerConfig.text);
  } catch (error) {
    // A model without a chat template still serves completions; a broken one is an error.
    if (!(error instanceof MissingChatTemplateError)) throw error;
  }
  const contextLength = maxContextOf(files);

  const checked = (tokenIds: number[]): number[] => {
    if (contextLength !== undefined && tokenIds.length >= contextLength) {
      throw new PromptTooLongError(contextLength, tokenIds.length);
    }
    return tokenIds;
  };
  /**
   * Tokenizing costs up to ~20 us a character on degenerate text (long runs of spaces or dots),
   * so text that cannot fit is refused by its length before it is tokenized: no real tokenizer
   * averages more than MAX_CHARS_PER_TOKEN characters a token on text that means anything.
   */
  const encode = (text: string, addSpecialTokens: boolean): number[] => {
    if (contextLength !== undefined && text.length > contextLength * MAX_CHARS_PER_TOKEN) {
      throw new PromptTooLargeError(contextLength, text.length);
    }
    return checked(tokenizer.encode(text, { addSpecialTokens }));
  };

  return {
    tokenizer,
    template,
    eosTokenIds: eosTokenIdsOf(files),
    contextLength,
    renderChat(request) {
      const start = performance.now();
      let prompt: string;
      if (request.use_raw_prompt) {
        prompt = request.messages.map((m) => textOf(m.content)).join('\n');
      } else {
        if (!template) {
          throw new ChatTemplateError('This model has no chat template; use /v1/completions');
        }
        const tools = request.tool_choice === 'none' ? undefined : request.tools;
        prompt = template.render({
          messages: request.messages,
          tools,
          add_generation_prompt: true,
          ...request.chat_template_args,
        });
      }
      // The template wrote the special tokens already.
      const rendered = performance.now();
      const tokenIds = encode(prompt, false);
      const timings = { templateMs: rendered - start, tokenizeMs: performance.now() - rendered };
      return { prompt, tokenIds, timings };
    },
    tokenizePrompt(text) {
      return encode(text, true);
    },
  };
}
