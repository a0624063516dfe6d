import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  ImageGenerationRequestSchema,
  mediaWorkerBody,
  VideoGenerationRequestSchema,
} from './media.ts';

describe('media requests', () => {
  test('mediaWorkerBody() keeps typed fields on top and nests unknown ones for the worker', () => {
    const request = ImageGenerationRequestSchema.parse({
      prompt: 'a cat',
      n: 2,
      model: 'dall-e-3',
      input_reference: 'data:image/png;base64,AA==',
      nvext: { seed: 7 },
      think_mode: true,
      extra_args: { x: 1 },
      size: null,
    });
    assert.deepEqual(mediaWorkerBody(request, { kind: 'image', model: 'served' }), {
      prompt: 'a cat',
      n: 2,
      model: 'served',
      input_reference: 'data:image/png;base64,AA==',
      nvext: { seed: 7 },
      extra_args: { media_passthrough: { think_mode: true, extra_args: { x: 1 } } },
    });
  });

  test('mediaWorkerBody() applies overrides and adds no extra_args when nothing is unknown', () => {
    const request = VideoGenerationRequestSchema.parse({ prompt: 'p', model: 'm', seconds: 2 });
    assert.deepEqual(
      mediaWorkerBody(request, { kind: 'video', model: 'm', overrides: { stream: true } }),
      { prompt: 'p', model: 'm', seconds: 2, stream: true },
    );
  });

  test('the schemas refuse what the reference refuses', () => {
    assert.equal(ImageGenerationRequestSchema.safeParse({ prompt: '' }).success, false);
    assert.equal(ImageGenerationRequestSchema.safeParse({ prompt: 'x', n: 0 }).success, false);
    assert.equal(
      ImageGenerationRequestSchema.safeParse({ prompt: 'x', response_format: 'png' }).success,
      false,
    );
    assert.equal(VideoGenerationRequestSchema.safeParse({ prompt: 'x' }).success, false);
    assert.equal(ImageGenerationRequestSchema.safeParse({ prompt: 'x' }).success, true);
  });
});
