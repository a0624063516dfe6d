/**
 * Body intake for JSON routes: Content-Type check (415), a size cap enforced while reading, so an
 * oversized or endless chunked upload is refused without being buffered (413), and lenient JSON
 * parsing (400).
 */
import type { Config } from '../core/config.ts';
import {
  InvalidJsonError,
  PayloadTooLargeError,
  RequestTimeoutError,
  UnsupportedMediaTypeError,
  ValidationError,
} from '../core/errors.ts';
import {
  checkRequestLimits,
  RequestLimitError,
  type RequestLimits,
} from '../core/request-limits.ts';

const JSON_TYPE = /^application\/(?:[\w.+-]+\+)?json\s*(?:;|$)/i;

export function isJsonContentType(value: string | null | undefined): boolean {
  return value !== null && value !== undefined && JSON_TYPE.test(value.trim());
}

export function assertJsonContentType(value: string | null | undefined): void {
  if (!isJsonContentType(value)) {
    throw new UnsupportedMediaTypeError('Expected request with Content-Type application/json');
  }
}

function tooLarge(limitMb: number): PayloadTooLargeError {
  return new PayloadTooLargeError(
    `Request body exceeds the limit of ${limitMb} MB set by DYN_HTTP_BODY_LIMIT_MB`,
  );
}

export interface ReadBodyOptions {
  /** The whole body must have arrived this many ms after reading starts (408 after). @default none */
  timeoutMs?: number;
}

/**
 * Reads the body as text, failing with 413 as soon as it grows past `limitMb`, and with 408 when
 * it has not all arrived within `timeoutMs` (a client trickling bytes holds a connection and a
 * buffer otherwise).
 */
export async function readBodyText(
  request: Request,
  limitMb: number,
  options: ReadBodyOptions = {},
): Promise<string> {
  return decodeBody(await readBodyBytes(request, limitMb, options));
}

/** UTF-8 text of a body; invalid UTF-8 becomes U+FFFD rather than an error, as Dynamo's lenient parser does. */
export function decodeBody(bytes: Uint8Array): string {
  return new TextDecoder().decode(bytes);
}

/** `readBodyText` without the decoding: the body's bytes, in one buffer of their own. */
export async function readBodyBytes(
  request: Request,
  limitMb: number,
  options: ReadBodyOptions = {},
): Promise<Uint8Array> {
  return concatChunks(await readBodyChunks(request, limitMb, options));
}

/**
 * A body as the chunks it arrived in, each in an ArrayBuffer of its own (copied on arrival when
 * the runtime handed a view into a larger buffer), so they can be transferred to a thread as
 * they are. Joining 38 MB into one buffer on the event loop held it for tens of ms; a thread
 * joins them instead (`src/adapters/threads/body-pool.ts`).
 */
export async function readBodyChunks(
  request: Request,
  limitMb: number,
  options: ReadBodyOptions = {},
): Promise<Uint8Array[]> {
  const limit = Math.floor(limitMb * 1024 * 1024);
  const declared = Number(request.headers.get('content-length') ?? Number.NaN);
  if (Number.isFinite(declared) && declared > limit) throw tooLarge(limitMb);
  if (!request.body) return [];
  const reader = request.body.getReader();
  let size = 0;
  let timer: ReturnType<typeof setTimeout> | undefined;
  const ms = options.timeoutMs;
  const deadline = ms === undefined ? undefined : new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      // Reject before cancelling: the cancel settles the pending read, which must lose the race.
      reject(
        new RequestTimeoutError(
          `Request body not received within ${ms / 1000} s ` +
            '(--http-body-timeout-secs, DYN_HTTP_BODY_TIMEOUT_SECS)',
        ),
      );
      reader.cancel().catch(() => {});
    }, ms);
  });
  deadline?.catch(() => {});
  try {
    return await readAll();
  } finally {
    clearTimeout(timer);
  }

  async function readAll(): Promise<Uint8Array[]> {
    const chunks: Uint8Array[] = [];
    for (;;) {
      const { done, value } =
        await (deadline ? Promise.race([reader.read(), deadline]) : reader.read());
      if (done) break;
      size += value.byteLength;
      if (size > limit) {
        await reader.cancel().catch(() => {});
        throw tooLarge(limitMb);
      }
      chunks.push(
        value.byteOffset === 0 && value.byteLength === value.buffer.byteLength
          ? value
          : value.slice(),
      );
    }
    return chunks;
  }
}

