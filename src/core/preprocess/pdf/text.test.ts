import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { bytesOf, deflate, pdfOf, textPdf } from '../../../../tests/helpers/pdf.ts';
import { extractPdfText, PdfTextError } from './text.ts';

/** The OpenResponses compliance suite's fixture: PDF 1.1, no cross-reference table. */
const SUITE_FIXTURE =
  'JVBERi0xLjEKMSAwIG9iago8PCAvVHlwZSAvQ2F0YWxvZyAvUGFnZXMgMiAwIFIgPj4KZW5kb2JqCjIgMCBvYmoKPDwgL1R5cGUgL1BhZ2VzIC9LaWRzIFszIDAgUl0gL0NvdW50IDEgPj4KZW5kb2JqCjMgMCBvYmoKPDwgL1R5cGUgL1BhZ2UgL1BhcmVudCAyIDAgUiAvTWVkaWFCb3ggWzAgMCAzMDAgMTQ0XSAvQ29udGVudHMgNCAwIFIgL1Jlc291cmNlcyA8PCAvRm9udCA8PCAvRjEgNSAwIFIgPj4gPj4gPj4KZW5kb2JqCjQgMCBvYmoKPDwgL0xlbmd0aCA3NCA+PgpzdHJlYW0KQlQKL0YxIDEyIFRmCjcyIDcyIFRkCihUaXRsZTogT3BlblJlc3BvbnNlcyBGaWxlIElucHV0IEZpeHR1cmUpIFRqCkVUCmVuZHN0cmVhbQplbmRvYmoKNSAwIG9iago8PCAvVHlwZSAvRm9udCAvU3VidHlwZSAvVHlwZTEgL0Jhc2VGb250IC9IZWx2ZXRpY2EgPj4KZW5kb2JqCnRyYWlsZXIKPDwgL1Jvb3QgMSAwIFIgPj4KJSVFT0Y=';

const pageText = async (content: string, options: { font?: string } = {}) =>
  await extractPdfText(await textPdf([content], options));

function concat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const part of parts) {
    out.set(part, at);
    at += part.length;
  }
  return out;
}

async function refuses(bytes: Uint8Array | Promise<Uint8Array>, reason: RegExp) {
  await assert.rejects(extractPdfText(await bytes), (e: unknown) => {
    assert.ok(e instanceof PdfTextError, `expected a PdfTextError, got ${String(e)}`);
    assert.match(e.message, reason);
    return true;
  });
}

