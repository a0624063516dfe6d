/**
 * Stream filters (ISO 32000-1 §7.4) the text extractor needs: FlateDecode through the web
 * standard `DecompressionStream('deflate')` (Node, Bun, Deno and browsers alike), ASCIIHexDecode
 * and ASCII85Decode. Every decoded byte counts against one budget per document, so a small file
 * that inflates to gigabytes stops early. Other filters (LZW, predictors, image codecs) are
 * refused by name.
 */
import {
  asDict,
  asName,
  type PdfDict,
  type PdfStream,
  PdfTextError,
  type PdfValue,
} from './objects.ts';

/** Decoded bytes left for the whole document. */
export interface InflateBudget {
  left: number;
}

async function inflate(data: Uint8Array, budget: InflateBudget): Promise<Uint8Array> {
  const source = new ReadableStream<BufferSource>({
    start(controller) {
      controller.enqueue(data as Uint8Array<ArrayBuffer>);
      controller.close();
    },
  });
  const reader = source.pipeThrough(new DecompressionStream('deflate')).getReader();
  const chunks: Uint8Array[] = [];
  let total = 0;
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      total += value.length;
      if (total > budget.left) {
        await reader.cancel().catch(() => {});
        throw new PdfTextError('it decompresses to more than the size limit');
      }
      chunks.push(value);
    }
  } catch (error) {
    if (error instanceof PdfTextError) throw error;
    // A truncated or trailing-garbage stream: keep what inflated, as PDF readers do.
    if (total === 0) throw new PdfTextError('a compressed stream is corrupt');
  }
  budget.left -= total;
  const out = new Uint8Array(total);
  let at = 0;
  for (const chunk of chunks) {
    out.set(chunk, at);
    at += chunk.length;
  }
  return out;
}

function asciiHex(data: Uint8Array): Uint8Array {
  const out: number[] = [];
  let half = -1;
  for (const c of data) {
    if (c === 0x3e) break;
    const v = c >= 0x30 && c <= 0x39
      ? c - 0x30
      : c >= 0x41 && c <= 0x46
      ? c - 0x37
      : c >= 0x61 && c <= 0x66
      ? c - 0x57
      : -1;
    if (v < 0) continue;
    if (half < 0) half = v;
    else {
      out.push(half * 16 + v);
      half = -1;
    }
  }
  if (half >= 0) out.push(half * 16);
  return new Uint8Array(out);
}

function ascii85(data: Uint8Array): Uint8Array {
  const out: number[] = [];
  const group: number[] = [];
  const flush = (n: number) => {
    while (group.length < 5) group.push(84); // pad with 'u'
    let v = 0;
    for (const g of group) v = v * 85 + g;
    const bytes = [(v >>> 24) & 255, (v >>> 16) & 255, (v >>> 8) & 255, v & 255];
    out.push(...bytes.slice(0, n));
    group.length = 0;
  };
  for (const c of data) {
    if (c === 0x7e) break; // ~> ends the data
    if (c === 0x7a && group.length === 0) out.push(0, 0, 0, 0);
    else if (c >= 0x21 && c <= 0x75) {
      group.push(c - 0x21);
      if (group.length === 5) flush(4);
    } else if (c > 0x20) throw new PdfTextError('an ASCII85 stream is corrupt');
  }
  if (group.length > 1) flush(group.length - 1);
  return new Uint8Array(out);
}

function listOf(v: PdfValue | undefined): PdfValue[] {
  return Array.isArray(v) ? v : v === undefined || v === null ? [] : [v];
}

/** Whether a filter's parameters ask for a predictor (PNG or TIFF differencing after Flate). */
function predictor(parms: PdfDict | undefined): number {
  const p = parms?.map.get('Predictor');
  return typeof p === 'number' ? p : 1;
}

/**
 * The decoded bytes of `stream`. `resolve` turns references in its dictionary into values.
 * Throws `PdfTextError` for a filter it does not decode or data it cannot.
 */
export async function decodeStream(
  stream: PdfStream,
  options: { budget: InflateBudget; resolve: (v: PdfValue | undefined) => PdfValue | undefined },
): Promise<Uint8Array> {
  const { resolve, budget } = options;
  const filters = listOf(resolve(stream.dict.map.get('Filter')));
  const parms = listOf(resolve(stream.dict.map.get('DecodeParms')));
  let data = stream.raw;
  for (let i = 0; i < filters.length; i++) {
    const name = asName(resolve(filters[i]));
    if (name === 'FlateDecode' || name === 'Fl') {
      if (predictor(asDict(resolve(parms[i]))) > 1) {
        throw new PdfTextError('a stream uses a predictor, which is not supported');
      }
      data = await inflate(data, budget);
    } else if (name === 'ASCIIHexDecode' || name === 'AHx') data = asciiHex(data);
    else if (name === 'ASCII85Decode' || name === 'A85') data = ascii85(data);
    else {throw new PdfTextError(
        `a stream uses the ${name ?? 'unknown'} filter, which is not supported`,
      );}
  }
  return data;
}
