/**
 * A minimal baseline JPEG encoder for pictures made of flat 8x8 blocks: each block has one
 * colour, so its DCT has only a DC coefficient and every AC coefficient is zero. The file is
 * YCbCr 4:4:4, quantised by 1 (lossless for flat blocks up to YCbCr rounding), the standard DC
 * luminance Huffman table and a one-symbol AC table (end-of-block). Any JPEG decoder reads it.
 */

/** The standard DC luminance table (ITU T.81 K.3): code lengths 1..16, then the categories. */
const DC_BITS = [0, 1, 5, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0];
const DC_VALUES = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11];
/** One AC symbol, 0x00 (end of block), coded as the single bit `0`. */
const AC_BITS = [1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
const AC_VALUES = [0x00];

/** Canonical Huffman codes of a table: symbol -> [code, length]. */
function huffmanCodes(bits: readonly number[], values: readonly number[]) {
  const codes = new Map<number, [number, number]>();
  let code = 0;
  let k = 0;
  for (let length = 1; length <= 16; length++) {
    for (let i = 0; i < (bits[length - 1] as number); i++) {
      codes.set(values[k++] as number, [code++, length]);
    }
    code <<= 1;
  }
  return codes;
}
const DC_CODES = huffmanCodes(DC_BITS, DC_VALUES);
const EOB = huffmanCodes(AC_BITS, AC_VALUES).get(0) as [number, number];

class BitWriter {
  readonly bytes: number[] = [];
  #acc = 0;
  #count = 0;
  write(value: number, length: number) {
    for (let i = length - 1; i >= 0; i--) {
      this.#acc = (this.#acc << 1) | ((value >> i) & 1);
      if (++this.#count === 8) this.#flush();
    }
  }
  #flush() {
    this.bytes.push(this.#acc);
    if (this.#acc === 0xff) this.bytes.push(0x00); // byte stuffing
    this.#acc = 0;
    this.#count = 0;
  }
  /** Pads the last byte with 1 bits. */
  end() {
    while (this.#count !== 0) this.write(1, 1);
  }
}

function segment(marker: number, payload: readonly number[]): number[] {
  const length = payload.length + 2;
  return [0xff, marker, length >> 8, length & 0xff, ...payload];
}

const clampByte = (v: number) => Math.max(0, Math.min(255, Math.round(v)));

/**
 * Encodes a picture of `blocksWide` x `blocksHigh` flat 8x8 blocks; `colour(bx, by)` gives each
 * block's RGB. The picture is `8 * blocksWide` x `8 * blocksHigh` pixels.
 */
export function encodeBlockJpeg(
  grid: { blocksWide: number; blocksHigh: number },
  colour: (bx: number, by: number) => readonly [number, number, number],
): Uint8Array {
  const { blocksWide, blocksHigh } = grid;
  const width = blocksWide * 8;
  const height = blocksHigh * 8;
  const out: number[] = [0xff, 0xd8]; // SOI
  out.push(...segment(0xe0, [0x4a, 0x46, 0x49, 0x46, 0, 1, 1, 0, 0, 1, 0, 1, 0, 0])); // JFIF 1.1
  out.push(...segment(0xdb, [0x00, ...new Array<number>(64).fill(1)])); // quantisation table 0: all 1
  out.push(...segment(0xc0, [
    8,
    height >> 8,
    height & 0xff,
    width >> 8,
    width & 0xff,
    3,
    ...[1, 2, 3].flatMap((id) => [id, 0x11, 0]), // Y, Cb, Cr: no subsampling, table 0
  ]));
  out.push(...segment(0xc4, [0x00, ...DC_BITS, ...DC_VALUES, 0x10, ...AC_BITS, ...AC_VALUES]));
  out.push(...segment(0xda, [3, 1, 0x00, 2, 0x00, 3, 0x00, 0, 63, 0])); // all on tables 0/0
  const bits = new BitWriter();
  const previous = [0, 0, 0];
  for (let by = 0; by < blocksHigh; by++) {
    for (let bx = 0; bx < blocksWide; bx++) {
      const [r, g, b] = colour(bx, by);
      const ycc = [
        clampByte(0.299 * r + 0.587 * g + 0.114 * b),
        clampByte(128 - 0.168736 * r - 0.331264 * g + 0.5 * b),
        clampByte(128 + 0.5 * r - 0.418688 * g - 0.081312 * b),
      ];
      for (let c = 0; c < 3; c++) {
        // A flat block's DC coefficient is 8 x (value - 128).
        const dc = 8 * ((ycc[c] as number) - 128);
        const diff = dc - (previous[c] as number);
        previous[c] = dc;
        const magnitude = Math.abs(diff);
        const category = magnitude === 0 ? 0 : 32 - Math.clz32(magnitude);
        const [code, length] = DC_CODES.get(category) as [number, number];
        bits.write(code, length);
        if (category > 0) {
          // Negative differences are sent as their ones' complement in `category` bits.
          bits.write(diff > 0 ? diff : diff + (1 << category) - 1, category);
        }
        bits.write(EOB[0], EOB[1]);
      }
    }
  }
  bits.end();
  out.push(...bits.bytes, 0xff, 0xd9); // EOI
  return new Uint8Array(out);
}
