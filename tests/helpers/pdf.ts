/**
 * Small PDFs for tests, built byte by byte: `pdfOf()` writes numbered objects with a
 * cross-reference table and trailer; `textPdf()` makes a document whose pages show the given
 * content streams in Helvetica, optionally FlateDecode-compressed with `CompressionStream`.
 *
 *   const bytes = await textPdf(['BT /F1 12 Tf 72 700 Td (Hello) Tj ET'], { flate: true });
 */

/** An object's body, or a stream: its dictionary entries (without /Length) and its data. */
export type PdfObject = string | { dict: string; data: Uint8Array };

const encoder = new TextEncoder();
/** Bytes of `text` where every character is one byte (Latin-1). */
export const bytesOf = (text: string) => Uint8Array.from(text, (c) => c.charCodeAt(0) & 0xff);

export async function deflate(data: Uint8Array): Promise<Uint8Array> {
  const stream = new Blob([data as Uint8Array<ArrayBuffer>]).stream()
    .pipeThrough(new CompressionStream('deflate'));
  return new Uint8Array(await new Response(stream).arrayBuffer());
}

/** A PDF of `objects` (object i is number i + 1); object 1 must be the catalog. */
export function pdfOf(objects: readonly PdfObject[]): Uint8Array {
  const chunks: Uint8Array[] = [encoder.encode('%PDF-1.4\n%\xe2\xe3\n')];
  let length = chunks[0]!.length;
  const offsets: number[] = [];
  const push = (chunk: Uint8Array) => {
    chunks.push(chunk);
    length += chunk.length;
  };
  objects.forEach((object, i) => {
    offsets.push(length);
    if (typeof object === 'string') {
      push(encoder.encode(`${i + 1} 0 obj\n${object}\nendobj\n`));
    } else {
      push(encoder.encode(`${i + 1} 0 obj\n<< ${object.dict} /Length ${object.data.length} >>\n`));
      push(encoder.encode('stream\n'));
      push(object.data);
      push(encoder.encode('\nendstream\nendobj\n'));
    }
  });
  const xref = length;
  const rows = offsets.map((o) => `${String(o).padStart(10, '0')} 00000 n \n`).join('');
  push(encoder.encode(
    `xref\n0 ${objects.length + 1}\n0000000000 65535 f \n${rows}` +
      `trailer\n<< /Size ${objects.length + 1} /Root 1 0 R >>\nstartxref\n${xref}\n%%EOF\n`,
  ));
  const out = new Uint8Array(length);
  let at = 0;
  for (const chunk of chunks) {
    out.set(chunk, at);
    at += chunk.length;
  }
  return out;
}

/**
 * A document with one page per content stream, font /F1 (Helvetica, or `font`'s dictionary)
 * in every page's resources.
 */
export async function textPdf(
  contents: readonly (string | Uint8Array)[],
  options: { flate?: boolean; font?: string; extra?: readonly PdfObject[] } = {},
): Promise<Uint8Array> {
  const first = 4 + (options.extra?.length ?? 0);
  const kids = contents.map((_, i) => `${first + i * 2} 0 R`).join(' ');
  const objects: PdfObject[] = [
    '<< /Type /Catalog /Pages 2 0 R >>',
    `<< /Type /Pages /Kids [${kids}] /Count ${contents.length} >>`,
    options.font ?? '<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>',
    ...(options.extra ?? []),
  ];
  for (const [i, content] of contents.entries()) {
    const raw = typeof content === 'string' ? bytesOf(content) : content;
    objects.push(
      `<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents ${first + i * 2 + 1} 0 R ` +
        '/Resources << /Font << /F1 3 0 R >> >> >>',
      options.flate
        ? { dict: '/Filter /FlateDecode', data: await deflate(raw) }
        : { dict: '', data: raw },
    );
  }
  return pdfOf(objects);
}
