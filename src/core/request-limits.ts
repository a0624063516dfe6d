/**
 * The per-request budget, checked on the parsed JSON body before validation, templating or
 * tokenizing run (docs/security.md): nesting depth, non-finite numbers, messages per request,
 * prompts per batch, and the characters of text (plus token ids) over all prompts and messages.
 * Every refusal is a 400 that names the limit and the flag that moves it. One walk, iterative, so
 * neither the walk nor the checks after it can overflow the stack.
 */
import { BadRequestError, ValidationError } from './errors.ts';

export interface RequestLimits {
  /** Text characters plus token ids over the whole body. */
  maxChars: number;
  /** Length of `messages` (chat, Anthropic) or of an `input` list of items (Responses). */
  maxMessages: number;
  /** Length of a batched `prompt` (completions) or `input` (embeddings). */
  maxPrompts: number;
  /** Deepest nesting of objects and arrays. */
  maxDepth: number;
}

/** A request over one of its budgets; `code` says which. */
export class RequestLimitError extends BadRequestError {
  override readonly code: string;
  constructor(message: string, code: string, param: string | null = null) {
    super(message, { param });
    this.code = code;
  }
}

/** String values under these keys are media payloads (base64, data URLs), bounded by the body limit. */
const MEDIA_KEYS = new Set(['data', 'file_data', 'prompt_embeds', 'b64_json']);

const isPromptList = (value: unknown): value is unknown[] =>
  Array.isArray(value) && value.length > 0 && value.every((v) => typeof v !== 'number');

/** Throws a 400 when `body` is over one of `limits`. */
export function checkRequestLimits(body: unknown, limits: RequestLimits): void {
  if (body !== null && typeof body === 'object' && !Array.isArray(body)) {
    const top = body as Record<string, unknown>;
    const messages = Array.isArray(top.messages)
      ? ['messages', top.messages.length] as const
      : Array.isArray(top.input) && !isPromptListOfText(top.input)
      ? ['input', top.input.length] as const
      : undefined;
    if (messages && messages[1] > limits.maxMessages) {
      throw new RequestLimitError(
        `Too many messages: "${messages[0]}" has ${messages[1]} items; the limit is ` +
          `${limits.maxMessages} (--http-max-messages, DYN_HTTP_MAX_MESSAGES)`,
        'too_many_messages',
        messages[0],
      );
    }
    for (const key of ['prompt', 'input'] as const) {
      const value = top[key];
      if (key === 'input' && messages?.[0] === 'input') continue;
      if (isPromptList(value) && value.length > limits.maxPrompts) {
        throw new RequestLimitError(
          `Too many prompts: "${key}" has ${value.length} entries; the limit is ` +
            `${limits.maxPrompts} (--http-max-prompts, DYN_HTTP_MAX_PROMPTS)`,
          'too_many_prompts',
          key,
        );
      }
    }
  }
  walk(body, limits);
}

/** Embeddings' `input` is strings or token lists; Responses' `input` is a list of item objects. */
function isPromptListOfText(input: unknown[]): boolean {
  return input.every((v) => typeof v === 'string' || typeof v === 'number' || Array.isArray(v));
}

function notFinite(key: string | undefined): never {
  throw new ValidationError(
    `Numbers must be finite: a value${
      key === undefined ? '' : ` of "${key}"`
    } is out of range (such as 1e400)`,
    { param: key ?? null },
  );
}

function walk(body: unknown, limits: RequestLimits): void {
  let chars = 0;
  // Parallel stacks: the value, its depth, and the key it sits under (for media strings).
  const values: unknown[] = [body];
  const depths: number[] = [0];
  const keys: (string | undefined)[] = [undefined];
  while (values.length > 0) {
    const value = values.pop();
    const depth = depths.pop() ?? 0;
    const key = keys.pop();
    if (typeof value === 'string') {
      if (key !== undefined && MEDIA_KEYS.has(key)) continue;
      if (value.startsWith('data:')) continue;
      chars += value.length;
    } else if (typeof value === 'number') {
      if (!Number.isFinite(value)) notFinite(key);
      chars += 1;
    } else if (value !== null && typeof value === 'object') {
      if (depth >= limits.maxDepth) {
        throw new RequestLimitError(
          `JSON nested too deeply: more than ${limits.maxDepth} levels of objects and arrays ` +
            '(--http-max-json-depth, DYN_HTTP_MAX_JSON_DEPTH)',
          'json_too_deep',
        );
      }
      if (Array.isArray(value)) {
        // Numbers (token ids, mostly: 10k+ in a long prompt) are counted here, not stacked.
        for (let i = value.length - 1; i >= 0; i--) {
          const item = value[i];
          if (typeof item === 'number') {
            if (!Number.isFinite(item)) notFinite(key);
            chars += 1;
            continue;
          }
          values.push(item);
          depths.push(depth + 1);
          keys.push(key);
        }
      } else {
        for (const k in value) {
          if (!Object.hasOwn(value, k)) continue;
          values.push((value as Record<string, unknown>)[k]);
          depths.push(depth + 1);
          keys.push(k);
        }
      }
    }
    if (chars > limits.maxChars) {
      throw new RequestLimitError(
        `Request too large: more than ${limits.maxChars} characters of text and token ids over ` +
          'all prompts and messages (--http-max-request-chars, DYN_HTTP_MAX_REQUEST_CHARS)',
        'request_too_large',
      );
    }
  }
}

/** What a request asks the engine to write back, for the output budget. */
export interface OutputAsk {
  /** Choices over all prompts (n x prompts). */
  choices: number;
  /** Effective max_tokens; undefined when the engine decides (no context length known). */
  maxTokens: number | undefined;
  /** Top logprobs per token, or undefined without logprobs. */
  logprobs: number | undefined;
}

/**
 * The output budget (docs/security.md): choices x max_tokens x (1, or 2 + top logprobs when
 * logprobs are asked for) must stay within `budget`, else a 400 before any worker is called.
 */
export function checkOutputBudget(ask: OutputAsk, budget: number): void {
  if (ask.maxTokens === undefined) return;
  const perToken = ask.logprobs === undefined ? 1 : 2 + ask.logprobs;
  const units = ask.choices * ask.maxTokens * perToken;
  if (units <= budget) return;
  throw new RequestLimitError(
    `Output budget exceeded: ${ask.choices} choice(s) x ${ask.maxTokens} max tokens x ` +
      `${perToken} (${
        ask.logprobs === undefined ? 'no logprobs' : `${ask.logprobs} top logprobs`
      })` +
      ` = ${units}, over the limit of ${budget}; lower max_tokens, n or top_logprobs ` +
      '(--http-max-output-budget, DYN_HTTP_MAX_OUTPUT_BUDGET)',
    'output_budget_exceeded',
    'max_tokens',
  );
}
