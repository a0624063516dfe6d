/**
 * The text of a PDF, page by page (ISO 32000-1 §9.4): each page's content streams are run for
 * their text-showing operators (`Tj`, `TJ`, `'`, `"`) with literal and hex strings decoded
 * through the current font; `Td`/`TD` to another line, `T*`, `Tm` to another line and `ET`
 * break lines, and a `TJ` gap wider than a fifth of an em is a space. Form XObjects (`Do`) are
 * run too. Pages are separated by a blank line.
 *
 *   const text = await extractPdfText(bytes, { maxChars: 2_000_000 });
 *
 * Throws `PdfTextError` with a reason a client can act on: not a PDF, encrypted, a filter or font
 * it cannot decode, no text at all (a scanned document), or over a limit. It never returns text
 * it could not decode.
 */
import { openPdf, type PdfDocument } from './document.ts';
import { type FontDecoder, type GlyphCount, loadFont } from './fonts.ts';
import type { InflateBudget } from './filters.ts';
import { winAnsi } from './glyphs.ts';
import {
  asDict,
  asName,
  asStream,
  asString,
  isOperator,
  type PdfDict,
  PdfParser,
  type PdfStream,
  PdfTextError,
  type PdfValue,
} from './objects.ts';

export { PdfTextError } from './objects.ts';

export interface PdfTextOptions {
  /** Bytes the document's streams may decode to and its content may run, in all. @default 64 MiB */
  maxDecodedBytes?: number;
  /** Longest text returned, in characters. @default 2,000,000 */
  maxChars?: number;
}

/** A TJ gap, in thousandths of an em, that reads as a space between words. */
const WORD_GAP = -200;
const MAX_FORM_DEPTH = 8;

class TextOut {
  text = '';
  /** Characters of the pages before this one. */
  before = 0;
  readonly maxChars: number;
  constructor(maxChars: number) {
    this.maxChars = maxChars;
  }
  add(t: string) {
    this.text += t;
    if (this.before + this.text.length > this.maxChars) {
      throw new PdfTextError(`its text is longer than ${this.maxChars} characters`);
    }
  }
  space() {
    if (this.text !== '' && !/\s$/.test(this.text)) this.text += ' ';
  }
  newline() {
    if (this.text !== '' && !this.text.endsWith('\n')) this.text += '\n';
  }
  /** The page's text, and a fresh page. */
  take(): string {
    const text = this.text;
    this.before += text.length;
    this.text = '';
    return text;
  }
}

interface Run {
  doc: PdfDocument;
  budget: InflateBudget;
  fonts: Map<PdfDict, FontDecoder>;
  forms: Map<PdfStream, Uint8Array>;
  count: GlyphCount;
  out: TextOut;
}

/** WinAnsi: what a string shown without a (known) font decodes as. */
const PLAIN: FontDecoder = {
  decode(bytes, count) {
    count.glyphs += bytes.length;
    return winAnsi(bytes);
  },
};

async function fontOf(run: Run, resources: PdfDict | undefined, name: string | undefined) {
  const fonts = asDict(run.doc.resolve(resources?.map.get('Font')));
  const font = asDict(run.doc.resolve(name === undefined ? undefined : fonts?.map.get(name)));
  if (!font) return PLAIN;
  let decoder = run.fonts.get(font);
  if (!decoder) {
    decoder = await loadFont(run.doc, font);
    run.fonts.set(font, decoder);
  }
  return decoder;
}

/** Skips an inline image's data: from after `ID` to the `EI` that ends it. */
function skipInlineImage(parser: PdfParser): void {
  const b = parser.bytes;
  let i = parser.pos + 1;
  const isWhite = (c: number | undefined) =>
    c === undefined || c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09;
  while (i < b.length) {
    if (b[i] === 0x45 && b[i + 1] === 0x49 && isWhite(b[i - 1]) && isWhite(b[i + 2])) break;
    i++;
  }
  parser.pos = i + 2;
}

