/**
 * Request validation for the OpenAI surface (reference §4.1-4.4): the cross-field rules the Zod
 * schemas in `openai.ts` cannot express, the unknown-field policy, and one mapping from Zod issues
 * to a `ValidationError` whose `param` is the offending field's path and whose message says what
 * failed: `Invalid value for "temperature": must be between 0 and 2 (got 3)`.
 *
 * Routes validate the body with the schema (through zod-openapi) and then call `validateX()`;
 * `parseX()` does both, for callers that hold a raw body (tests, protocol translators).
 */
import type { z } from 'zod';
import { NotImplementedError, ValidationError } from '../../errors.ts';
import { show, U32_MAX } from './_fields.ts';
import {
  type ChatCompletionRequest,
  ChatCompletionRequestSchema,
  type CompletionRequest,
  CompletionRequestSchema,
  type EmbeddingRequest,
  EmbeddingRequestSchema,
  LIMITS,
  type ResponsesRequest,
  ResponsesRequestSchema,
} from './schemas.ts';

export interface ValidateOptions {
  /**
   * Drop unknown top-level fields instead of answering 400 "Unsupported parameter(s)"
   * (`DYN_IGNORE_OPENAI_FE_UNSUPPORTED_FIELDS`).
   * @default false
   */
  ignoreUnsupported?: boolean;
}

// ---------------------------------------------------------------------------------------------
// Zod issues -> ValidationError
// ---------------------------------------------------------------------------------------------

/** The parts of a Zod issue this module reads (Zod's own issue types satisfy it). */
export interface IssueLike {
  readonly code?: string;
  readonly path: readonly PropertyKey[];
  readonly message: string;
}

interface IssueDetails {
  expected?: unknown;
  errors?: readonly (readonly IssueLike[])[];
  options?: readonly unknown[];
  values?: readonly unknown[];
  keys?: readonly string[];
  note?: string;
  minimum?: unknown;
  maximum?: unknown;
  inclusive?: boolean;
  origin?: string;
  format?: string;
}

const details = (issue: IssueLike) => issue as IssueLike & IssueDetails;

/** `['messages', 0, 'role']` -> `messages[0].role` */
export function formatParamPath(path: readonly PropertyKey[]): string {
  let out = '';
  for (const part of path) {
    if (typeof part === 'number') out += `[${part}]`;
    else out += out === '' ? String(part) : `.${String(part)}`;
  }
  return out;
}

function valueAt(root: unknown, path: readonly PropertyKey[]): unknown {
  let at = root;
  for (const part of path) {
    if (at === null || typeof at !== 'object') return undefined;
    at = (at as Record<PropertyKey, unknown>)[part];
  }
  return at;
}

function typeName(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'array';
  return typeof value;
}

interface Located {
  issue: IssueLike;
  path: PropertyKey[];
}

/** A branch that failed on its discriminator (`type` or `role`) did not match at all. */
function missesDiscriminator(branch: readonly IssueLike[]): boolean {
  return branch.some((i) => i.path.length === 1 && (i.path[0] === 'type' || i.path[0] === 'role'));
}

function allTypeMismatch(issue: IssueLike): boolean {
  const errors = details(issue).errors ?? [];
  return issue.code === 'invalid_union' && errors.length > 0 &&
    errors.every((b) => b.length === 1 && b[0]?.code === 'invalid_type' && b[0].path.length === 0);
}

/**
 * Descends into union failures, choosing the branch that came closest to matching: one whose
 * discriminator matched, then one whose type matched, then the one with the fewest issues, then
 * the deepest path.
 */
function locate(issue: IssueLike, base: readonly PropertyKey[]): Located {
  const path = [...base, ...issue.path];
  const d = details(issue);
  if (issue.code !== 'invalid_union' || !d.errors || allTypeMismatch(issue)) {
    return { issue, path };
  }
  let best: { located: Located; rank: number[] } | undefined;
  for (const branch of d.errors) {
    const first = branch[0];
    if (!first) continue;
    const located = locate(first, path);
    const wrongType = branch.length === 1 && first.code === 'invalid_type' &&
      first.path.length === 0;
    const rank = [
      missesDiscriminator(branch) ? 1 : 0,
      wrongType ? 1 : 0,
      branch.length,
      -located.path.length,
    ];
    const better = !best || compareRanks(rank, best.rank) < 0;
    if (better) best = { located, rank };
  }
  return best ? best.located : { issue, path };
}

