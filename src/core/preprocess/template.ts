/**
 * The model's chat template (`tokenizer_config.json` `chat_template`, a Jinja string or a list of
 * named templates) rendered with `@huggingface/jinja`. Messages are normalised the way Dynamo
 * does before rendering (reference §9.3): text-only content arrays become strings, tool-call
 * arguments become objects unless the template prints the string itself, and `reasoning_content`
 * becomes a `<think>` block for templates that do not read it.
 */
import { Template } from '@huggingface/jinja';
import { BadRequestError } from '../errors.ts';
import { mediaKindsOf } from './multimodal.ts';

/** One part of an array `content`; only `text` parts carry text the template can print. */
export interface ContentPart {
  type: string;
  text?: string;
  [key: string]: unknown;
}

export interface ToolCall {
  id?: string;
  type?: string;
  function?: { name?: string; arguments?: unknown; [key: string]: unknown };
  [key: string]: unknown;
}

export interface ChatMessage {
  role: string;
  content?: string | readonly ContentPart[] | null;
  tool_calls?: readonly ToolCall[] | null;
  reasoning_content?: string | readonly string[] | null;
  [key: string]: unknown;
}

export interface ChatRenderInput {
  messages: readonly ChatMessage[];
  /** OpenAI tool definitions; a non-empty list selects the `tool_use` template if there is one. */
  tools?: readonly unknown[] | null;
  /** Append the assistant turn's opening. @default false */
  add_generation_prompt?: boolean;
  /** Chat template arguments (`enable_thinking`, ...), merged last so they win. */
  [arg: string]: unknown;
}

export interface ChatTemplate {
  /** Names of the templates found: `default`, `tool_use`, ... */
  readonly names: readonly string[];
  /** Throws `ChatTemplateError` when the template fails (it raised, or used a bad value). */
  render(input: ChatRenderInput): string;
}

export interface ChatTemplateOptions {
  /** A template that replaces the one in `tokenizer_config.json` (`chat_template.jinja`). */
  template?: string;
}

/** The chat template could not render this request; the client is told why (HTTP 400). */
export class ChatTemplateError extends BadRequestError {
  override readonly code = 'chat_template_error';
}

/** The model's chat template is missing or is not valid Jinja (a deployment problem). */
export class ChatTemplateLoadError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'ChatTemplateLoadError';
  }
}

/** `tokenizer_config.json` has no `chat_template` (the model serves completions only). */
export class MissingChatTemplateError extends ChatTemplateLoadError {
  constructor() {
    super('tokenizer_config.json has no chat_template');
    this.name = 'MissingChatTemplateError';
  }
}

interface Compiled {
  template: Template;
  /** The template prints `arguments` itself when it is a string (Qwen3, Hermes). */
  keepsArgumentStrings: boolean;
  /** The template reads `reasoning_content` itself (Qwen3, Nemotron). */
  readsReasoning: boolean;
  /** Media kinds (`image`, `video`) the template can render: it mentions them. */
  media: Set<string>;
}

const MEDIA_PLACEHOLDERS: Record<string, string> = {
  image_url: 'image',
  video_url: 'video',
  audio_url: 'audio',
};

function tokenText(value: unknown): string | undefined {
  if (typeof value === 'string') return value;
  if (
    value && typeof value === 'object' &&
    typeof (value as { content?: unknown }).content === 'string'
  ) {
    return (value as { content: string }).content;
  }
  return undefined;
}

/** `bos_token`, `eos_token`, ... as plain strings (AddedToken objects unwrapped), nulls left out. */
function specialTokensOf(config: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(config)) {
    if (!key.endsWith('_token')) continue;
    const text = tokenText(value);
    if (text !== undefined) out[key] = text;
  }
  const extra = config.additional_special_tokens;
  if (Array.isArray(extra)) {
    out.additional_special_tokens = extra.map(tokenText).filter((t) => t !== undefined);
  }
  return out;
}

function compile(name: string, source: string): Compiled {
  try {
    return {
      template: new Template(source),
      keepsArgumentStrings: source.includes('arguments is string'),
      readsReasoning: source.includes('reasoning_content'),
      media: new Set(['image', 'video'].filter((kind) => source.includes(kind))),
    };
  } catch (error) {
    throw new ChatTemplateLoadError(
      `Chat template "${name}" is not valid Jinja: ${(error as Error).message}`,
      { cause: error },
    );
  }
}

function templatesOf(config: Record<string, unknown>, override?: string): Map<string, string> {
  if (override !== undefined) return new Map([['default', override]]);
  const raw = config.chat_template;
  const named = new Map<string, string>();
  if (typeof raw === 'string') named.set('default', raw);
  else if (Array.isArray(raw)) {
    for (const entry of raw as { name?: unknown; template?: unknown }[]) {
      if (typeof entry?.name === 'string' && typeof entry.template === 'string') {
        named.set(entry.name, entry.template);
      }
    }
  } else if (raw && typeof raw === 'object') {
    for (const [name, template] of Object.entries(raw)) {
      if (typeof template === 'string') named.set(name, template);
    }
  }
  if (named.size === 0) throw new MissingChatTemplateError();
  return named;
}

