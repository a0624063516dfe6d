import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { createRoute } from '@hono/zod-openapi';
import type { Context } from 'hono';
import { testApp } from '../../tests/helpers/app.ts';
import { ServiceUnavailableError } from '../core/errors.ts';
import { sseResponse } from './sse.ts';
import type { AppEnv, RouteModule, RouteOptions } from './types.ts';

/** A route whose stream sends one chunk, then fails. */
function failingStream(surface: RouteOptions['surface']): RouteModule {
  return {
    route: createRoute({ method: 'get', path: '/s', responses: {} }),
    options: { surface },
    handler: (c: Context<AppEnv>) =>
      sseResponse(
        c,
        (async function* () {
          yield { type: 'first' };
          throw new ServiceUnavailableError('Worker "w" went away');
        })(),
        {
          eventOf: (e) => (e as { type: string }).type,
          onDisconnect: () => {},
          onEnd: () => {},
        },
      ),
  } as unknown as RouteModule;
}

describe('sseResponse()', () => {
  test('an Anthropic stream that fails ends with one `event: error` frame and no [DONE]', async () => {
    const { app } = testApp({ routes: [failingStream('anthropic')] });
    const text = await (await app.request('/s')).text();
    assert.equal(
      text,
      'event: first\ndata: {"type":"first"}\n\n' +
        'event: error\ndata: {"type":"error","error":{"type":"overloaded_error",' +
        '"message":"Worker \\"w\\" went away"}}\n\n',
    );
  });

  test('an OpenAI stream that fails ends with an unnamed error frame', async () => {
    const { app } = testApp({ routes: [failingStream('openai')] });
    const text = await (await app.request('/s')).text();
    assert.match(text, /\n\ndata: \{"error":\{"message":"Worker \\"w\\" went away"/);
    assert.doesNotMatch(text, /event: error|\[DONE\]/);
  });

  test('chunks already there go out as one piece; a chunk still coming waits for the next pull', async () => {
    const { app } = testApp({
      routes: [{
        route: createRoute({ method: 'get', path: '/s', responses: {} }),
        options: { surface: 'openai' },
        handler: (c: Context<AppEnv>) =>
          sseResponse(
            c,
            (async function* () {
              yield { n: 1 };
              yield { n: 2 };
              yield { n: 3 };
              await new Promise((resolve) => setTimeout(resolve, 20));
              yield { n: 4 };
            })(),
            { onDisconnect: () => {}, onEnd: () => {} },
          ),
      } as unknown as RouteModule],
    });
    const response = await app.request('/s');
    const reader = response.body!.getReader();
    const pieces: string[] = [];
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      pieces.push(new TextDecoder().decode(value));
    }
    assert.equal(
      pieces.join(''),
      'data: {"n":1}\n\ndata: {"n":2}\n\ndata: {"n":3}\n\ndata: {"n":4}\n\ndata: [DONE]\n\n',
    );
    assert.deepEqual(pieces, [
      'data: {"n":1}\n\ndata: {"n":2}\n\ndata: {"n":3}\n\n',
      'data: {"n":4}\n\ndata: [DONE]\n\n',
    ]);
  });
});
