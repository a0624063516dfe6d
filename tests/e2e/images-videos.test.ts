/**
 * Images and videos end to end: simulated workers started with `--images` and `--videos`
 * register the `Images` / `Videos` model types; the frontend routes `/v1/images/generations`,
 * `/v1/videos*` (JSON and SSE) and `/v1/videos*\/stream` (motion JPEG) to them.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { inflateSync } from 'node:zlib';
import OpenAI from 'openai';
import { loadOpenAISpec } from '../helpers/openai-spec.ts';
import { currentRuntime } from '../helpers/process.ts';
import {
  errorBody,
  metricValue,
  MODEL,
  readSse,
  type Stack,
  startStack,
} from '../helpers/stack.ts';
import { waitFor } from '../helpers/wait.ts';

const IMAGES = 'image-model';
const VIDEOS = 'video-model';

interface ImagesAnswer {
  created: number;
  data: Array<{ b64_json?: string; url?: string }>;
  output_format?: string;
}

interface VideoAnswer {
  id: string;
  object: string;
  model: string;
  status: string;
  progress: number;
  created: number;
  data: Array<{ b64_json?: string; url?: string; output_format?: string; fps?: number }>;
}

const bytesOf = (base64: string) => Uint8Array.from(atob(base64), (c) => c.charCodeAt(0));

/** Width, height and raw pixel bytes of one of our PNGs, every chunk CRC-framed as PNG says. */
function readPng(bytes: Uint8Array): { width: number; height: number; pixels: Uint8Array } {
  assert.deepEqual([...bytes.subarray(0, 8)], [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let at = 8;
  let width = 0;
  let height = 0;
  const idat: Uint8Array[] = [];
  const types: string[] = [];
  while (at < bytes.length) {
    const length = view.getUint32(at);
    const type = String.fromCharCode(...bytes.subarray(at + 4, at + 8));
    types.push(type);
    const data = bytes.subarray(at + 8, at + 8 + length);
    if (type === 'IHDR') {
      width = view.getUint32(at + 8);
      height = view.getUint32(at + 12);
      assert.deepEqual([...data.subarray(8)], [8, 2, 0, 0, 0], '8-bit RGB');
    }
    if (type === 'IDAT') idat.push(data);
    at += 12 + length;
  }
  assert.deepEqual(types, ['IHDR', 'IDAT', 'IEND']);
  const raw = inflateSync(Buffer.concat(idat));
  assert.equal(raw.length, height * (1 + width * 3), 'one filter byte and RGB per row');
  return { width, height, pixels: new Uint8Array(raw) };
}

/** The JPEG files in a motion-JPEG byte stream, with each one's frame size (SOF0). */
function readJpegs(bytes: Uint8Array): Array<{ width: number; height: number }> {
  const frames: Array<{ width: number; height: number }> = [];
  let at = 0;
  while (at < bytes.length) {
    assert.deepEqual([bytes[at], bytes[at + 1]], [0xff, 0xd8], `SOI at ${at}`);
    let end = at + 2;
    let size = { width: 0, height: 0 };
    // Walk the segments up to the scan, then find EOI (0xFF 0xD9; entropy data stuffs 0xFF 0x00).
    for (;;) {
      const marker = bytes[end + 1] as number;
      const length = ((bytes[end + 2] as number) << 8) | (bytes[end + 3] as number);
      if (marker === 0xc0) {
        size = {
          height: ((bytes[end + 5] as number) << 8) | (bytes[end + 6] as number),
          width: ((bytes[end + 7] as number) << 8) | (bytes[end + 8] as number),
        };
      }
      end += 2 + length;
      if (marker === 0xda) break;
    }
    while (!(bytes[end] === 0xff && bytes[end + 1] === 0xd9)) end++;
    frames.push(size);
    at = end + 2;
  }
  return frames;
}

/** The parts of a `multipart/x-mixed-replace; boundary=frame` body. */
function readParts(
  body: Uint8Array,
): { parts: Array<{ type: string; bytes: Uint8Array }>; closed: boolean } {
  const text = new TextDecoder('latin1').decode(body);
  const parts: Array<{ type: string; bytes: Uint8Array }> = [];
  let at = 0;
  for (;;) {
    if (text.startsWith('--frame--\r\n', at)) return { parts, closed: true };
    if (!text.startsWith('--frame\r\n', at)) return { parts, closed: false };
    const headerEnd = text.indexOf('\r\n\r\n', at);
    const headers = text.slice(at, headerEnd);
    const type = /Content-Type: (.+)/.exec(headers)?.[1]?.trim() ?? '';
    const length = Number(/Content-Length: (\d+)/.exec(headers)?.[1]);
    const start = headerEnd + 4;
    parts.push({ type, bytes: body.subarray(start, start + length) });
    assert.equal(text.slice(start + length, start + length + 2), '\r\n');
    at = start + length + 2;
  }
}

const spec = loadOpenAISpec();

describe(`images and videos on ${currentRuntime()}`, () => {
  let stack: Stack;
  before(async () => {
    stack = await startStack({
      mockers: [
        {},
        { name: IMAGES, args: ['--images'] },
        // 40 ms per frame, so a long clip is still running when the client leaves.
        { name: VIDEOS, args: ['--videos'], speedup: 1 },
      ],
    });
  });
  after(async () => {
    await stack?.close();
  });

  const images = async (body: Record<string, unknown>) => {
    const res = await stack.post('/v1/images/generations', { model: IMAGES, ...body });
    const text = await res.text();
    assert.equal(res.status, 200, text);
    const answer = JSON.parse(text) as ImagesAnswer;
    assert.deepEqual(spec.validateAgainstSpec('ImagesResponse', answer), []);
    return answer;
  };

  test('both models are listed', async () => {
    const res = await fetch(`${stack.url}/v1/models`);
    const ids = ((await res.json()) as { data: Array<{ id: string }> }).data.map((m) => m.id);
    assert.ok(ids.includes(IMAGES) && ids.includes(VIDEOS), ids.join(', '));
  });

  test('images: n base64 PNGs of the size scaled to 64 pixels, deterministic per prompt and seed', async () => {
    const request = {
      prompt: 'a red fox in snow',
      n: 2,
      size: '256x128',
      response_format: 'b64_json',
      nvext: { seed: 7 },
    };
    const answer = await images(request);
    assert.equal(answer.data.length, 2);
    assert.equal(answer.output_format, 'png');
    assert.ok(Math.abs(answer.created - Date.now() / 1000) < 60);
    const [a, b] = answer.data.map((d) => readPng(bytesOf(d.b64_json ?? ''))) as [
      ReturnType<typeof readPng>,
      ReturnType<typeof readPng>,
    ];
    assert.deepEqual([a.width, a.height], [64, 32]);
    assert.notDeepEqual(a.pixels, b.pixels, 'each image of a request differs');

    const again = await images(request);
    assert.deepEqual(again.data, answer.data, 'the same request gives the same images');
    const reseeded = await images({ ...request, n: 1, nvext: { seed: 8 } });
    assert.notEqual(reseeded.data[0]?.b64_json, answer.data[0]?.b64_json);
  });

  test('images: the default answer is a data URL; unknown fields are accepted', async () => {
    const answer = await images({ prompt: 'a lighthouse', custom_knob: { steps: 3 } });
    assert.equal(answer.data.length, 1);
    const url = answer.data[0]?.url ?? '';
    assert.match(url, /^data:image\/png;base64,/);
    const png = readPng(bytesOf(url.slice(url.indexOf(',') + 1)));
    assert.deepEqual([png.width, png.height], [64, 64]);
  });

  test('images: the OpenAI SDK reads the answer', async () => {
    const client = new OpenAI({ apiKey: 'unused', baseURL: `${stack.url}/v1`, maxRetries: 0 });
    const answer = await client.images.generate({
      model: IMAGES,
      prompt: 'a teapot',
      response_format: 'b64_json',
    });
    assert.equal(answer.data?.length, 1);
    readPng(bytesOf(answer.data?.[0]?.b64_json ?? ''));
  });

  test('images: errors are 400, 404 and OpenAI-shaped', async () => {
    const cases: Array<[Record<string, unknown>, number, RegExp]> = [
      [{ model: MODEL, prompt: 'x' }, 400, /does not generate images/],
      [{ model: VIDEOS, prompt: 'x' }, 400, /does not generate images/],
      [{ model: 'nope', prompt: 'x' }, 404, /nope/],
      [{ prompt: 'x' }, 404, /"diffusion"/],
      [{ model: IMAGES, prompt: 'x', n: 11 }, 400, /n/],
      [{ model: IMAGES }, 400, /prompt/],
      [{ model: IMAGES, prompt: 'x', size: 'huge' }, 400, /size "huge"/],
    ];
    for (const [body, status, message] of cases) {
      const res = await stack.post('/v1/images/generations', body);
      assert.equal(res.status, status, JSON.stringify(body));
      const error = await errorBody(res);
      assert.match(error.error.message, message, JSON.stringify(body));
    }
  });

  for (const path of ['/v1/videos', '/v1/videos/generations']) {
    test(`videos: ${path} answers one motion-JPEG clip`, async () => {
      const res = await stack.post(path, {
        model: VIDEOS,
        prompt: 'waves',
        size: '128x64',
        response_format: 'b64_json',
        nvext: { num_frames: 5, seed: 3 },
      });
      const text = await res.text();
      assert.equal(res.status, 200, text);
      const answer = JSON.parse(text) as VideoAnswer;
      assert.equal(answer.object, 'video');
      assert.equal(answer.model, VIDEOS);
      assert.equal(answer.status, 'completed');
      assert.equal(answer.progress, 100);
      assert.match(answer.id, /^video-/);
      assert.equal(answer.data.length, 1);
      assert.equal(answer.data[0]?.output_format, 'mjpeg');
      const frames = readJpegs(bytesOf(answer.data[0]?.b64_json ?? ''));
      assert.deepEqual(frames, Array(5).fill({ width: 64, height: 32 }));
    });
  }

  test('videos: stream true sends one SSE chunk per frame, progress to 100, then [DONE]', async () => {
    const res = await stack.post('/v1/videos/generations', {
      model: VIDEOS,
      prompt: 'a comet',
      seconds: 1,
      stream: true,
      nvext: { fps: 4 },
    });
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type') ?? '', /text\/event-stream/);
    const { chunks, done } = await readSse<VideoAnswer>(res);
    assert.ok(done);
    assert.equal(chunks.length, 4);
    assert.deepEqual(chunks.map((c) => c.progress), [25, 50, 75, 100]);
    assert.deepEqual(chunks.map((c) => c.status), [
      'in_progress',
      'in_progress',
      'in_progress',
      'completed',
    ]);
    for (const chunk of chunks) {
      assert.equal(chunk.model, VIDEOS);
      assert.equal(chunk.object, 'video');
      assert.equal(readJpegs(bytesOf(chunk.data[0]?.b64_json ?? '')).length, 1);
    }
  });

  for (const path of ['/v1/videos/generations/stream', '/v1/videos/stream']) {
    test(`videos: ${path} streams motion JPEG, one part per frame`, async () => {
      const res = await stack.post(path, {
        model: VIDEOS,
        prompt: 'a comet',
        nvext: { num_frames: 3, seed: 1 },
      });
      assert.equal(res.status, 200);
      assert.equal(res.headers.get('content-type'), 'multipart/x-mixed-replace; boundary=frame');
      const { parts, closed } = readParts(new Uint8Array(await res.arrayBuffer()));
      assert.ok(closed, 'ends with the closing boundary');
      assert.equal(parts.length, 3);
      for (const part of parts) {
        assert.equal(part.type, 'image/jpeg');
        assert.deepEqual(readJpegs(part.bytes), [{ width: 64, height: 40 }]);
      }
      assert.notDeepEqual(parts[0]?.bytes, parts[1]?.bytes, 'frames move');
    });
  }

  test('videos: a client leaving the motion-JPEG stream cancels the worker', async () => {
    const controller = new AbortController();
    const res = await fetch(`${stack.url}/v1/videos/generations/stream`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: VIDEOS, prompt: 'a long clip', nvext: { num_frames: 96 } }),
      signal: controller.signal,
    });
    assert.equal(res.status, 200);
    const reader = (res.body as ReadableStream<Uint8Array>).getReader();
    const first = await reader.read();
    assert.ok(!first.done && first.value.length > 0, 'the first frame arrived');
    const worker = stack.mockers[2]?.workers[0];
    assert.equal(worker?.activeRequests(), 1, 'the video worker is generating');
    controller.abort();
    await reader.cancel().catch(() => {});
    await waitFor(() => worker?.activeRequests() === 0, {
      timeoutMs: 10_000,
      what: 'the video worker idle after the abort',
    });
    await waitFor(
      async () =>
        metricValue(await stack.metrics(), 'dynamo_frontend_inflight_requests', {
          model: VIDEOS,
        }) ===
          0,
      { timeoutMs: 10_000, what: 'nothing in flight after the abort' },
    );
  });

  test('videos: refusals keep their status on the streamed routes', async () => {
    for (const path of ['/v1/videos', '/v1/videos/generations/stream']) {
      const wrong = await stack.post(path, { model: IMAGES, prompt: 'x', stream: true });
      assert.equal(wrong.status, 400, path);
      assert.match((await errorBody(wrong)).error.message, /does not generate videos/);
      const missing = await stack.post(path, { model: 'nope', prompt: 'x' });
      assert.equal(missing.status, 404, path);
      const invalid = await stack.post(path, { model: VIDEOS, prompt: 'x', size: 'big' });
      assert.equal(invalid.status, 400, path);
      assert.match((await errorBody(invalid)).error.message, /size "big"/);
      const noModel = await stack.post(path, { prompt: 'x' });
      assert.equal(noModel.status, 400, path);
    }
  });

  test('every route is in /openapi.json', async () => {
    const doc = (await (await fetch(`${stack.url}/openapi.json`)).json()) as {
      paths: Record<string, { post?: unknown }>;
    };
    for (
      const path of [
        '/v1/images/generations',
        '/v1/videos',
        '/v1/videos/generations',
        '/v1/videos/stream',
        '/v1/videos/generations/stream',
      ]
    ) {
      assert.ok(doc.paths[path]?.post, path);
    }
  });
});