function flattenContent(content: readonly ContentPart[]): string | ContentPart[] {
  const parts = content.map((part) =>
    part && MEDIA_PLACEHOLDERS[part.type] ? { type: MEDIA_PLACEHOLDERS[part.type]! } : part
  );
  if (parts.length > 0 && parts.every((part) => part?.type === 'text')) {
    return parts.map((part) => part.text ?? '').join('\n');
  }
  return parts;
}

function parseArguments(call: ToolCall): ToolCall {
  const args = call.function?.arguments;
  if (typeof args !== 'string') return call;
  try {
    return { ...call, function: { ...call.function, arguments: JSON.parse(args) as unknown } };
  } catch {
    return call;
  }
}

function reasoningBlock(reasoning: ChatMessage['reasoning_content']): string {
  if (typeof reasoning === 'string') return reasoning ? `<think>${reasoning}</think>` : '';
  if (Array.isArray(reasoning)) {
    return reasoning.filter((r) => typeof r === 'string' && r).map((r) => `<think>${r}</think>`)
      .join('');
  }
  return '';
}

/** A copy of one message in the shape the compiled template expects. */
function normaliseMessage(message: ChatMessage, compiled: Compiled): Record<string, unknown> {
  const out: Record<string, unknown> = { ...message };
  let content: unknown = message.content ?? '';
  if (Array.isArray(content)) content = flattenContent(content as ContentPart[]);
  if (Array.isArray(message.tool_calls)) {
    out.tool_calls = compiled.keepsArgumentStrings
      ? message.tool_calls
      : message.tool_calls.map(parseArguments);
  }
  if (message.role === 'assistant' && !compiled.readsReasoning && 'reasoning_content' in out) {
    const block = reasoningBlock(message.reasoning_content);
    if (block) {
      content = typeof content === 'string'
        ? block + content
        : [{ type: 'text', text: block }, ...(content as ContentPart[])];
    }
    delete out.reasoning_content;
  }
  out.content = content;
  return out;
}

/** Backfills what OpenAI lets a client omit and templates print unconditionally. */
function normaliseTool(tool: unknown): unknown {
  if (!tool || typeof tool !== 'object') return tool;
  const fn = (tool as { function?: unknown }).function;
  if (!fn || typeof fn !== 'object') return tool;
  const f = { ...(fn as Record<string, unknown>) };
  if (typeof f.description !== 'string') f.description = '';
  const params = f.parameters;
  if (params && typeof params === 'object' && !Array.isArray(params)) {
    f.parameters = { type: 'object', properties: {}, ...(params as Record<string, unknown>) };
  }
  return { ...(tool as Record<string, unknown>), function: f };
}

/**
 * Compiles the chat template(s) of a `tokenizer_config.json`. Throws `MissingChatTemplateError`
 * when there is none, `ChatTemplateLoadError` when one does not parse.
 */
export function loadChatTemplate(
  tokenizerConfigJson: string,
  options: ChatTemplateOptions = {},
): ChatTemplate {
  let config: Record<string, unknown>;
  try {
    config = JSON.parse(tokenizerConfigJson) as Record<string, unknown>;
  } catch (error) {
    throw new ChatTemplateLoadError(
      `tokenizer_config.json is not valid JSON: ${(error as Error).message}`,
      { cause: error },
    );
  }
  const sources = templatesOf(config ?? {}, options.template);
  const compiled = new Map([...sources].map(([name, source]) => [name, compile(name, source)]));
  const specialTokens = specialTokensOf(config ?? {});
  const fallback = compiled.get('default') ?? compiled.values().next().value!;

  return {
    names: [...compiled.keys()],
    render(input) {
      const { messages, tools, add_generation_prompt: addGenerationPrompt, ...args } = input;
      const hasTools = Array.isArray(tools) && tools.length > 0;
      const chosen = (hasTools ? compiled.get('tool_use') : undefined) ?? fallback;
      const context: Record<string, unknown> = {
        ...specialTokens,
        messages: messages.map((m) => normaliseMessage(m, chosen)),
        tools: hasTools ? tools.map(normaliseTool) : undefined,
        add_generation_prompt: addGenerationPrompt ?? false,
        ...args,
      };
      const media = mediaKindsOf(messages);
      const missing = [...media].filter((kind) => !chosen.media.has(kind));
      if (missing.length > 0) {
        throw new ChatTemplateError(
          `This model's chat template cannot render ${missing.join(' or ')} content (it is a ` +
            'text-only template); send text only, or use a model that accepts ' +
            `${missing.join(' and ')} input`,
          { param: 'messages' },
        );
      }
      try {
        return chosen.template.render(context);
      } catch (error) {
        const detail = (error as Error).message;
        throw new ChatTemplateError(
          media.size > 0
            ? `This model's chat template failed to render the ${[...media].join(' and ')} ` +
              `content: ${detail}`
            : `Chat template failed to render: ${detail}`,
          { cause: error },
        );
      }
    },
  };
}
