/**
 * JSON with exact u64s: Dynamo writes instance ids, worker ids and block hashes as integers that
 * can pass 2^53, which JSON.parse would round. Writing takes `bigint`; reading gives `bigint` for
 * integers beyond the safe range and plain numbers otherwise.
 */

/** JSON text of `value`, where a `bigint` is written as its exact digits. */
export function stringifyExactJson(value: unknown): string {
  if (typeof value === 'bigint') return value.toString();
  if (value === null || typeof value !== 'object') {
    // undefined, functions and symbols have no JSON form; inside objects they are skipped.
    return JSON.stringify(value) ?? 'null';
  }
  const withJson = value as { toJSON?: () => unknown };
  if (typeof withJson.toJSON === 'function') return stringifyExactJson(withJson.toJSON());
  if (Array.isArray(value)) return `[${value.map((v) => stringifyExactJson(v)).join(',')}]`;
  const members: string[] = [];
  for (const [k, v] of Object.entries(value)) {
    if (v === undefined || typeof v === 'function' || typeof v === 'symbol') continue;
    members.push(`${JSON.stringify(k)}:${stringifyExactJson(v)}`);
  }
  return `{${members.join(',')}}`;
}

/**
 * `JSON.stringify`, or exact JSON (`stringifyExactJson`) when `value` holds a bigint, which
 * `JSON.stringify` refuses: response bodies carry one only for u64 ids (`nvext.worker_id`).
 */
export function jsonText(value: unknown): string {
  try {
    return JSON.stringify(value);
  } catch (error) {
    if (error instanceof TypeError && /bigint/i.test(error.message)) {
      return stringifyExactJson(value);
    }
    throw error;
  }
}

// JSON strings may not hold raw control characters: the class excludes them on purpose.
// deno-lint-ignore no-control-regex
const STRING = /"(?:[^"\\\u0000-\u001f]|\\(?:["\\/bfnrt]|u[0-9a-fA-F]{4}))*"/y;
const NUMBER = /-?(?:0|[1-9]\d*)(\.\d+)?([eE][+-]?\d+)?/y;
const SPACE = /[ \t\n\r]*/y;

/** Prefix of a string that stood for a long integer in the text given to `JSON.parse`. */
const LONG_INT = '\u0000#';
/** Integers of fewer digits are always safe (2^53 has 16). */
const SAFE_DIGITS = 15;

/**
 * Parses JSON like `JSON.parse`, except that integers beyond 2^53 become `bigint` instead of a
 * rounded number. Throws `SyntaxError` on malformed text.
 *
 * The fast path (KV events carry hundreds of u64 hashes a message): one pass over the text finds
 * integers of more than 15 digits outside strings and quotes them with a marker, `JSON.parse`
 * does the rest natively, and a walk turns the marked strings back into numbers (a bigint when
 * unsafe). A text with an escaped NUL in a string (which could forge the marker) or that
 * `JSON.parse` refuses goes through the exact parser below, which also words the errors.
 */
export function parseExactJson(text: string): unknown {
  let out = '';
  let from = 0;
  let marked = false;
  const n = text.length;
  for (let i = 0; i < n; i++) {
    const c = text.charCodeAt(i);
    if (c === 34 /* " */) {
      for (i++; i < n; i++) {
        const d = text.charCodeAt(i);
        if (d === 34) break;
        if (d === 92 /* \ */) {
          if (text.startsWith('u0000', i + 1)) return parseExactJsonSlow(text);
          i++;
        }
      }
    } else if (c === 45 /* - */ || (c >= 48 && c <= 57)) {
      const start = i;
      if (c === 45) i++;
      while (i < n && text.charCodeAt(i) >= 48 && text.charCodeAt(i) <= 57) i++;
      const digitsEnd = i;
      const next = text.charCodeAt(i);
      const integer = next !== 46 /* . */ && next !== 101 && next !== 69 /* e E */;
      // Skip a fraction or exponent whole, so its digits are not taken for an integer.
      while (i < n && isNumberChar(text.charCodeAt(i))) i++;
      if (integer && digitsEnd - start - (c === 45 ? 1 : 0) > SAFE_DIGITS) {
        // JSON text holds the marker escaped: a raw NUL in a string is not JSON.
        out += `${text.slice(from, start)}"\\u0000#${text.slice(start, digitsEnd)}"`;
        from = digitsEnd;
        marked = true;
      }
      i--;
    }
  }
  let value: unknown;
  try {
    value = JSON.parse(marked ? out + text.slice(from) : text);
  } catch {
    return parseExactJsonSlow(text);
  }
  return marked ? unmark(value) : value;
}

/** A digit, `.`, `e`, `E`, `+` or `-`. */
const isNumberChar = (c: number) =>
  (c >= 48 && c <= 57) || c === 46 || c === 101 || c === 69 || c === 43 || c === 45;

function unmark(value: unknown): unknown {
  if (typeof value === 'string') {
    if (!value.startsWith(LONG_INT)) return value;
    const digits = value.slice(LONG_INT.length);
    const small = Number(digits);
    return Number.isSafeInteger(small) ? small : BigInt(digits);
  }
  if (value === null || typeof value !== 'object') return value;
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) value[i] = unmark(value[i]);
    return value;
  }
  const record = value as Record<string, unknown>;
  for (const key of Object.keys(record)) record[key] = unmark(record[key]);
  return value;
}

/** The exact parser: a recursive descent that reads every integer itself. */
function parseExactJsonSlow(text: string): unknown {
  let at = 0;
  const fail = (what: string): never => {
    throw new SyntaxError(`Invalid JSON: ${what} at position ${at}`);
  };
  const match = (re: RegExp): RegExpExecArray | null => {
    re.lastIndex = at;
    const m = re.exec(text);
    if (m) at = re.lastIndex;
    return m;
  };
  const space = () => void match(SPACE);
  const value = (): unknown => {
    space();
    const c = text[at];
    if (c === '{') {
      at++;
      const out: Record<string, unknown> = {};
      space();
      if (text[at] === '}') return at++, out;
      for (;;) {
        space();
        const k = match(STRING) ?? fail('expected a string key');
        space();
        if (text[at++] !== ':') fail('expected ":"');
        Object.defineProperty(out, JSON.parse(k[0]) as string, {
          value: value(),
          enumerable: true,
          writable: true,
          configurable: true,
        });
        space();
        const next = text[at++];
        if (next === '}') return out;
        if (next !== ',') fail('expected "," or "}"');
      }
    }
    if (c === '[') {
      at++;
      const out: unknown[] = [];
      space();
      if (text[at] === ']') return at++, out;
      for (;;) {
        out.push(value());
        space();
        const next = text[at++];
        if (next === ']') return out;
        if (next !== ',') fail('expected "," or "]"');
      }
    }
    if (c === '"') return JSON.parse((match(STRING) ?? fail('bad string'))[0]);
    for (const [word, result] of [['true', true], ['false', false], ['null', null]] as const) {
      if (text.startsWith(word, at)) return at += word.length, result;
    }
    const n = match(NUMBER) ?? fail('unexpected token');
    if (n[1] === undefined && n[2] === undefined) {
      const big = BigInt(n[0]);
      const small = Number(n[0]);
      if (!Number.isSafeInteger(small)) return big;
      return small;
    }
    return Number(n[0]);
  };
  const result = value();
  space();
  if (at !== text.length) fail('unexpected trailing text');
  return result;
}