/** Bytes in a body's chunks. */
export function sizeOf(chunks: readonly Uint8Array[]): number {
  let size = 0;
  for (const chunk of chunks) size += chunk.byteLength;
  return size;
}

/** The chunks of a body in one buffer (the only chunk itself, when there is one). */
export function concatChunks(chunks: readonly Uint8Array[]): Uint8Array {
  if (chunks.length === 1) return chunks[0]!;
  const bytes = new Uint8Array(sizeOf(chunks));
  let offset = 0;
  for (const chunk of chunks) {
    bytes.set(chunk, offset);
    offset += chunk.byteLength;
  }
  return bytes;
}

/** Escapes raw control characters that appear inside JSON string literals. */
function escapeControlCharsInStrings(text: string): string {
  let out = '';
  let inString = false;
  let escaped = false;
  for (const ch of text) {
    const code = ch.charCodeAt(0);
    if (inString && !escaped && code <= 0x1f) {
      out += `\\u${code.toString(16).padStart(4, '0')}`;
      continue;
    }
    out += ch;
    if (escaped) escaped = false;
    else if (ch === '\\') escaped = inString;
    else if (ch === '"') inString = !inString;
  }
  return out;
}

/** JSON.parse, retried once with raw control characters in strings escaped. */
export function parseJsonLenient(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch (first) {
    try {
      return JSON.parse(escapeControlCharsInStrings(text));
    } catch {
      const detail = first instanceof Error ? first.message : String(first);
      throw new InvalidJsonError(`Failed to parse the request body as JSON: ${detail}`);
    }
  }
}

/**
 * A JSON body from its bytes: decoded, parsed leniently and checked against the request budget,
 * the whole intake after reading. Runs inline, or in the body thread for large bodies
 * (`src/adapters/threads/body-pool.ts`), which is why it takes bytes.
 */
export function parseJsonBody(bytes: Uint8Array | string, limits: RequestLimits): unknown {
  const body = parseJsonLenient(typeof bytes === 'string' ? bytes : decodeBody(bytes));
  checkRequestLimits(body, limits);
  return body;
}

/** The request budget `config` sets (`--http-max-*`). */
export function requestLimitsOf(config: Config): RequestLimits {
  return {
    maxChars: config.httpMaxRequestChars,
    maxMessages: config.httpMaxMessages,
    maxPrompts: config.httpMaxPrompts,
    maxDepth: config.httpMaxJsonDepth,
  };
}

/** Runs `parseJsonBody` elsewhere (a thread); rejects with the same errors. */
export interface BodyParser {
  /** The body's chunks, each the whole of its buffer (`readBodyChunks`): they are transferred. */
  parse(chunks: readonly Uint8Array[], limits: RequestLimits): Promise<unknown>;
}

/** A refusal of `parseJsonBody`, as plain data that crosses a thread. */
export interface BodyRefusal {
  kind: 'json' | 'limit' | 'value';
  message: string;
  code: string | null;
  param: string | null;
}

/** The refusal `error` stands for, or undefined for an error that is not one (a bug). */
export function toBodyRefusal(error: unknown): BodyRefusal | undefined {
  const kind = error instanceof InvalidJsonError
    ? 'json'
    : error instanceof RequestLimitError
    ? 'limit'
    : error instanceof ValidationError
    ? 'value'
    : undefined;
  if (!kind) return undefined;
  const { message, code, param } = error as ValidationError;
  return { kind, message, code, param };
}

/** The error a refusal came from, rebuilt on this side of the thread. */
export function fromBodyRefusal(refusal: BodyRefusal): Error {
  switch (refusal.kind) {
    case 'json':
      return new InvalidJsonError(refusal.message);
    case 'limit':
      return new RequestLimitError(
        refusal.message,
        refusal.code ?? 'invalid_request',
        refusal.param,
      );
    case 'value':
      return new ValidationError(refusal.message, { param: refusal.param });
  }
}
