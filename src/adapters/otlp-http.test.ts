import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { SpanRecord } from '../core/tracing.ts';
import { createOtlpHttpExporter, otlpOptionsFromEnv, otlpTraceBody } from './otlp-http.ts';

const span = (name: string, extra: Partial<SpanRecord> = {}): SpanRecord => ({
  traceId: '0af7651916cd43dd8448eb211c80319c',
  spanId: 'b7ad6b7169203331',
  name,
  kind: 'internal',
  startMs: 1_700_000_000_000.5,
  endMs: 1_700_000_000_002,
  attributes: {},
  ...extra,
});

describe('OTLP/HTTP exporter', () => {
  test('otlpOptionsFromEnv(): off without an endpoint; /v1/traces appended; headers and service name read', () => {
    assert.equal(otlpOptionsFromEnv({}), undefined);
    assert.equal(
      otlpOptionsFromEnv({
        OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4318',
        OTEL_SDK_DISABLED: 'true',
      }),
      undefined,
    );
    assert.deepEqual(
      otlpOptionsFromEnv({
        OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4318/',
        OTEL_EXPORTER_OTLP_HEADERS: 'authorization=Bearer%20x, x-tenant=a',
        OTEL_SERVICE_NAME: 'edge-frontend',
      }),
      {
        url: 'http://c:4318/v1/traces',
        headers: { authorization: 'Bearer x', 'x-tenant': 'a' },
        serviceName: 'edge-frontend',
      },
    );
    assert.equal(
      otlpOptionsFromEnv({
        OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4318',
        OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'http://t:1/custom',
      })?.url,
      'http://t:1/custom',
    );
  });

  test('otlpTraceBody() writes OTLP JSON: hex ids, nanosecond strings, kinds, status, typed attributes', () => {
    const body = otlpTraceBody([
      span('a', {
        kind: 'server',
        parentSpanId: '00f067aa0ba902b7',
        attributes: { s: 'x', i: 3, d: 0.5, b: true },
        error: 'internal',
      }),
    ], 'svc') as {
      resourceSpans: {
        resource: { attributes: unknown[] };
        scopeSpans: { spans: Record<string, unknown>[] }[];
      }[];
    };
    const rs = body.resourceSpans[0];
    assert.deepEqual(rs?.resource.attributes, [{
      key: 'service.name',
      value: { stringValue: 'svc' },
    }]);
    assert.deepEqual(rs?.scopeSpans[0]?.spans[0], {
      traceId: '0af7651916cd43dd8448eb211c80319c',
      spanId: 'b7ad6b7169203331',
      parentSpanId: '00f067aa0ba902b7',
      name: 'a',
      kind: 2,
      startTimeUnixNano: '1700000000000500000',
      endTimeUnixNano: '1700000000002000000',
      attributes: [
        { key: 's', value: { stringValue: 'x' } },
        { key: 'i', value: { intValue: '3' } },
        { key: 'd', value: { doubleValue: 0.5 } },
        { key: 'b', value: { boolValue: true } },
      ],
      status: { code: 2, message: 'internal' },
    });
  });

  test('batches: a full batch goes at once, the rest on flush; a failing collector is reported, not thrown', async () => {
    const posts: { url: string; names: string[] }[] = [];
    let status = 200;
    const fakeFetch = ((url: string, init: RequestInit) => {
      const body = JSON.parse(String(init.body)) as {
        resourceSpans: { scopeSpans: { spans: { name: string }[] }[] }[];
      };
      posts.push({ url, names: body.resourceSpans[0]!.scopeSpans[0]!.spans.map((s) => s.name) });
      return Promise.resolve(new Response('{}', { status }));
    }) as typeof fetch;
    const errors: unknown[] = [];
    const exporter = createOtlpHttpExporter({
      url: 'http://collector/v1/traces',
      maxBatch: 2,
      delayMs: 60_000,
      fetch: fakeFetch,
      onError: (e) => errors.push(e),
    });
    exporter.export(span('1'));
    assert.equal(posts.length, 0, 'held until the batch fills');
    exporter.export(span('2'));
    exporter.export(span('3'));
    await exporter.flush();
    assert.deepEqual(posts, [
      { url: 'http://collector/v1/traces', names: ['1', '2'] },
      { url: 'http://collector/v1/traces', names: ['3'] },
    ]);
    status = 503;
    exporter.export(span('4'));
    await exporter.close();
    assert.equal(errors.length, 1);
    assert.match(String(errors[0]), /503/);
    exporter.export(span('after close'));
    await exporter.flush();
    assert.equal(posts.length, 3);
  });
});
