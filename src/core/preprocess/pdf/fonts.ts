/**
 * A font's bytes -> Unicode (ISO 32000-1 §9.10): a ToUnicode CMap (`bfchar` / `bfrange`) when the
 * font has one; else, for simple fonts, WinAnsi (the standard 14 fonts' usual encoding, a
 * superset of ASCII) with the font's `/Differences` applied by glyph name. A composite (CID)
 * font without a ToUnicode map cannot be decoded: using it throws `PdfTextError`, never garbage.
 */
import type { PdfDocument } from './document.ts';
import {
  asDict,
  asName,
  asStream,
  asString,
  isOperator,
  type PdfDict,
  PdfParser,
  PdfTextError,
  type PdfValue,
} from './objects.ts';
import { BASE, glyphText } from './glyphs.ts';

/** Glyphs decoded, and how many of them had no Unicode value. */
export interface GlyphCount {
  glyphs: number;
  unknown: number;
}

export interface FontDecoder {
  decode(bytes: Uint8Array, count: GlyphCount): string;
}

const codeOf = (bytes: Uint8Array) => bytes.reduce((v, b) => v * 256 + b, 0);

function utf16be(bytes: Uint8Array): string {
  let out = '';
  for (let i = 0; i + 1 < bytes.length; i += 2) {
    out += String.fromCharCode(bytes[i]! * 256 + bytes[i + 1]!);
  }
  return out;
}

interface CMap {
  /** Code lengths in bytes the codespace allows, shortest first. */
  lengths: number[];
  ranges: Array<{ length: number; lo: number; hi: number }>;
  chars: Map<string, string>;
  bfranges: Array<{ length: number; lo: number; hi: number; dst: PdfValue }>;
}

/** The `bfchar` / `bfrange` / codespace entries of a ToUnicode CMap. */
export function parseCMap(data: Uint8Array): CMap {
  const cmap: CMap = { lengths: [], ranges: [], chars: new Map(), bfranges: [] };
  const parser = new PdfParser(data);
  let operands: PdfValue[] = [];
  for (let v = parser.next(); v !== undefined; v = parser.next()) {
    if (!isOperator(v)) {
      if (operands.length < 100_000) operands.push(v);
      continue;
    }
    if (v.op === 'endcodespacerange') {
      for (let i = 0; i + 1 < operands.length; i += 2) {
        const lo = asString(operands[i]);
        const hi = asString(operands[i + 1]);
        if (!lo || !hi || lo.length === 0 || lo.length > 4) continue;
        cmap.ranges.push({ length: lo.length, lo: codeOf(lo), hi: codeOf(hi) });
      }
    } else if (v.op === 'endbfchar') {
      for (let i = 0; i + 1 < operands.length; i += 2) {
        const src = asString(operands[i]);
        const dst = asString(operands[i + 1]);
        if (src && dst) cmap.chars.set(`${src.length}:${codeOf(src)}`, utf16be(dst));
      }
    } else if (v.op === 'endbfrange') {
      for (let i = 0; i + 2 < operands.length; i += 3) {
        const lo = asString(operands[i]);
        const hi = asString(operands[i + 1]);
        if (!lo || !hi) continue;
        cmap.bfranges.push({
          length: lo.length,
          lo: codeOf(lo),
          hi: codeOf(hi),
          dst: operands[i + 2]!,
        });
      }
    }
    operands = [];
  }
  const lengths = new Set(cmap.ranges.map((r) => r.length));
  cmap.lengths = [...lengths].sort((a, b) => a - b);
  return cmap;
}

function lookup(cmap: CMap, length: number, code: number): string | undefined {
  const hit = cmap.chars.get(`${length}:${code}`);
  if (hit !== undefined) return hit;
  for (const r of cmap.bfranges) {
    if (r.length !== length || code < r.lo || code > r.hi) continue;
    if (Array.isArray(r.dst)) {
      const s = asString(r.dst[code - r.lo]);
      return s ? utf16be(s) : undefined;
    }
    const base = asString(r.dst);
    if (!base || base.length < 2) return undefined;
    // The range's offset is added to the last UTF-16 unit of the destination.
    const text = utf16be(base);
    const last = text.charCodeAt(text.length - 1) + (code - r.lo);
    return text.slice(0, -1) + String.fromCharCode(last & 0xffff);
  }
  return undefined;
}

/** The length of the code starting at `bytes[i]`, from the CMap's codespace ranges. */
function codeLength(cmap: CMap, bytes: Uint8Array, i: number, fallback: number): number {
  for (const length of cmap.lengths) {
    if (i + length > bytes.length) break;
    const code = codeOf(bytes.subarray(i, i + length));
    if (cmap.ranges.some((r) => r.length === length && code >= r.lo && code <= r.hi)) {
      return length;
    }
  }
  return cmap.lengths.length === 1 ? cmap.lengths[0]! : fallback;
}

function cmapDecoder(cmap: CMap, width: number, base?: string[]): FontDecoder {
  return {
    decode(bytes, count) {
      let out = '';
      for (let i = 0; i < bytes.length;) {
        const length = Math.max(1, codeLength(cmap, bytes, i, width));
        const code = codeOf(bytes.subarray(i, i + length));
        i += length;
        count.glyphs++;
        const text = lookup(cmap, length, code) ?? (length === 1 ? base?.[code] : undefined);
        if (text === undefined || text === '\uFFFF') count.unknown++;
        else out += text;
      }
      return out;
    },
  };
}

function simpleTable(doc: PdfDocument, font: PdfDict): string[] {
  const table = [...BASE];
  const encoding = asDict(doc.resolve(font.map.get('Encoding')));
  const differences = doc.resolve(encoding?.map.get('Differences'));
  if (!Array.isArray(differences)) return table;
  let code = 0;
  for (const entry of differences) {
    if (typeof entry === 'number') code = entry;
    else {
      const name = asName(entry);
      // A glyph name with no known Unicode value decodes as unknown (counted, not guessed).
      if (name !== undefined && code >= 0 && code < 256) table[code] = glyphText(name) ?? '\uFFFF';
      code++;
    }
  }
  return table;
}

/** The decoder of one font dictionary. */
export async function loadFont(doc: PdfDocument, font: PdfDict): Promise<FontDecoder> {
  const subtype = asName(font.map.get('Subtype'));
  let cmap: CMap | undefined;
  const toUnicode = asStream(doc.resolve(font.map.get('ToUnicode')));
  if (toUnicode) cmap = parseCMap(await doc.decode(toUnicode));
  if (subtype === 'Type0') {
    if (cmap) return cmapDecoder(cmap, 2);
    const name = asName(font.map.get('BaseFont')) ?? 'unnamed';
    return {
      decode() {
        throw new PdfTextError(
          `its font "${name}" is a composite (CID) font without a ToUnicode map, so its ` +
            'characters have no known text',
        );
      },
    };
  }
  const table = simpleTable(doc, font);
  if (cmap) return cmapDecoder(cmap, 1, table);
  return {
    decode(bytes, count) {
      let out = '';
      for (const b of bytes) {
        count.glyphs++;
        const text = table[b]!;
        if (text === '\uFFFF') count.unknown++;
        else out += text;
      }
      return out;
    },
  };
}