async function runContent(
  run: Run,
  data: Uint8Array,
  resources: PdfDict | undefined,
  depth: number,
): Promise<void> {
  run.budget.left -= data.length;
  if (run.budget.left < 0) throw new PdfTextError('it is larger than the size limit to read');
  const { out, count } = run;
  const parser = new PdfParser(data);
  let operands: PdfValue[] = [];
  let font = PLAIN;
  let lineY: number | undefined;
  const show = (v: PdfValue | undefined) => {
    const bytes = asString(v);
    if (bytes) out.add(font.decode(bytes, count));
  };
  for (;;) {
    let v;
    try {
      v = parser.next();
    } catch (error) {
      // A damaged content stream: the text read so far stands.
      if (error instanceof PdfTextError) break;
      throw error;
    }
    if (v === undefined) break;
    if (!isOperator(v)) {
      if (operands.length < 4096) operands.push(v);
      continue;
    }
    switch (v.op) {
      case 'ET':
      case 'T*':
        out.newline();
        break;
      case 'Tf':
        font = await fontOf(run, resources, asName(operands[0]));
        break;
      case 'Tj':
        show(operands.at(-1));
        break;
      case "'":
        out.newline();
        show(operands.at(-1));
        break;
      case '"':
        out.newline();
        show(operands[2]);
        break;
      case 'TJ':
        for (const item of Array.isArray(operands[0]) ? operands[0] : []) {
          if (typeof item === 'number') {
            if (item <= WORD_GAP) out.space();
          } else show(item);
        }
        break;
      case 'Td':
      case 'TD': {
        const ty = operands[1];
        if (typeof ty === 'number' && ty !== 0) out.newline();
        else out.space();
        break;
      }
      case 'Tm': {
        const y = operands[5];
        if (typeof y === 'number') {
          if (lineY !== undefined && y !== lineY) out.newline();
          else out.space();
          lineY = y;
        }
        break;
      }
      case 'Do':
        if (depth < MAX_FORM_DEPTH) await runForm(run, resources, asName(operands[0]), depth);
        break;
      case 'ID':
        skipInlineImage(parser);
        break;
    }
    operands = [];
  }
}

async function runForm(
  run: Run,
  resources: PdfDict | undefined,
  name: string | undefined,
  depth: number,
): Promise<void> {
  const xobjects = asDict(run.doc.resolve(resources?.map.get('XObject')));
  const form = asStream(run.doc.resolve(name === undefined ? undefined : xobjects?.map.get(name)));
  if (!form || asName(form.dict.map.get('Subtype')) !== 'Form') return;
  let data = run.forms.get(form);
  if (!data) {
    data = await run.doc.decode(form);
    run.forms.set(form, data);
  }
  const own = asDict(run.doc.resolve(form.dict.map.get('Resources')));
  run.out.newline();
  await runContent(run, data, own ?? resources, depth + 1);
  run.out.newline();
}

// deno-lint-ignore no-control-regex
const CONTROL = /[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f]/g;

function tidy(text: string): string {
  return text.split('\n').map((line) => line.replace(/\s+$/, '')).join('\n')
    .replace(/\n{3,}/g, '\n\n').trim();
}

/** The text of the PDF in `bytes`; see the module comment. */
export async function extractPdfText(
  bytes: Uint8Array,
  options: PdfTextOptions = {},
): Promise<string> {
  const budget = { left: options.maxDecodedBytes ?? 64 * 1024 * 1024 };
  const doc = await openPdf(bytes, budget);
  const pages = await doc.pages();
  if (pages.length === 0) throw new PdfTextError('it has no pages');
  const run: Run = {
    doc,
    budget,
    fonts: new Map(),
    forms: new Map(),
    count: { glyphs: 0, unknown: 0 },
    out: new TextOut(options.maxChars ?? 2_000_000),
  };
  const texts: string[] = [];
  for (const page of pages) {
    for (const content of page.contents) {
      await runContent(run, content, page.resources, 0);
      run.out.newline();
    }
    texts.push(run.out.take());
  }
  const joined = texts.map(tidy).filter((t) => t !== '').join('\n\n');
  const controls = joined.match(CONTROL)?.length ?? 0;
  const bad = run.count.unknown + controls;
  if (bad > 0 && bad > run.count.glyphs * 0.05) {
    throw new PdfTextError(
      `its fonts give ${bad} of ${run.count.glyphs} characters no known text (glyphs without a ` +
        'Unicode mapping)',
    );
  }
  const text = joined.replace(CONTROL, '');
  if (text.trim() === '') {
    throw new PdfTextError('it has no text to extract (its pages may be scanned images)');
  }
  return text;
}
