import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { parseTraceparent, type SpanRecord, startRequestTrace } from './tracing.ts';

const CLIENT = '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01';

function clocks() {
  let mono = 100;
  return {
    now: () => 1_700_000_000_000 + (mono - 100),
    monotonic: () => mono,
    advance: (ms: number) => {
      mono += ms;
    },
  };
}

describe('tracing', () => {
  test('parseTraceparent() reads W3C trace context and refuses malformed or all-zero ids', () => {
    assert.deepEqual(parseTraceparent(CLIENT), {
      traceId: '0af7651916cd43dd8448eb211c80319c',
      spanId: 'b7ad6b7169203331',
      sampled: true,
    });
    assert.equal(parseTraceparent(CLIENT.replace(/-01$/, '-00'))?.sampled, false);
    for (
      const bad of [
        undefined,
        '',
        'garbage',
        '00-00000000000000000000000000000000-b7ad6b7169203331-01',
        '00-0af7651916cd43dd8448eb211c80319c-0000000000000000-01',
        'ff-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01',
        '00-0af7651916cd43dd8448eb211c80319-b7ad6b7169203331-01',
      ]
    ) {
      assert.equal(parseTraceparent(bad), undefined, String(bad));
    }
  });

  test('startRequestTrace() is undefined without an exporter (tracing off costs nothing)', () => {
    const c = clocks();
    assert.equal(startRequestTrace(undefined, { name: 'x', ...c }), undefined);
  });

  test("a request trace continues the client's trace, its stages are children, the worker gets the request span as parent", () => {
    const spans: SpanRecord[] = [];
    const c = clocks();
    const trace = startRequestTrace({ export: (s) => spans.push(s) }, {
      traceparent: CLIENT,
      name: 'chat_completions',
      attributes: { 'gen_ai.request.model': 'm' },
      ...c,
    });
    assert.ok(trace);
    assert.equal(trace.traceId, '0af7651916cd43dd8448eb211c80319c');
    const [, traceId, spanId] = trace.traceparent.split('-');
    assert.equal(traceId, trace.traceId);
    assert.notEqual(spanId, 'b7ad6b7169203331');
    trace.stage('preprocess', 100, 102);
    c.advance(10);
    trace.end('internal');
    trace.end();
    trace.stage('stream', 100, 110);
    assert.equal(spans.length, 2, 'nothing after the end, and one end');
    const [pre, root] = spans as [SpanRecord, SpanRecord];
    assert.equal(root.name, 'chat_completions');
    assert.equal(root.kind, 'server');
    assert.equal(root.spanId, spanId);
    assert.equal(root.parentSpanId, 'b7ad6b7169203331');
    assert.equal(root.error, 'internal');
    assert.equal(root.endMs - root.startMs, 10);
    assert.equal(root.attributes['gen_ai.request.model'], 'm');
    assert.equal(pre.parentSpanId, spanId);
    assert.equal(pre.traceId, trace.traceId);
    assert.equal(pre.startMs, 1_700_000_000_000);
    assert.equal(pre.endMs - pre.startMs, 2);
  });

  test('without a client trace a new one starts; an unsampled client trace is not recorded', () => {
    const spans: SpanRecord[] = [];
    const c = clocks();
    const exporter = { export: (s: SpanRecord) => spans.push(s) };
    const fresh = startRequestTrace(exporter, { name: 'x', ...c });
    assert.match(fresh?.traceparent ?? '', /^00-[0-9a-f]{32}-[0-9a-f]{16}-01$/);
    fresh?.end();
    assert.equal(spans[0]?.parentSpanId, undefined);
    assert.equal(
      startRequestTrace(exporter, { name: 'x', traceparent: CLIENT.replace(/-01$/, '-00'), ...c }),
      undefined,
    );
  });
});
