/**
 * PDF object syntax (ISO 32000-1 §7.2-7.3) over bytes: the values a file's objects and a page's
 * content stream are made of. `PdfParser.next()` reads one value, or an operator keyword (a
 * content stream's `Tj`, a CMap's `beginbfchar`). Nothing here trusts the input: nesting is
 * bounded, and anything that is not PDF throws `PdfTextError`.
 */

/** A PDF the extractor cannot read; the message says why, for the client. */
export class PdfTextError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'PdfTextError';
  }
}

export interface PdfName {
  kind: 'name';
  name: string;
}
export interface PdfString {
  kind: 'string';
  bytes: Uint8Array;
}
export interface PdfRef {
  kind: 'ref';
  num: number;
  gen: number;
}
export interface PdfDict {
  kind: 'dict';
  map: Map<string, PdfValue>;
}
export interface PdfStream {
  kind: 'stream';
  dict: PdfDict;
  /** The stream's bytes as stored (still encoded by its /Filter). */
  raw: Uint8Array;
}
/** A keyword that is not a value: a content stream operator, `obj`, `stream`, ... */
export interface PdfOperator {
  kind: 'op';
  op: string;
}
export type PdfValue =
  | null
  | boolean
  | number
  | PdfName
  | PdfString
  | PdfRef
  | PdfDict
  | PdfStream
  | PdfValue[];

const MAX_DEPTH = 64;

const isSpace = (b: number) =>
  b === 0x20 || b === 0x0a || b === 0x0d || b === 0x09 ||
  b === 0x0c || b === 0x00;
const isDelimiter = (b: number) =>
  b === 0x28 || b === 0x29 || b === 0x3c || b === 0x3e || b === 0x5b || b === 0x5d ||
  b === 0x7b || b === 0x7d || b === 0x2f || b === 0x25;
const isRegular = (b: number) => !isSpace(b) && !isDelimiter(b);

function hexValue(b: number): number {
  if (b >= 0x30 && b <= 0x39) return b - 0x30;
  if (b >= 0x41 && b <= 0x46) return b - 0x37;
  if (b >= 0x61 && b <= 0x66) return b - 0x57;
  return -1;
}

export const latin1 = (bytes: Uint8Array): string => {
  let out = '';
  for (let i = 0; i < bytes.length; i += 8192) {
    out += String.fromCharCode(...bytes.subarray(i, i + 8192));
  }
  return out;
};

export class PdfParser {
  readonly bytes: Uint8Array;
  pos: number;
  /** Whether `N G R` reads as a reference (file objects; not content streams). */
  readonly refs: boolean;

  constructor(bytes: Uint8Array, options: { pos?: number; refs?: boolean } = {}) {
    this.bytes = bytes;
    this.pos = options.pos ?? 0;
    this.refs = options.refs ?? false;
  }

  skipSpace(): void {
    const b = this.bytes;
    while (this.pos < b.length) {
      const c = b[this.pos]!;
      if (isSpace(c)) this.pos++;
      else if (c === 0x25) {
        while (this.pos < b.length && b[this.pos] !== 0x0a && b[this.pos] !== 0x0d) this.pos++;
      } else break;
    }
  }

  /** The next value or operator, or undefined at the end of the bytes. */
  next(depth = 0): PdfValue | PdfOperator | undefined {
    if (depth > MAX_DEPTH) throw new PdfTextError('objects nested too deeply');
    this.skipSpace();
    const b = this.bytes;
    if (this.pos >= b.length) return undefined;
    const c = b[this.pos]!;
    if (c === 0x28) return this.#literal();
    if (c === 0x3c) {
      if (b[this.pos + 1] === 0x3c) return this.#dict(depth);
      return this.#hex();
    }
    if (c === 0x5b) return this.#array(depth);
    if (c === 0x2f) return this.#name();
    if (c === 0x5d || c === 0x3e || c === 0x29 || c === 0x7b || c === 0x7d) {
      this.pos++;
      return { kind: 'op', op: String.fromCharCode(c) };
    }
    const start = this.pos;
    while (this.pos < b.length && isRegular(b[this.pos]!)) this.pos++;
    const word = latin1(b.subarray(start, this.pos));
    if (/^[+-]?(\d+\.?\d*|\.\d+)$/.test(word)) return this.#number(word);
    if (word === 'true') return true;
    if (word === 'false') return false;
    if (word === 'null') return null;
    return { kind: 'op', op: word };
  }

  /** The next value; an operator where a value belongs is an error. */
  value(depth = 0): PdfValue {
    const v = this.next(depth);
    if (v === undefined) throw new PdfTextError('unexpected end of data');
    if (isOperator(v)) throw new PdfTextError(`unexpected "${v.op}"`);
    return v;
  }

