/**
 * The simulated worker's image and video modes (`--images`, `--videos`): small pictures derived
 * from the prompt, the seed (`nvext.seed`, else `--seed`) and the picture's index, so the same
 * request always gets the same bytes, on every runtime.
 *
 * - Images are PNGs (8-bit RGB, stored deflate) of the requested `size` scaled down so the long
 *   side is at most 64 pixels: a diagonal gradient between two colours under a checkerboard.
 * - Videos are motion JPEG: frames of flat 8x8 blocks (a fixed coloured background and one white
 *   block moving along it), each a baseline JPEG. The whole video (`output_format: "mjpeg"`) is
 *   the frames concatenated, which `ffmpeg -f mjpeg` and VLC play; streamed, one frame per item.
 */
import type { Clock } from '../../core/clock.ts';
import type { EndpointHandler } from '../../core/plane/types.ts';
import { createRandom, mixSeeds, type Random } from '../engine/random.ts';
import { encodeBlockJpeg } from './jpeg.ts';
import { encodePng } from './png.ts';

/** The long side of every picture, in pixels. */
export const MAX_SIDE = 64;

export interface MediaModeOptions {
  /** `--seed`, used when the request has no `nvext.seed`. */
  seed: number;
  clock: Clock;
  /** Simulated time per image or frame, in ms (before `--speedup-ratio`). @default 40 */
  stepMs?: number;
  /** `--speedup-ratio`. @default 1 */
  speedupRatio?: number;
}

/** `"WxH"` scaled down to at most `MAX_SIDE` on its long side; `fallback` when absent or `auto`. */
export function pictureSize(
  size: unknown,
  fallback: { width: number; height: number },
): { width: number; height: number } {
  const given = typeof size === 'string' && size !== 'auto';
  const match = given ? /^\s*(\d+)\s*[xX]\s*(\d+)\s*$/.exec(size) : null;
  let width = match ? Number(match[1]) : fallback.width;
  let height = match ? Number(match[2]) : fallback.height;
  if ((given && !match) || !(width > 0 && height > 0)) {
    throw new Error(`Invalid request: size "${String(size)}" is not WxH`);
  }
  const scale = Math.min(1, MAX_SIDE / Math.max(width, height));
  width = Math.max(1, Math.round(width * scale));
  height = Math.max(1, Math.round(height * scale));
  return { width, height };
}

function textSeed(text: string): number {
  let h = 0x811c9dc5; // FNV-1a over UTF-16 code units
  for (let i = 0; i < text.length; i++) h = Math.imul(h ^ text.charCodeAt(i), 0x01000193) >>> 0;
  return h;
}

/** The PRNG of picture `index` of a request. */
export function pictureRandom(prompt: string, seed: number, index: number): Random {
  return createRandom(mixSeeds([textSeed(prompt), seed, index]));
}

const colourOf = (random: Random): [number, number, number] => [
  Math.floor(random() * 256),
  Math.floor(random() * 256),
  Math.floor(random() * 256),
];

/** The RGB pixels of image `index`: a diagonal gradient from one colour to another, checkered. */
export function imagePixels(
  request: { prompt: string; seed: number; index: number },
  size: { width: number; height: number },
): Uint8Array {
  const random = pictureRandom(request.prompt, request.seed, request.index);
  const from = colourOf(random);
  const to = colourOf(random);
  const cell = 2 + Math.floor(random() * 7);
  const { width, height } = size;
  const rgb = new Uint8Array(width * height * 3);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const t = (x + y) / Math.max(1, width + height - 2);
      const dim = (Math.floor(x / cell) + Math.floor(y / cell)) % 2 === 0 ? 1 : 0.8;
      for (let c = 0; c < 3; c++) {
        rgb[(y * width + x) * 3 + c] = Math.round(
          ((from[c] as number) * (1 - t) + (to[c] as number) * t) * dim,
        );
      }
    }
  }
  return rgb;
}

/** The PNG of image `index`. */
export function imagePng(
  request: { prompt: string; seed: number; index: number },
  size: { width: number; height: number },
): Uint8Array {
  return encodePng(imagePixels(request, size), size);
}

/** The JPEG of frame `frame` of `frames` of a video: a background of blocks, one moving block. */
export function videoFrameJpeg(
  request: { prompt: string; seed: number; frame: number },
  size: { width: number; height: number },
): Uint8Array {
  const blocksWide = Math.max(1, Math.ceil(size.width / 8));
  const blocksHigh = Math.max(1, Math.ceil(size.height / 8));
  const random = pictureRandom(request.prompt, request.seed, 0);
  const palette = Array.from({ length: 4 }, () => colourOf(random));
  const background = Array.from(
    { length: blocksWide * blocksHigh },
    () => palette[Math.floor(random() * palette.length)] as [number, number, number],
  );
  const row = Math.floor(random() * blocksHigh);
  const moving = request.frame % blocksWide;
  return encodeBlockJpeg(
    { blocksWide, blocksHigh },
    (bx, by) =>
      bx === moving && by === row
        ? [255, 255, 255]
        : background[by * blocksWide + bx] as [number, number, number],
  );
}

