import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { inflateSync } from 'node:zlib';
import { realClock } from '../../core/clock.ts';
import { encodeBlockJpeg } from './jpeg.ts';
import {
  frameCount,
  imageHandler,
  imagePixels,
  imagePng,
  pictureSize,
  videoFrameJpeg,
  videoHandler,
} from './media.ts';
import { adler32, crc32, encodePng, zlibStored } from './png.ts';

const context = () => ({ id: 'r', headers: {}, signal: new AbortController().signal });
async function items(iterable: AsyncIterable<unknown>) {
  const out: Array<{ data: Record<string, unknown> }> = [];
  for await (const item of iterable) out.push(item as { data: Record<string, unknown> });
  return out;
}

describe('png', () => {
  test('crc32() and adler32() match the published check values', () => {
    const bytes = new TextEncoder().encode('123456789');
    assert.equal(crc32(bytes), 0xcbf43926);
    assert.equal(adler32(new TextEncoder().encode('Wikipedia')), 0x11e60398);
  });

  test('zlibStored() is a zlib stream any inflater reads, across 64 KiB blocks', () => {
    const data = Uint8Array.from({ length: 70_000 }, (_, i) => (i * 31) & 0xff);
    assert.deepEqual(new Uint8Array(inflateSync(zlibStored(data))), data);
    assert.deepEqual(new Uint8Array(inflateSync(zlibStored(new Uint8Array(0)))), new Uint8Array(0));
  });

  test('encodePng() writes the signature, IHDR, IDAT and IEND of an RGB picture', () => {
    const png = encodePng(new Uint8Array(2 * 3 * 3).fill(200), { width: 2, height: 3 });
    assert.deepEqual([...png.subarray(1, 4)], [0x50, 0x4e, 0x47]);
    const view = new DataView(png.buffer);
    assert.deepEqual([view.getUint32(16), view.getUint32(20)], [2, 3]);
    assert.throws(() => encodePng(new Uint8Array(5), { width: 2, height: 3 }), /expected 18/);
  });
});

describe('jpeg', () => {
  test('encodeBlockJpeg() frames SOI, JFIF, DQT, SOF0 (size), DHT, SOS and EOI', () => {
    const jpeg = encodeBlockJpeg({ blocksWide: 3, blocksHigh: 2 }, (x) => [x * 100, 255, 0]);
    assert.deepEqual([...jpeg.subarray(0, 2)], [0xff, 0xd8]);
    assert.deepEqual([...jpeg.subarray(-2)], [0xff, 0xd9]);
    const markers: number[] = [];
    let at = 2;
    for (;;) {
      const marker = jpeg[at + 1] as number;
      markers.push(marker);
      const length = ((jpeg[at + 2] as number) << 8) | (jpeg[at + 3] as number);
      if (marker === 0xc0) {
        assert.deepEqual([...jpeg.subarray(at + 5, at + 9)], [0, 16, 0, 24], '16 high, 24 wide');
      }
      at += 2 + length;
      if (marker === 0xda) break;
    }
    assert.deepEqual(markers, [0xe0, 0xdb, 0xc0, 0xc4, 0xda]);
  });
});

describe('pictures', () => {
  test('pictureSize() scales the long side to 64 and refuses what is not WxH', () => {
    const fallback = { width: 832, height: 480 };
    assert.deepEqual(pictureSize('1024x1024', fallback), { width: 64, height: 64 });
    assert.deepEqual(pictureSize('1536x1024', fallback), { width: 64, height: 43 });
    assert.deepEqual(pictureSize('16x8', fallback), { width: 16, height: 8 });
    assert.deepEqual(pictureSize(undefined, fallback), { width: 64, height: 37 });
    assert.deepEqual(pictureSize('auto', fallback), { width: 64, height: 37 });
    assert.throws(() => pictureSize('big', fallback), /Invalid request: size "big"/);
    assert.throws(() => pictureSize('0x10', fallback), /Invalid request/);
  });

  test('the same prompt, seed and index give the same picture; any change another', () => {
    const size = { width: 16, height: 16 };
    const base = { prompt: 'p', seed: 1, index: 0 };
    assert.deepEqual(imagePng(base, size), imagePng(base, size));
    for (const other of [{ ...base, prompt: 'q' }, { ...base, seed: 2 }, { ...base, index: 1 }]) {
      assert.notDeepEqual(imagePixels(other, size), imagePixels(base, size));
    }
    const frame = { prompt: 'p', seed: 1, frame: 0 };
    assert.deepEqual(videoFrameJpeg(frame, size), videoFrameJpeg(frame, size));
    assert.notDeepEqual(videoFrameJpeg({ ...frame, frame: 1 }, size), videoFrameJpeg(frame, size));
  });

  test('frameCount(): num_frames, else seconds x fps (1 x 8), capped at 96', () => {
    assert.equal(frameCount({}), 8);
    assert.equal(frameCount({ seconds: 2, nvext: { fps: 3 } }), 6);
    assert.equal(frameCount({ seconds: 2, nvext: { num_frames: 5 } }), 5);
    assert.equal(frameCount({ nvext: { num_frames: 1000 } }), 96);
  });
});

describe('handlers', () => {
  const options = { seed: 0, clock: realClock, stepMs: 0 };

  test('imageHandler() answers n images as data URLs, or base64 when asked', async () => {
    const [url] = await items(imageHandler(options)({ prompt: 'a', n: 2 }, context()));
    const data = url?.data.data as Array<{ url?: string }>;
    assert.equal(data.length, 2);
    assert.match(data[0]?.url ?? '', /^data:image\/png;base64,/);
    const [b64] = await items(
      imageHandler(options)({ prompt: 'a', response_format: 'b64_json' }, context()),
    );
    assert.equal(typeof (b64?.data.data as Array<{ b64_json?: string }>)[0]?.b64_json, 'string');
  });

  test('a request without a prompt is refused as invalid', async () => {
    await assert.rejects(items(imageHandler(options)({}, context())), /^Error: Invalid request/);
    await assert.rejects(
      items(videoHandler(options)({ prompt: '' }, context())),
      /Invalid request/,
    );
  });

  test('videoHandler() streams one frame per item, or answers the whole clip', async () => {
    const request = { prompt: 'v', nvext: { num_frames: 3 } };
    const streamed = await items(videoHandler(options)({ ...request, stream: true }, context()));
    assert.deepEqual(streamed.map((i) => i.data.progress), [33, 67, 100]);
    assert.deepEqual(streamed.map((i) => i.data.status), [
      'in_progress',
      'in_progress',
      'completed',
    ]);
    const [whole] = await items(videoHandler(options)(request, context()));
    const entry = (whole?.data.data as Array<{ url?: string; output_format?: string }>)[0];
    assert.equal(entry?.output_format, 'mjpeg');
    assert.match(entry?.url ?? '', /^data:video\/x-motion-jpeg;base64,/);
  });
});
