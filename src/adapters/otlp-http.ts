/**
 * A small OTLP/HTTP JSON span exporter (`POST {endpoint}/v1/traces`), batching spans: a batch
 * goes when it reaches `maxBatch` spans or `delayMs` after its first span, and `close()` sends
 * what is left. Hand-written rather than the OpenTelemetry JS SDK: the SDK's Node exporters
 * lean on `node:http` internals and its provider/processor stack costs far more per request than
 * the handful of spans a request needs here (docs/observability.md says what was measured); this
 * uses only `fetch`, which all three runtimes share.
 *
 * Configured as OpenTelemetry's exporters are: `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` (the full
 * URL) or `OTEL_EXPORTER_OTLP_ENDPOINT` (`/v1/traces` appended), `OTEL_EXPORTER_OTLP_HEADERS`
 * (`k=v,k2=v2`, values URL-encoded), `OTEL_SERVICE_NAME` (default `switchboard`).
 */
import type { SpanExporter, SpanKind, SpanRecord } from '../core/tracing.ts';

const KIND: Record<SpanKind, number> = { internal: 1, server: 2, client: 3 };

export interface OtlpHttpExporterOptions {
  /** The traces URL, e.g. `http://collector:4318/v1/traces`. */
  url: string;
  headers?: Record<string, string>;
  serviceName?: string;
  /** Spans per request. @default 256 */
  maxBatch?: number;
  /** How long a span may wait for its batch. @default 1000 */
  delayMs?: number;
  /** Spans held while the collector is slow; newer ones are dropped past it. @default 8192 */
  maxQueue?: number;
  /** Export failures (logged, never thrown). @default ignored */
  onError?: (error: unknown) => void;
  /** @default globalThis.fetch */
  fetch?: typeof fetch;
}

export interface OtlpHttpExporter extends SpanExporter {
  /** Sends everything queued now; resolves when the collector answered. */
  flush(): Promise<void>;
  /** Flushes, then stops. */
  close(): Promise<void>;
}

/** Reads the OTel exporter variables; undefined when no endpoint is set (tracing off). */
export function otlpOptionsFromEnv(
  env: Readonly<Record<string, string | undefined>>,
): Omit<OtlpHttpExporterOptions, 'onError'> | undefined {
  const traces = env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT?.trim();
  const base = env.OTEL_EXPORTER_OTLP_ENDPOINT?.trim();
  const url = traces || (base ? `${base.replace(/\/+$/, '')}/v1/traces` : undefined);
  if (!url || env.OTEL_SDK_DISABLED === 'true' || env.OTEL_TRACES_EXPORTER === 'none') {
    return undefined;
  }
  const headers: Record<string, string> = {};
  const raw = env.OTEL_EXPORTER_OTLP_TRACES_HEADERS ?? env.OTEL_EXPORTER_OTLP_HEADERS ?? '';
  for (const pair of raw.split(',')) {
    const at = pair.indexOf('=');
    if (at <= 0) continue;
    headers[decodeURIComponent(pair.slice(0, at).trim())] = decodeURIComponent(
      pair.slice(at + 1).trim(),
    );
  }
  return { url, headers, serviceName: env.OTEL_SERVICE_NAME?.trim() || 'switchboard' };
}

/** Epoch milliseconds as decimal nanoseconds (microsecond precision), without a BigInt. */
function nanos(ms: number): string {
  let whole = Math.floor(ms);
  let micros = Math.round((ms - whole) * 1000);
  if (micros === 1000) {
    whole++;
    micros = 0;
  }
  return `${whole}${String(micros).padStart(3, '0')}000`;
}

const attribute = (key: string, value: string | number | boolean) => ({
  key,
  value: typeof value === 'string'
    ? { stringValue: value }
    : typeof value === 'boolean'
    ? { boolValue: value }
    : Number.isInteger(value)
    ? { intValue: String(value) }
    : { doubleValue: value },
});

/** The OTLP JSON body of `spans` (ids as hex, times as decimal nanosecond strings). */
export function otlpTraceBody(spans: readonly SpanRecord[], serviceName: string): unknown {
  return {
    resourceSpans: [{
      resource: { attributes: [attribute('service.name', serviceName)] },
      scopeSpans: [{
        scope: { name: 'switchboard', version: '0.1.0' },
        spans: spans.map((s) => ({
          traceId: s.traceId,
          spanId: s.spanId,
          ...(s.parentSpanId ? { parentSpanId: s.parentSpanId } : {}),
          name: s.name,
          kind: KIND[s.kind],
          startTimeUnixNano: nanos(s.startMs),
          endTimeUnixNano: nanos(s.endMs),
          attributes: Object.entries(s.attributes).map(([k, v]) => attribute(k, v)),
          status: s.error !== undefined ? { code: 2, message: s.error } : { code: 1 },
        })),
      }],
    }],
  };
}

export function createOtlpHttpExporter(options: OtlpHttpExporterOptions): OtlpHttpExporter {
  const maxBatch = options.maxBatch ?? 256;
  const delayMs = options.delayMs ?? 1000;
  const maxQueue = options.maxQueue ?? 8192;
  const onError = options.onError ?? (() => {});
  const doFetch = options.fetch ?? globalThis.fetch;
  const serviceName = options.serviceName ?? 'switchboard';
  let queue: SpanRecord[] = [];
  let timer: ReturnType<typeof setTimeout> | undefined;
  let closed = false;
  const sending = new Set<Promise<void>>();

  const send = (spans: SpanRecord[]): Promise<void> => {
    const work = (async () => {
      try {
        const response = await doFetch(options.url, {
          method: 'POST',
          headers: { 'content-type': 'application/json', ...options.headers },
          body: JSON.stringify(otlpTraceBody(spans, serviceName)),
        });
        await response.body?.cancel();
        if (!response.ok) {
          onError(new Error(`OTLP collector answered ${response.status} at ${options.url}`));
        }
      } catch (error) {
        onError(error);
      }
    })();
    sending.add(work);
    void work.finally(() => sending.delete(work));
    return work;
  };

  const drain = (): Promise<void> => {
    if (timer !== undefined) clearTimeout(timer);
    timer = undefined;
    const works: Promise<void>[] = [];
    while (queue.length > 0) works.push(send(queue.splice(0, maxBatch)));
    return Promise.all(works).then(() => {});
  };

  return {
    export(span) {
      if (closed || queue.length >= maxQueue) return;
      queue.push(span);
      if (queue.length >= maxBatch) void drain();
      else if (timer === undefined) {
        timer = setTimeout(() => void drain(), delayMs);
        // A pending batch must not keep the process alive (Deno and Node; Bun ignores it).
        (timer as { unref?: () => void }).unref?.();
      }
    },
    async flush() {
      await drain();
      await Promise.all([...sending]);
    },
    async close() {
      if (closed) return;
      await this.flush();
      closed = true;
      queue = [];
    },
  };
}