export function toBase64(bytes: Uint8Array): string {
  let binary = '';
  for (let i = 0; i < bytes.length; i += 0x8000) {
    binary += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  }
  return btoa(binary);
}

interface MediaRequest {
  prompt: string;
  n?: number;
  size?: string;
  seconds?: number;
  response_format?: string;
  stream?: boolean;
  nvext?: { seed?: number; fps?: number; num_frames?: number };
}

function parseRequest(body: unknown): MediaRequest {
  const request = (body ?? {}) as Record<string, unknown>;
  if (typeof request.prompt !== 'string' || request.prompt === '') {
    throw new Error('Invalid request: prompt is required');
  }
  const nvext = (request.nvext ?? {}) as Record<string, unknown>;
  const int = (v: unknown) => typeof v === 'number' && Number.isInteger(v) ? v : undefined;
  return {
    prompt: request.prompt,
    n: int(request.n),
    size: typeof request.size === 'string' ? request.size : undefined,
    seconds: int(request.seconds),
    response_format: typeof request.response_format === 'string'
      ? request.response_format
      : undefined,
    stream: request.stream === true,
    nvext: { seed: int(nvext.seed), fps: int(nvext.fps), num_frames: int(nvext.num_frames) },
  };
}

const stepOf = (options: MediaModeOptions) => (options.stepMs ?? 40) / (options.speedupRatio ?? 1);

/** What an `Images` worker answers: one `NvImagesResponse` with `n` PNGs. */
export function imageHandler(options: MediaModeOptions): EndpointHandler {
  return async function* (body, context) {
    const request = parseRequest(body);
    const seed = request.nvext?.seed ?? options.seed;
    const size = pictureSize(request.size, { width: MAX_SIDE, height: MAX_SIDE });
    const n = request.n ?? 1;
    const data = [];
    for (let index = 0; index < n; index++) {
      await options.clock.sleep(stepOf(options), context.signal);
      if (context.signal.aborted) return;
      const b64 = toBase64(imagePng({ prompt: request.prompt, seed, index }, size));
      data.push(
        request.response_format === 'b64_json'
          ? { b64_json: b64 }
          : { url: `data:image/png;base64,${b64}` },
      );
    }
    yield {
      data: {
        created: Math.floor(Date.now() / 1000),
        data,
        output_format: 'png',
      },
    };
  };
}

/** Frames of a video request: `nvext.num_frames`, else `seconds` (1) x `nvext.fps` (8); at most 96. */
export function frameCount(request: { seconds?: number; nvext?: MediaRequest['nvext'] }): number {
  const frames = request.nvext?.num_frames ??
    (request.seconds ?? 1) * (request.nvext?.fps ?? DEFAULT_FPS);
  return Math.max(1, Math.min(96, frames));
}
export const DEFAULT_FPS = 8;

/**
 * What a `Videos` worker answers. Unary: one `NvVideosResponse` with the whole motion-JPEG video.
 * With `stream: true`: one item per frame (`output_format: "jpeg"`, base64), progress rising to
 * 100 and `status: "completed"` on the last.
 */
export function videoHandler(options: MediaModeOptions): EndpointHandler {
  return async function* (body, context) {
    const request = parseRequest(body);
    const seed = request.nvext?.seed ?? options.seed;
    const size = pictureSize(request.size, { width: 832, height: 480 });
    const fps = request.nvext?.fps ?? DEFAULT_FPS;
    const count = frameCount(request);
    const created = Math.floor(Date.now() / 1000);
    const started = options.clock.now();
    const frames: Uint8Array[] = [];
    for (let frame = 0; frame < count; frame++) {
      await options.clock.sleep(stepOf(options), context.signal);
      if (context.signal.aborted) return;
      const jpeg = videoFrameJpeg({ prompt: request.prompt, seed, frame }, size);
      if (request.stream) {
        const last = frame === count - 1;
        yield {
          data: {
            object: 'video',
            created,
            status: last ? 'completed' : 'in_progress',
            progress: Math.round(((frame + 1) / count) * 100),
            data: [{ b64_json: toBase64(jpeg), output_format: 'jpeg', fps }],
            ...(last ? { inference_time_s: (options.clock.now() - started) / 1000 } : {}),
          },
        };
      } else {
        frames.push(jpeg);
      }
    }
    if (request.stream) return;
    const video = new Uint8Array(frames.reduce((n, f) => n + f.length, 0));
    let at = 0;
    for (const f of frames) {
      video.set(f, at);
      at += f.length;
    }
    const b64 = toBase64(video);
    yield {
      data: {
        object: 'video',
        created,
        status: 'completed',
        progress: 100,
        data: [
          request.response_format === 'b64_json'
            ? { b64_json: b64, output_format: 'mjpeg', fps }
            : { url: `data:video/x-motion-jpeg;base64,${b64}`, output_format: 'mjpeg', fps },
        ],
        inference_time_s: (options.clock.now() - started) / 1000,
      },
    };
  };
}