function compareRanks(a: readonly number[], b: readonly number[]): number {
  for (let i = 0; i < a.length; i++) {
    const diff = (a[i] ?? 0) - (b[i] ?? 0);
    if (diff !== 0) return diff;
  }
  return 0;
}

function unionExpected(issue: IssueLike): string {
  const kinds = new Set<string>();
  for (const branch of details(issue).errors ?? []) {
    const expected = branch[0] && details(branch[0]).expected;
    if (typeof expected === 'string') kinds.add(expected);
  }
  // A fixed order, so the message does not depend on the order the union tries its branches in.
  const rank = (k: string) => {
    const i = ['string', 'number', 'boolean', 'object', 'array'].indexOf(k);
    return i < 0 ? 99 : i;
  };
  return [...kinds].sort((a, b) => rank(a) - rank(b) || a.localeCompare(b)).join(' or ');
}

function fragment(issue: IssueLike, value: unknown): string {
  if (/^[a-z]/.test(issue.message)) return issue.message;
  const d = details(issue);
  const quote = (v: unknown) => JSON.stringify(v);
  switch (issue.code) {
    case 'invalid_type':
      return `expected ${String(d.expected)}, got ${typeName(value)}`;
    case 'invalid_union':
      if (d.note === 'No matching discriminator' && d.options) {
        return `must be one of ${d.options.map(quote).join(', ')} (got ${show(value)})`;
      }
      return `expected ${unionExpected(issue) || 'a different shape'}, got ${typeName(value)}`;
    case 'invalid_value':
      return `must be ${d.values?.length === 1 ? '' : 'one of '}${
        (d.values ?? []).map(quote).join(', ')
      } (got ${show(value)})`;
    case 'unrecognized_keys':
      return `unknown field(s) ${(d.keys ?? []).map((k) => `\`${k}\``).join(', ')}`;
    case 'too_small':
    case 'too_big': {
      const small = issue.code === 'too_small';
      const bound = small ? d.minimum : d.maximum;
      const word = small
        ? (d.inclusive ? 'at least' : 'more than')
        : (d.inclusive ? 'at most' : 'less than');
      if (d.origin === 'array') return `must have ${word} ${String(bound)} entries`;
      if (d.origin === 'string') return `must have ${word} ${String(bound)} characters`;
      return `must be ${word} ${String(bound)} (got ${show(value)})`;
    }
    case 'invalid_format':
      return `must be a valid ${d.format ?? 'value'} (got ${show(value)})`;
    default: {
      const text = issue.message.replace(/^Invalid input:\s*/, '');
      return text.charAt(0).toLowerCase() + text.slice(1);
    }
  }
}

/**
 * The first Zod issue as a `ValidationError` (Dynamo reports one problem at a time). `input` is the
 * value that was validated, used to say what was received.
 */
export function issuesToValidationError(
  issues: readonly IssueLike[],
  input?: unknown,
): ValidationError {
  const first = issues[0];
  if (!first) return new ValidationError('Invalid request body');
  const { issue, path } = locate(first, []);
  const param = formatParamPath(path);
  const value = valueAt(input, path);
  const missing = issue.code === 'invalid_type' || allTypeMismatch(issue);
  if (value === undefined && missing && param !== '') {
    return new ValidationError(`Missing required parameter "${param}"`, { param });
  }
  if (param === '') return new ValidationError(`Invalid request body: ${fragment(issue, value)}`);
  return new ValidationError(`Invalid value for "${param}": ${fragment(issue, value)}`, { param });
}

function parseWith<S extends z.ZodType>(schema: S, body: unknown): z.output<S> {
  const result = schema.safeParse(body);
  if (!result.success) throw issuesToValidationError(result.error.issues, body);
  return result.data;
}

/** Token arrays shorter than this go through zod as they are. */
const LONG_TOKEN_ARRAY = 64;

/** Every item an integer in [0, 2^32 - 1]. */
function isU32Array(value: readonly unknown[]): boolean {
  for (let i = 0; i < value.length; i++) {
    const v = value[i];
    if (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || v > U32_MAX) return false;
  }
  return true;
}

/**
 * Zod checks an array item by item through its check machinery, ~0.2 us a token: 3 ms of the
 * event loop for a 15k-token prompt, most of the frontend's intake CPU on long-context traffic.
 * When `body[key]` is a long token array (or a batch holding some) whose items all pass one
 * tight loop, this gives the body to validate with each such array cut to its first item (same
 * shape, same branch of a union) and `restore`, which puts the arrays back into what validation
 * returned. Undefined when there is nothing to cut or an item is bad: zod then checks the array
 * whole, so errors keep their wording and path. Only for a field whose schema sets no upper
 * bound on the array's length, which the cut would hide.
 */
export function longTokenStandIn(
  body: unknown,
  key: string,
): { body: Record<string, unknown>; restore: (data: unknown) => void } | undefined {
  if (body === null || typeof body !== 'object' || Array.isArray(body)) return undefined;
  const value = (body as Record<string, unknown>)[key];
  if (!Array.isArray(value)) return undefined;
  let standIn: unknown[] | undefined;
  if (value.length >= LONG_TOKEN_ARRAY && isU32Array(value)) standIn = value.slice(0, 1);
  else if (value.some((v) => Array.isArray(v) && v.length >= LONG_TOKEN_ARRAY)) {
    let all = true;
    standIn = value.map((v) => {
      if (!Array.isArray(v) || v.length < LONG_TOKEN_ARRAY) return v;
      if (!isU32Array(v)) all = false;
      return v.slice(0, 1);
    });
    if (!all) return undefined;
  }
  if (!standIn) return undefined;
  return {
    body: { ...body, [key]: standIn },
    restore: (data) => {
      if (data !== null && typeof data === 'object') (data as Record<string, unknown>)[key] = value;
    },
  };
}

function parseWithTokens<S extends z.ZodType>(schema: S, body: unknown, key: string): z.output<S> {
  const cut = longTokenStandIn(body, key);
  if (!cut) return parseWith(schema, body);
  const data = parseWith(schema, cut.body);
  cut.restore(data);
  return data;
}

// ---------------------------------------------------------------------------------------------
// Unknown fields
// ---------------------------------------------------------------------------------------------

const CHAT_FIELDS: ReadonlySet<string> = new Set(Object.keys(ChatCompletionRequestSchema.shape));
const COMPLETION_FIELDS: ReadonlySet<string> = new Set(
  Object.keys(CompletionRequestSchema.shape),
);

/**
 * Refuses top-level fields outside `known` with Dynamo's message, or returns a copy without them
 * when `ignoreUnsupported` is set. Returns `request` itself when there is nothing unknown.
 */
export function checkUnsupportedFields<T extends Record<string, unknown>>(
  request: T,
  known: ReadonlySet<string>,
  options: ValidateOptions = {},
): T {
  const unknown = Object.keys(request).filter((key) => !known.has(key));
  if (unknown.length === 0) return request;
  if (!options.ignoreUnsupported) {
    throw new ValidationError(
      `Unsupported parameter(s): ${unknown.map((k) => `\`${k}\``).join(', ')}`,
      { param: unknown[0] },
    );
  }
  const copy: Record<string, unknown> = { ...request };
  for (const key of unknown) delete copy[key];
  return copy as T;
}

// ---------------------------------------------------------------------------------------------
// Shared rules
// ---------------------------------------------------------------------------------------------

const set = (value: unknown) => value !== undefined && value !== null;

function invalid(param: string, rule: string): ValidationError {
  return new ValidationError(`Invalid value for "${param}": ${rule}`, { param });
}

function checkStreamOptions(request: { stream?: boolean | null; stream_options?: unknown }) {
  if (set(request.stream_options) && request.stream !== true) {
    throw new ValidationError(
      "The 'stream_options' field is only allowed when 'stream' is set to true.",
      { param: 'stream_options' },
    );
  }
}

interface GuidedFields {
  guided_json?: unknown;
  guided_regex?: string | null;
  guided_grammar?: string | null;
  guided_choice?: string[] | null;
  response_format?: { type: string } | null;
}

function checkSingleGuidedConstraint(request: GuidedFields) {
  const received: [string, string][] = [];
  if (set(request.guided_json)) received.push(['json', 'guided_json']);
  if (set(request.guided_regex)) received.push(['regex', 'guided_regex']);
  if (set(request.guided_grammar)) received.push(['grammar', 'guided_grammar']);
  if (set(request.guided_choice)) received.push(['choice', 'guided_choice']);
  const format = request.response_format?.type;
  if (format === 'json_object' || format === 'json_schema') {
    received.push(['response_format', 'response_format']);
  }
  if (received.length > 1) {
    throw new ValidationError(
      `Only one guided-decoding constraint can be set; received: ${
        received.map(([name]) => name).join(', ')
      }`,
      { param: received[1]?.[1] ?? null },
    );
  }
}

function checkDiverseSampling(request: { n?: number | null; temperature?: number | null }) {
  const n = request.n ?? 1;
  if (n > 1 && request.temperature === 0) {
    throw invalid('temperature', `must be greater than 0 when n > 1 (got 0 with n=${n})`);
  }
}

function checkJsonSchemaFormat(
  format: { name: string; schema?: unknown },
  at: { name: string; schema: string },
) {
  if (format.name.trim() === '') throw invalid(at.name, 'must not be empty');
  if (format.schema === undefined || format.schema === null) {
    throw new ValidationError(
      `Missing required parameter "${at.schema}" (needed when the format type is json_schema)`,
      { param: at.schema },
    );
  }
  if (format.schema === false) {
    throw invalid(at.schema, 'cannot be false: no output satisfies it');
  }
}

// ---------------------------------------------------------------------------------------------
// Chat completions (§4.1)
// ---------------------------------------------------------------------------------------------

/**
 * The rules of §4.1 steps 2-6 on a request that already passed `ChatCompletionRequestSchema`.
 * Returns the request, without unknown fields when `ignoreUnsupported` is set.
 */
export function validateChatCompletionRequest(
  request: ChatCompletionRequest,
  options: ValidateOptions = {},
): ChatCompletionRequest {
  if (request.function_call !== undefined) {
    throw new NotImplementedError(
      '`function_call` is deprecated. Please migrate to use `tool_choice` instead.',
      { param: 'function_call' },
    );
  }
  if (request.functions !== undefined) {
    throw new NotImplementedError(
      '`functions` is deprecated. Please migrate to use `tools` instead.',
      { param: 'functions' },
    );
  }
  if (request.messages.length === 0) {
    throw new ValidationError(
      "The 'messages' field cannot be empty. At least one message is required.",
      { param: 'messages' },
    );
  }
  checkStreamOptions(request);
  const checked = checkUnsupportedFields(request, CHAT_FIELDS, options);

  const tools = request.tools ?? [];
  const choice = request.tool_choice;
  if (choice === 'required' && tools.length === 0) {
    throw invalid('tool_choice', 'it is "required" but "tools" is empty');
  }
  if (typeof choice === 'object' && choice !== null) {
    const name = choice.function.name;
    if (!tools.some((t) => t.function.name === name)) {
      throw invalid('tool_choice.function.name', `tool ${show(name)} is not present in "tools"`);
    }
  }

  const format = request.response_format;
  if (format?.type === 'json_schema') {
    checkJsonSchemaFormat(format.json_schema, {
      name: 'response_format.json_schema.name',
      schema: 'response_format.json_schema.schema',
    });
  }

  request.messages.forEach((message, i) => {
    if (message.role !== 'assistant' || !message.tool_calls) return;
    message.tool_calls.forEach((call, j) => {
      const args = call.function.arguments;
      if (args.trim() === '') return;
      let parsed: unknown;
      try {
        parsed = JSON.parse(args);
      } catch {
        parsed = undefined;
      }
      if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) {
        throw invalid(
          `messages[${i}].tool_calls[${j}].function.arguments`,
          `must be a JSON object string (got ${show(args)})`,
        );
      }
    });
  });

  if (request.chat_template_args && 'chat_template' in request.chat_template_args) {
    throw new ValidationError('`chat_template` is not supported inside `chat_template_args`', {
      param: 'chat_template_args.chat_template',
    });
  }
  checkSingleGuidedConstraint(request);
  checkDiverseSampling(request);
  return checked;
}

/** Schema check plus `validateChatCompletionRequest()`. */
export function parseChatCompletionRequest(
  body: unknown,
  options: ValidateOptions = {},
): ChatCompletionRequest {
  return validateChatCompletionRequest(parseWith(ChatCompletionRequestSchema, body), options);
}

// ---------------------------------------------------------------------------------------------
// Completions (§4.2)
// ---------------------------------------------------------------------------------------------

const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;

function checkPromptEmbeds(value: string) {
  const param = 'prompt_embeds';
  if (value.length % 4 !== 0 || !BASE64.test(value)) {
    throw invalid(param, 'must be valid base64');
  }
  const padding = value.endsWith('==') ? 2 : value.endsWith('=') ? 1 : 0;
  const bytes = (value.length / 4) * 3 - padding;
  if (bytes < LIMITS.minPromptEmbedsBytes) {
    throw invalid(
      param,
      `must decode to at least ${LIMITS.minPromptEmbedsBytes} bytes (got ${bytes})`,
    );
  }
  if (bytes > LIMITS.maxPromptEmbedsBytes) {
    throw invalid(param, `must decode to at most 10 MiB (got ${bytes} bytes)`);
  }
  // torch.save() writes a zip archive ("PK\x03\x04"), or a pickle (0x80) in its legacy format.
  if (!value.startsWith('UEsDB') && !value.startsWith('gA')) {
    throw invalid(param, 'must be a tensor saved by torch.save(), base64-encoded');
  }
}

/** How many prompts a completion request carries (a batch is an array of prompts). */
export function promptCount(prompt: CompletionRequest['prompt']): number {
  if (prompt === undefined || prompt === null || typeof prompt === 'string') return 1;
  if (prompt.length > 0 && (typeof prompt[0] === 'string' || Array.isArray(prompt[0]))) {
    return prompt.length;
  }
  return 1;
}

/** The rules of §4.2 on a request that already passed `CompletionRequestSchema`. */
export function validateCompletionRequest(
  request: CompletionRequest,
  options: ValidateOptions = {},
): CompletionRequest {
  if (!set(request.prompt) && !set(request.prompt_embeds)) {
    throw new ValidationError("At least one of 'prompt' or 'prompt_embeds' must be provided", {
      param: 'prompt',
    });
  }
  checkStreamOptions(request);
  const checked = checkUnsupportedFields(request, COMPLETION_FIELDS, options);
  if (typeof request.prompt_embeds === 'string') checkPromptEmbeds(request.prompt_embeds);

  const n = request.n ?? 1;
  if (set(request.best_of) && (request.best_of ?? 0) < n) {
    throw invalid('best_of', `must be greater than or equal to n (got ${request.best_of}, n=${n})`);
  }
  const batch = promptCount(request.prompt);
  if (batch * n > LIMITS.maxTotalChoices) {
    throw invalid(
      'n',
      `prompts × n must be at most ${LIMITS.maxTotalChoices} (got ${batch} × ${n} = ${batch * n})`,
    );
  }
  checkSingleGuidedConstraint(request);
  checkDiverseSampling(request);
  return checked;
}

/** Schema check plus `validateCompletionRequest()`. */
export function parseCompletionRequest(
  body: unknown,
  options: ValidateOptions = {},
): CompletionRequest {
  return validateCompletionRequest(
    parseWithTokens(CompletionRequestSchema, body, 'prompt'),
    options,
  );
}

// ---------------------------------------------------------------------------------------------
// Embeddings (§4.3) and Responses (§4.4)
// ---------------------------------------------------------------------------------------------

/** Embeddings have no cross-field rule; unknown fields were already dropped by the schema. */
export function parseEmbeddingRequest(body: unknown): EmbeddingRequest {
  return parseWith(EmbeddingRequestSchema, body);
}

const UNSUPPORTED_EXTRA_FIELDS = ['completion_token_ids', 'prompt_logprobs'];

/**
 * The Responses rules of §4.4: 501 for background runs, stored prompts and server-side tools, and the
 * `text.format` rules. The translated chat request is validated again by `responsesToChat()`.
 */
export function validateResponsesRequest(request: ResponsesRequest): ResponsesRequest {
  const unsupported = (param: string, why: string) =>
    new NotImplementedError(`"${param}" is not supported: ${why}`, { param });
  if (request.background === true) {
    throw unsupported('background', 'responses run in the foreground only');
  }
  if (set(request.prompt)) throw unsupported('prompt', 'prompt templates are not stored');
  if (set(request.conversation)) {
    throw unsupported('conversation', 'conversations are not stored; use previous_response_id');
  }
  if (set(request.max_tool_calls)) {
    throw unsupported('max_tool_calls', 'tools are not executed by this server');
  }
  const extra = request.nvext?.extra_fields ?? [];
  for (const field of UNSUPPORTED_EXTRA_FIELDS) {
    if (extra.includes(field)) {
      throw unsupported('nvext.extra_fields', `"${field}" is not available on /v1/responses`);
    }
  }
  const format = request.text?.format;
  if (format?.type === 'json_schema') {
    checkJsonSchemaFormat(format, { name: 'text.format.name', schema: 'text.format.schema' });
  }
  return request;
}

/** Schema check plus `validateResponsesRequest()`. */
export function parseResponsesRequest(body: unknown): ResponsesRequest {
  return validateResponsesRequest(parseWith(ResponsesRequestSchema, body));
}
