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
});