  #number(word: string): number | PdfRef {
    const n = Number(word);
    if (!this.refs || !/^\d+$/.test(word)) return n;
    // `N G R` is a reference; anything else leaves the position after N.
    const save = this.pos;
    const m = /^\s+(\d+)\s+R(?![^\s()<>[\]{}/%])/.exec(
      latin1(this.bytes.subarray(this.pos, this.pos + 24)),
    );
    if (!m) return n;
    this.pos = save + m[0].length;
    return { kind: 'ref', num: n, gen: Number(m[1]) };
  }

  #name(): PdfName {
    const b = this.bytes;
    this.pos++;
    let name = '';
    while (this.pos < b.length && isRegular(b[this.pos]!)) {
      const c = b[this.pos]!;
      const hi = hexValue(b[this.pos + 1] ?? 0);
      const lo = hexValue(b[this.pos + 2] ?? 0);
      if (c === 0x23 && hi >= 0 && lo >= 0) {
        name += String.fromCharCode(hi * 16 + lo);
        this.pos += 3;
      } else {
        name += String.fromCharCode(c);
        this.pos++;
      }
    }
    return { kind: 'name', name };
  }

  #literal(): PdfString {
    const b = this.bytes;
    const out: number[] = [];
    let nesting = 1;
    this.pos++;
    while (this.pos < b.length) {
      let c = b[this.pos++]!;
      if (c === 0x28) nesting++;
      else if (c === 0x29 && --nesting === 0) return { kind: 'string', bytes: new Uint8Array(out) };
      else if (c === 0x0d) {
        // An unescaped end of line is a line feed, whichever it was.
        if (b[this.pos] === 0x0a) this.pos++;
        c = 0x0a;
      } else if (c === 0x5c) {
        const e = b[this.pos++];
        if (e === undefined) break;
        const simple: Record<number, number> = {
          0x6e: 0x0a, // \n
          0x72: 0x0d, // \r
          0x74: 0x09, // \t
          0x62: 0x08, // \b
          0x66: 0x0c, // \f
        };
        if (simple[e] !== undefined) c = simple[e]!;
        else if (e >= 0x30 && e <= 0x37) {
          // \ddd: one to three octal digits.
          let v = e - 0x30;
          for (let k = 0; k < 2; k++) {
            const d = b[this.pos];
            if (d === undefined || d < 0x30 || d > 0x37) break;
            v = v * 8 + d - 0x30;
            this.pos++;
          }
          c = v & 0xff;
        } else if (e === 0x0d || e === 0x0a) {
          // A backslash at the end of a line continues the string on the next.
          if (e === 0x0d && b[this.pos] === 0x0a) this.pos++;
          continue;
        } else c = e; // \( \) \\ and unknown escapes: the character itself
      }
      out.push(c);
    }
    throw new PdfTextError('unterminated string');
  }

  #hex(): PdfString {
    const b = this.bytes;
    const out: number[] = [];
    let half = -1;
    this.pos++;
    while (this.pos < b.length) {
      const c = b[this.pos++]!;
      if (c === 0x3e) {
        if (half >= 0) out.push(half * 16);
        return { kind: 'string', bytes: new Uint8Array(out) };
      }
      if (isSpace(c)) continue;
      const v = hexValue(c);
      if (v < 0) throw new PdfTextError('invalid hex string');
      if (half < 0) half = v;
      else {
        out.push(half * 16 + v);
        half = -1;
      }
    }
    throw new PdfTextError('unterminated hex string');
  }

  #array(depth: number): PdfValue[] {
    const out: PdfValue[] = [];
    this.pos++;
    for (;;) {
      const v = this.next(depth + 1);
      if (v === undefined) throw new PdfTextError('unterminated array');
      if (isOperator(v)) {
        if (v.op === ']') return out;
        continue; // stray keywords inside an array are skipped
      }
      out.push(v);
    }
  }

  #dict(depth: number): PdfDict {
    const map = new Map<string, PdfValue>();
    this.pos += 2;
    for (;;) {
      this.skipSpace();
      const b = this.bytes;
      if (this.pos >= b.length) throw new PdfTextError('unterminated dictionary');
      if (b[this.pos] === 0x3e && b[this.pos + 1] === 0x3e) {
        this.pos += 2;
        return { kind: 'dict', map };
      }
      const key = this.next(depth + 1);
      if (key === undefined) throw new PdfTextError('unterminated dictionary');
      if (key === null || typeof key !== 'object' || Array.isArray(key) || key.kind !== 'name') {
        continue; // not a key: skipped
      }
      const v = this.next(depth + 1);
      if (v === undefined) throw new PdfTextError('unterminated dictionary');
      if (!isOperator(v)) map.set(key.name, v);
    }
  }
}

export function isOperator(v: PdfValue | PdfOperator | undefined): v is PdfOperator {
  return v !== null && typeof v === 'object' && !Array.isArray(v) && v.kind === 'op';
}

const isKind = <K extends string>(v: PdfValue | undefined, kind: K) =>
  v !== null && v !== undefined && typeof v === 'object' && !Array.isArray(v) && v.kind === kind;

export const asDict = (v: PdfValue | undefined): PdfDict | undefined =>
  isKind(v, 'dict') ? v as PdfDict : isKind(v, 'stream') ? (v as PdfStream).dict : undefined;
export const asName = (v: PdfValue | undefined): string | undefined =>
  isKind(v, 'name') ? (v as PdfName).name : undefined;
export const asStream = (v: PdfValue | undefined): PdfStream | undefined =>
  isKind(v, 'stream') ? v as PdfStream : undefined;
export const asString = (v: PdfValue | undefined): Uint8Array | undefined =>
  isKind(v, 'string') ? (v as PdfString).bytes : undefined;
export const asRef = (v: PdfValue | undefined): PdfRef | undefined =>
  isKind(v, 'ref') ? v as PdfRef : undefined;
