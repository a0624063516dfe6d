/**
 * Body intake for JSON routes: Content-Type check (415), a size cap enforced while reading, so an
 * oversized or endless chunked upload is refused without being buffered (413), and lenient JSON
 * parsing (400).
 */
import {
  InvalidJsonError,
  PayloadTooLargeError,
  RequestTimeoutError,
  UnsupportedMediaTypeError,
} from '../core/errors.ts';

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
  const limit = Math.floor(limitMb * 1024 * 1024);
  const declared = Number(request.headers.get('content-length') ?? Number.NaN);
  if (Number.isFinite(declared) && declared > limit) throw tooLarge(limitMb);
  if (!request.body) return '';
  const reader = request.body.getReader();
  const chunks: Uint8Array[] = [];
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

  async function readAll(): Promise<string> {
    for (;;) {
      const { done, value } =
        await (deadline ? Promise.race([reader.read(), deadline]) : reader.read());
      if (done) break;
      size += value.byteLength;
      if (size > limit) {
        await reader.cancel().catch(() => {});
        throw tooLarge(limitMb);
      }
      chunks.push(value);
    }
    const bytes = new Uint8Array(size);
    let offset = 0;
    for (const chunk of chunks) {
      bytes.set(chunk, offset);
      offset += chunk.byteLength;
    }
    // Invalid UTF-8 becomes U+FFFD rather than an error, as Dynamo's lenient parser does.
    return new TextDecoder().decode(bytes);
  }
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