describe('extractPdfText()', () => {
  test('reads the OpenResponses fixture, which has no cross-reference table', async () => {
    const bytes = Uint8Array.from(atob(SUITE_FIXTURE), (c) => c.charCodeAt(0));
    assert.equal(await extractPdfText(bytes), 'Title: OpenResponses File Input Fixture');
  });

  test('literal strings: escapes, balanced parentheses, octal codes, line continuations', async () => {
    const text = await pageText(
      'BT /F1 12 Tf (a\\(b\\)c\\\\d (nested) e) Tj T* (\\101\\102C \\0533 tab\\tend) Tj ' +
        'T* (split \\\nline) Tj ET',
    );
    assert.equal(text, 'a(b)c\\d (nested) e\nABC +3 tab\tend\nsplit line');
  });

  test('hex strings, with spaces and an odd final digit', async () => {
    assert.equal(await pageText('BT /F1 12 Tf <48 65 6C6c6F> Tj <4142 4> Tj ET'), 'HelloAB@');
  });

  test('TJ arrays: kerning numbers are dropped, a wide gap is a space', async () => {
    const text = await pageText('BT /F1 12 Tf [(Hel) -20 (lo) -300 (W) 15 <6F726C64> (!)] TJ ET');
    assert.equal(text, 'Hello World!');
  });

  test('line breaks: Td/TD to another line, T*, \', " and ET; Td along the line is a space', async () => {
    const text = await pageText(
      'BT /F1 12 Tf 72 700 Td (one) Tj 40 0 Td (two) Tj 0 -14 Td (three) Tj 0 -14 TD (four) Tj ' +
        '(five) \' 1 2 (six) " ET BT (seven) Tj ET',
    );
    assert.equal(text, 'one two\nthree\nfour\nfive\nsix\nseven');
  });

  test('a FlateDecode content stream (made with CompressionStream) is inflated', async () => {
    const bytes = await textPdf(['BT /F1 12 Tf (Compressed text) Tj ET'], { flate: true });
    assert.equal(await extractPdfText(bytes), 'Compressed text');
  });

  test('pages follow the page tree, separated by a blank line', async () => {
    // Page objects in reverse order of the tree's Kids: the tree decides.
    const bytes = pdfOf([
      '<< /Type /Catalog /Pages 2 0 R >>',
      '<< /Type /Pages /Kids [5 0 R 3 0 R] /Count 2 /Resources << /Font << /F1 7 0 R >> >> >>',
      '<< /Type /Page /Parent 2 0 R /Contents 4 0 R >>',
      { dict: '', data: bytesOf('BT /F1 9 Tf (Page two) Tj ET') },
      '<< /Type /Page /Parent 2 0 R /Contents [6 0 R] >>',
      { dict: '', data: bytesOf('BT /F1 9 Tf (Page one) Tj ET') },
      '<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>',
    ]);
    assert.equal(await extractPdfText(bytes), 'Page one\n\nPage two');
  });

  test('a form XObject drawn with Do is read in place', async () => {
    const form = { dict: '/Type /XObject /Subtype /Form', data: bytesOf('BT (in the form) Tj ET') };
    const bytes = pdfOf([
      '<< /Type /Catalog /Pages 2 0 R >>',
      '<< /Type /Pages /Kids [3 0 R] /Count 1 >>',
      '<< /Type /Page /Contents 4 0 R /Resources << /XObject << /X1 5 0 R >> >> >>',
      { dict: '', data: bytesOf('BT (before) Tj ET /X1 Do BT (after) Tj ET') },
      form,
    ]);
    assert.equal(await extractPdfText(bytes), 'before\nin the form\nafter');
  });

  test('WinAnsi bytes and /Differences glyph names decode to Unicode', async () => {
    const font = '<< /Type /Font /Subtype /Type1 /BaseFont /Times-Roman ' +
      '/Encoding << /Type /Encoding /Differences [1 /fi /uni00E9 /quoteright] >> >>';
    assert.equal(
      await pageText('BT /F1 12 Tf (\\223caf\\351\\224 \\001x \\002 it\\003s) Tj ET', { font }),
      '\u201ccaf\u00e9\u201d fix \u00e9 it\u2019s',
    );
  });

  test('a ToUnicode CMap (bfchar and bfrange) decodes a composite font', async () => {
    const cmap = bytesOf(
      '/CIDInit /ProcSet findresource begin 12 dict begin begincmap\n' +
        '1 begincodespacerange <0000> <FFFF> endcodespacerange\n' +
        '2 beginbfchar <0003> <0020> <0010> <00660069> endbfchar\n' +
        '2 beginbfrange <0024> <003D> <0041> <0044> <0046> [<0061> <0062> <0063>] endbfrange\n' +
        'endcmap CMapName currentdict /CMap defineresource pop end end',
    );
    const bytes = await textPdf(['BT /F1 12 Tf <002B002800460003004400100045> Tj ET'], {
      font: '<< /Type /Font /Subtype /Type0 /BaseFont /ABC+Arial /Encoding /Identity-H ' +
        '/ToUnicode 4 0 R >>',
      extra: [{ dict: '/Filter /FlateDecode', data: await deflate(cmap) }],
    });
    assert.equal(await extractPdfText(bytes), 'HEc afib');
  });

  test('a composite (CID) font without a ToUnicode map is refused, not guessed', async () => {
    const font = '<< /Type /Font /Subtype /Type0 /BaseFont /XYZ+Mincho /Encoding /Identity-H >>';
    await refuses(
      textPdf(['BT /F1 12 Tf <00270048> Tj ET'], { font }),
      /font "XYZ\+Mincho" is a composite \(CID\) font without a ToUnicode map/,
    );
  });

  test('glyph names with no known Unicode value are refused', async () => {
    const font = '<< /Type /Font /Subtype /Type1 /BaseFont /XYZ+CMR10 ' +
      '/Encoding << /Differences [65 /g12 /g13 /g14] >> >>';
    await refuses(
      textPdf(['BT /F1 12 Tf (ABCABC) Tj ET'], { font }),
      /6 of 6 characters no known text/,
    );
  });

  test('malformed input is a PdfTextError, never a crash', async () => {
    await refuses(Promise.resolve(bytesOf('hello, not a pdf')), /not a PDF/);
    await refuses(
      Promise.resolve(bytesOf('%PDF-1.7\n\x00\xff garbage 1 0 obj << /A [')),
      /no objects/,
    );
    await refuses(
      Promise.resolve(bytesOf('%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\n')),
      /no pages/,
    );
    const corrupt = pdfOf([
      '<< /Type /Catalog /Pages 2 0 R >>',
      '<< /Type /Pages /Kids [3 0 R] /Count 1 >>',
      '<< /Type /Page /Contents 4 0 R >>',
      { dict: '/Filter /FlateDecode', data: bytesOf('this is not zlib data at all') },
    ]);
    await refuses(Promise.resolve(corrupt), /compressed stream is corrupt/);
    const lzw = pdfOf([
      '<< /Type /Catalog /Pages 2 0 R >>',
      '<< /Type /Pages /Kids [3 0 R] /Count 1 >>',
      '<< /Type /Page /Contents 4 0 R >>',
      { dict: '/Filter /LZWDecode', data: bytesOf('x') },
    ]);
    await refuses(Promise.resolve(lzw), /LZWDecode filter, which is not supported/);
    // A content stream cut off mid-string keeps the text before it.
    assert.equal(await pageText('BT (kept) Tj ET BT (cut off'), 'kept');
  });

  test('a page without text (a scanned image) is refused', async () => {
    await refuses(textPdf(['q 612 0 0 792 0 0 cm /Im1 Do Q']), /no text to extract/);
  });

  test('an encrypted document is refused', async () => {
    const bytes = bytesOf(
      '%PDF-1.4\n1 0 obj << /Type /Catalog /Pages 2 0 R >> endobj\n' +
        'trailer << /Root 1 0 R /Encrypt << /Filter /Standard >> >>\n%%EOF',
    );
    await refuses(Promise.resolve(bytes), /encrypted/);
  });

  test('a stream that inflates past the budget stops early', async () => {
    const big = 'BT (' + 'A'.repeat(200_000) + ') Tj ET';
    const bytes = await textPdf([big], { flate: true });
    assert.ok(bytes.length < 5_000);
    await assert.rejects(
      extractPdfText(bytes, { maxDecodedBytes: 100_000 }),
      /decompresses to more than the size limit/,
    );
    await assert.rejects(extractPdfText(bytes, { maxChars: 1_000 }), /longer than 1000 characters/);
  });

  test('objects inside an object stream (PDF 1.5) are found', async () => {
    // Objects 2 (the page tree) and 5 (the font) live only in object stream 6.
    const pages = '<< /Type /Pages /Kids [3 0 R] /Count 1 >> ';
    const header = `2 0 5 ${pages.length} `;
    const packed = await deflate(
      bytesOf(header + pages + '<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>'),
    );
    const content = 'BT /F1 1 Tf (From the object stream) Tj ET';
    const bytes = concat(
      bytesOf(
        '%PDF-1.5\n1 0 obj << /Type /Catalog /Pages 2 0 R >> endobj\n' +
          '3 0 obj << /Type /Page /Parent 2 0 R /Contents 4 0 R ' +
          '/Resources << /Font << /F1 5 0 R >> >> >> endobj\n' +
          `4 0 obj << /Length ${content.length} >> stream\n${content}\nendstream endobj\n` +
          `6 0 obj << /Type /ObjStm /N 2 /First ${header.length} /Filter /FlateDecode ` +
          `/Length ${packed.length} >> stream\n`,
      ),
      packed,
      bytesOf('\nendstream endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n'),
    );
    assert.equal(await extractPdfText(bytes), 'From the object stream');
  });
});
