import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createOpenAIPlaneClient } from './openai.ts';

test('the OpenAI plane passes W3C trace context (traceparent, tracestate) to the server, nothing else of the client', async () => {
  const seen: Record<string, string>[] = [];
  const fakeFetch = ((_url: string, init: RequestInit) => {
    seen.push({ ...(init.headers as Record<string, string>) });
    return Promise.resolve(
      new Response('data: {"choices":[]}\n\ndata: [DONE]\n\n', {
        headers: { 'content-type': 'text/event-stream' },
      }),
    );
  }) as typeof fetch;
  const client = createOpenAIPlaneClient({ fetch: fakeFetch });
  const traceparent = '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01';
  const items = await client.send({ openai: 'http://engine:8000/v1' }, {
    id: 'r1',
    headers: { traceparent, tracestate: 'a=1', 'x-request-id': 'r1', authorization: 'secret' },
    body: { path: 'chat/completions', request: { model: 'm', messages: [] } },
  }, { signal: new AbortController().signal });
  for await (const _ of items) { /* drain */ }
  assert.deepEqual(seen, [{
    'content-type': 'application/json',
    'x-request-id': 'r1',
    traceparent,
    tracestate: 'a=1',
  }]);

  await client.send({ openai: 'http://engine:8000/v1' }, {
    id: 'r2',
    headers: {},
    body: { path: 'chat/completions', request: { model: 'm', messages: [] } },
  }, { signal: new AbortController().signal });
  assert.deepEqual(seen[1], { 'content-type': 'application/json', 'x-request-id': 'r2' });
});
