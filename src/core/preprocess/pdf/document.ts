/**
 * A PDF's objects and pages, for text extraction. The file is scanned for `N G obj` definitions
 * rather than read through its cross-reference table, so files with a missing or wrong table
 * (hand-made fixtures, truncated downloads) still open; a later definition of a number wins, as
 * an incremental update's would. Objects inside object streams (PDF 1.5) are loaded too.
 */
import { decodeStream, type InflateBudget } from './filters.ts';
import {
  asDict,
  asName,
  asRef,
  asStream,
  isOperator,
  latin1,
  type PdfDict,
  PdfParser,
  type PdfStream,
  PdfTextError,
  type PdfValue,
} from './objects.ts';

/** A page: its content streams' decoded bytes (joined) and its resources. */
export interface PdfPage {
  contents: Uint8Array[];
  resources: PdfDict | undefined;
}

export interface PdfDocument {
  /** A value with references followed (a missing object is null). */
  resolve(v: PdfValue | undefined): PdfValue | undefined;
  /** A stream's decoded bytes. */
  decode(stream: PdfStream): Promise<Uint8Array>;
  /** The pages in reading order. */
  pages(): Promise<PdfPage[]>;
}

const MAX_PAGES = 10_000;

function parseObject(text: string, bytes: Uint8Array, at: number): [PdfValue, number] {
  const parser = new PdfParser(bytes, { pos: at, refs: true });
  const value = parser.value();
  const dict = asDict(value);
  const save = parser.pos;
  const keyword = parser.next();
  if (!dict || !isOperator(keyword) || keyword.op !== 'stream') return [value, save];
  // The data starts after the end of line that follows `stream`.
  let start = parser.pos;
  if (bytes[start] === 0x0d) start++;
  if (bytes[start] === 0x0a) start++;
  const length = dict.map.get('Length');
  let end = typeof length === 'number' ? start + length : -1;
  if (end < start || !/^\s*endstream/.test(text.slice(end, end + 32))) {
    end = text.indexOf('endstream', start);
    if (end < 0) throw new PdfTextError('a stream has no end');
    if (bytes[end - 1] === 0x0a) end--;
    if (bytes[end - 1] === 0x0d) end--;
  }
  const stream: PdfStream = { kind: 'stream', dict, raw: bytes.subarray(start, end) };
  return [stream, end + 'endstream'.length];
}

/** Opens `bytes` as a PDF. Throws `PdfTextError` when it is not one, or is encrypted. */
export async function openPdf(bytes: Uint8Array, budget: InflateBudget): Promise<PdfDocument> {
  const text = latin1(bytes);
  if (!text.slice(0, 1024).includes('%PDF-')) throw new PdfTextError('it is not a PDF');
  const objects = new Map<number, PdfValue>();
  const pattern = /(\d+)\s+(\d+)\s+obj\b/g;
  for (let m = pattern.exec(text); m; m = pattern.exec(text)) {
    try {
      const [value, end] = parseObject(text, bytes, m.index + m[0].length);
      objects.set(Number(m[1]), value);
      pattern.lastIndex = end;
    } catch (error) {
      if (!(error instanceof PdfTextError)) throw error;
      // A damaged object is skipped; the scan goes on after its header.
    }
  }
  if (objects.size === 0) throw new PdfTextError('it has no objects');
  const resolve = (v: PdfValue | undefined, seen = 0): PdfValue | undefined => {
    const ref = asRef(v);
    if (!ref) return v;
    if (seen > 32) return null;
    return resolve(objects.get(ref.num) ?? null, seen + 1);
  };
  const decode = (stream: PdfStream) => decodeStream(stream, { budget, resolve });
  // Object streams: their objects join the table unless defined directly.
  for (const value of [...objects.values()]) {
    const stream = asStream(value);
    if (!stream || asName(stream.dict.map.get('Type')) !== 'ObjStm') continue;
    await loadObjectStream(stream, { objects, decode, resolve });
  }
  const trailers = [...text.matchAll(/trailer\s*<</g)];
  const trailer = trailers.length > 0
    ? asDict(new PdfParser(bytes, { pos: trailers.at(-1)!.index + 7, refs: true }).value())
    : undefined;
  const dicts = [...objects.values()].map(asDict);
  const xref = dicts.findLast((d) => asName(d?.map.get('Type')) === 'XRef' && d?.map.has('Root'));
  const catalog = asDict(resolve(trailer?.map.get('Root') ?? xref?.map.get('Root'))) ??
    dicts.find((d) => asName(d?.map.get('Type')) === 'Catalog');
  const encrypted = trailer?.map.has('Encrypt') || xref?.map.has('Encrypt');
  if (encrypted) throw new PdfTextError('it is encrypted');
  return {
    resolve,
    decode,
    pages: () => pagesOf(catalog, { objects, resolve, decode }),
  };
}

