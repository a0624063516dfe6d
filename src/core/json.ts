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

/**
 * Parses JSON like `JSON.parse`, except that integers beyond 2^53 become `bigint` instead of a
 * rounded number. Throws `SyntaxError` on malformed text.
 */
export function parseExactJson(text: string): unknown {
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
