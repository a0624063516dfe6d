/**
 * Image and video generation (frontend reference §4.5-4.6): OpenAI's `CreateImageRequest` /
 * `ImagesResponse`, and Dynamo's `NvCreateVideoRequest` / `NvVideosResponse`. Unknown top-level
 * fields are kept (the OpenAI SDKs' `extra_body` lands there) and reach the worker nested under
 * `extra_args.media_passthrough`, as Dynamo's frontend sends them.
 */
import { z } from 'zod';
import { intBetween, u32, u64Id } from './_fields.ts';

/** `nvext` of image and video requests: diffusion knobs, plus the routing pin. */
export const MediaNvExtSchema = z.looseObject({
  annotations: z.array(z.string()).nullish().describe('Out-of-band SSE events: request_id'),
  backend_instance_id: u64Id().nullish().describe('Pin routing to this worker instance.'),
  negative_prompt: z.string().nullish(),
  num_inference_steps: u32().nullish().describe('Denoising steps.'),
  guidance_scale: z.number().nullish().describe('Classifier-free guidance scale.'),
  seed: z.number().int().nullish().describe('Random seed; the same seed gives the same output.'),
  fps: intBetween(1, 240).nullish().describe('Videos: frames per second.'),
  num_frames: intBetween(1, 10_000).nullish().describe(
    'Videos: frames to generate (overrides fps x seconds).',
  ),
}).meta({ id: 'MediaNvExt', description: 'NVIDIA extensions of image and video requests' });

const ImageModel = z.string().describe(
  'A served model (`dall-e-2`, `gpt-image-1`, ... are just names here); "diffusion" when omitted.',
);

export const ImageGenerationRequestSchema = z.looseObject({
  prompt: z.string().min(1, { error: 'prompt must not be empty' }),
  model: ImageModel.nullish(),
  n: intBetween(1, 10).nullish(),
  quality: z.enum(['standard', 'hd', 'low', 'medium', 'high', 'auto']).nullish(),
  response_format: z.enum(['url', 'b64_json']).nullish(),
  output_format: z.enum(['png', 'jpeg', 'webp']).nullish(),
  output_compression: intBetween(0, 100).nullish(),
  stream: z.boolean().nullish().describe('Accepted; the answer is always one JSON body.'),
  partial_images: intBetween(0, 3).nullish(),
  size: z.string().nullish().describe('`WxH`, e.g. `1024x1024`, or `auto`.'),
  moderation: z.enum(['low', 'auto']).nullish(),
  background: z.enum(['transparent', 'opaque', 'auto']).nullish(),
  style: z.enum(['vivid', 'natural']).nullish(),
  user: z.string().nullish(),
  input_reference: z.string().nullish().describe(
    'An image (URL or data URL) that guides generation (image-to-image).',
  ),
  nvext: MediaNvExtSchema.nullish(),
}).meta({
  id: 'CreateImageRequest',
  description: 'OpenAI image generation request; unknown fields are passed to the worker.',
});
export type ImageGenerationRequest = z.output<typeof ImageGenerationRequestSchema>;

export const ImageSchema = z.looseObject({
  b64_json: z.string().optional(),
  url: z.string().optional(),
  revised_prompt: z.string().optional(),
}).meta({ id: 'Image' });

export const ImagesResponseSchema = z.looseObject({
  created: z.number().int(),
  data: z.array(ImageSchema),
  background: z.enum(['transparent', 'opaque']).optional(),
  output_format: z.enum(['png', 'webp', 'jpeg']).optional(),
  quality: z.enum(['low', 'medium', 'high']).optional(),
  size: z.string().optional(),
  usage: z.looseObject({}).optional(),
}).meta({ id: 'ImagesResponse' });
export type ImagesResponse = z.output<typeof ImagesResponseSchema>;

export const VideoGenerationRequestSchema = z.looseObject({
  prompt: z.string().min(1, { error: 'prompt must not be empty' }),
  model: z.string().min(1),
  input_reference: z.string().nullish().describe('An image that guides generation (I2V).'),
  seconds: intBetween(1, 3600).nullish().describe('Clip duration.'),
  size: z.string().nullish().describe('`WxH`; the worker decides when omitted.'),
  user: z.string().nullish(),
  response_format: z.enum(['url', 'b64_json']).nullish(),
  output_format: z.string().nullish().describe('Container hint (`mp4`, `mjpeg`, ...).'),
  stream: z.boolean().nullish().describe(
    'Stream progress chunks as SSE, ending in [DONE] (`/v1/videos*` without `/stream`).',
  ),
  nvext: MediaNvExtSchema.nullish(),
}).meta({
  id: 'CreateVideoRequest',
  description: "Dynamo's video generation request; unknown fields are passed to the worker.",
});
export type VideoGenerationRequest = z.output<typeof VideoGenerationRequestSchema>;

export const VideoDataSchema = z.looseObject({
  url: z.string().optional(),
  b64_json: z.string().optional(),
  output_format: z.string().optional().describe('Container of this item (`mjpeg`, `jpeg`, ...).'),
  fps: z.number().int().optional(),
}).meta({ id: 'VideoData' });

export const VideosResponseSchema = z.looseObject({
  id: z.string(),
  object: z.literal('video'),
  model: z.string(),
  status: z.string().describe('`completed`, `in_progress` or `failed`.'),
  progress: z.number().int().describe('Percent, 0-100.'),
  created: z.number().int(),
  data: z.array(VideoDataSchema),
  error: z.string().optional(),
  inference_time_s: z.number().optional(),
}).meta({ id: 'VideosResponse' });
export type VideosResponse = z.output<typeof VideosResponseSchema>;

/** The typed fields of each request; anything else is the worker's passthrough. */
const IMAGE_FIELDS = new Set(Object.keys(ImageGenerationRequestSchema.shape));
const VIDEO_FIELDS = new Set(Object.keys(VideoGenerationRequestSchema.shape));

/**
 * The body a worker receives: the typed fields at the top level (`model` the served name), and
 * unknown top-level fields under `extra_args.media_passthrough` (Dynamo's `nest_passthrough`).
 */
export function mediaWorkerBody(
  request: Record<string, unknown>,
  options: { kind: 'image' | 'video'; model: string; overrides?: Record<string, unknown> },
): Record<string, unknown> {
  const typed = options.kind === 'image' ? IMAGE_FIELDS : VIDEO_FIELDS;
  const body: Record<string, unknown> = {};
  const passthrough: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(request)) {
    if (value === undefined || value === null) continue;
    if (typed.has(key)) body[key] = value;
    else passthrough[key] = value;
  }
  Object.assign(body, options.overrides ?? {}, { model: options.model });
  if (Object.keys(passthrough).length > 0) body.extra_args = { media_passthrough: passthrough };
  return body;
}