async function loadObjectStream(
  stream: PdfStream,
  doc: {
    objects: Map<number, PdfValue>;
    decode: (s: PdfStream) => Promise<Uint8Array>;
    resolve: (v: PdfValue | undefined) => PdfValue | undefined;
  },
): Promise<void> {
  const n = doc.resolve(stream.dict.map.get('N'));
  const first = doc.resolve(stream.dict.map.get('First'));
  if (typeof n !== 'number' || typeof first !== 'number') return;
  let data: Uint8Array;
  try {
    data = await doc.decode(stream);
  } catch (error) {
    if (error instanceof PdfTextError && /size limit/.test(error.message)) throw error;
    return; // an object stream it cannot decode: its objects are missing
  }
  const header = new PdfParser(data);
  for (let i = 0; i < n; i++) {
    const num = header.next();
    const offset = header.next();
    if (typeof num !== 'number' || typeof offset !== 'number') return;
    if (doc.objects.has(num)) continue;
    try {
      doc.objects.set(num, new PdfParser(data, { pos: first + offset, refs: true }).value());
    } catch (error) {
      if (!(error instanceof PdfTextError)) throw error;
    }
  }
}

async function pagesOf(
  catalog: PdfDict | undefined,
  doc: {
    objects: Map<number, PdfValue>;
    resolve: (v: PdfValue | undefined) => PdfValue | undefined;
    decode: (s: PdfStream) => Promise<Uint8Array>;
  },
): Promise<PdfPage[]> {
  const { resolve } = doc;
  const found: Array<{ page: PdfDict; resources: PdfDict | undefined }> = [];
  const seen = new Set<PdfDict>();
  const walk = (node: PdfDict | undefined, inherited: PdfDict | undefined, depth: number) => {
    if (!node || seen.has(node) || depth > 64 || found.length >= MAX_PAGES) return;
    seen.add(node);
    const resources = asDict(resolve(node.map.get('Resources'))) ?? inherited;
    const kids = resolve(node.map.get('Kids'));
    if (Array.isArray(kids)) {
      for (const kid of kids) walk(asDict(resolve(kid)), resources, depth + 1);
    } else if (asName(node.map.get('Type')) !== 'Pages') found.push({ page: node, resources });
  };
  walk(asDict(resolve(catalog?.map.get('Pages'))), undefined, 0);
  if (found.length === 0) {
    // No page tree to follow: every page object, in object-number order.
    const numbers = [...doc.objects.keys()].sort((a, b) => a - b);
    for (const num of numbers) {
      const dict = asDict(doc.objects.get(num));
      if (asName(dict?.map.get('Type')) === 'Page' && dict) {
        found.push({ page: dict, resources: asDict(resolve(dict.map.get('Resources'))) });
      }
    }
  }
  const pages: PdfPage[] = [];
  for (const { page, resources } of found) {
    const contents = resolve(page.map.get('Contents'));
    const streams = (Array.isArray(contents) ? contents : [contents])
      .map((c) => asStream(resolve(c)))
      .filter((s): s is PdfStream => s !== undefined);
    const decoded: Uint8Array[] = [];
    for (const stream of streams) decoded.push(await doc.decode(stream));
    pages.push({ contents: decoded, resources });
  }
  return pages;
}
