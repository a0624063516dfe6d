/**
 * OpenTelemetry-shaped request spans (W3C trace context), recorded only when a `SpanExporter`
 * is configured (`OTEL_EXPORTER_OTLP_ENDPOINT`): without one `startRequestTrace` returns
 * `undefined` and a request pays nothing. A request is one server span with children for its
 * stages: `preprocess`, `route`, `dispatch` (sending until the worker accepted), `first_token`
 * (until the first generated token) and `stream` (until the stream ended). The trace continues
 * the client's `traceparent` and the worker gets the request span as its parent.
 */

export type SpanKind = 'internal' | 'server' | 'client';
export type AttributeValue = string | number | boolean;

/** A finished span. Times are Unix epoch milliseconds (fractions kept). */
export interface SpanRecord {
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  name: string;
  kind: SpanKind;
  startMs: number;
  endMs: number;
  attributes: Record<string, AttributeValue>;
  /** Set when the span failed. */
  error?: string;
}

/** The port an exporter implements (batching and sending are its business). */
export interface SpanExporter {
  export(span: SpanRecord): void;
}

export interface TraceContext {
  traceId: string;
  spanId: string;
  sampled: boolean;
}

const TRACEPARENT = /^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(?:-.*)?$/;

/** Parses a W3C `traceparent`; undefined when absent or malformed (all-zero ids included). */
export function parseTraceparent(value: string | undefined): TraceContext | undefined {
  const m = value ? TRACEPARENT.exec(value.trim().toLowerCase()) : null;
  if (!m) return undefined;
  const [, version, traceId, spanId, flags] = m as unknown as string[];
  if (version === 'ff' || /^0+$/.test(traceId!) || /^0+$/.test(spanId!)) return undefined;
  return { traceId: traceId!, spanId: spanId!, sampled: (parseInt(flags!, 16) & 1) === 1 };
}

const HEX = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, '0'));
/** Random bytes drawn 4 KiB at a time: one `getRandomValues` call per ~300 spans. */
const pool = new Uint8Array(4096);
let poolAt = pool.length;

function randomHex(bytes: number): string {
  if (poolAt + bytes > pool.length) {
    crypto.getRandomValues(pool);
    poolAt = 0;
  }
  let out = '';
  let zero = true;
  for (let i = 0; i < bytes; i++) {
    const b = pool[poolAt++] as number;
    if (b !== 0) zero = false;
    out += HEX[b];
  }
  return zero ? randomHex(bytes) : out;
}

export type RequestStage = 'preprocess' | 'route' | 'dispatch' | 'first_token' | 'stream';

export interface RequestTrace {
  /** The `traceparent` to send the worker: this request's span is its parent. */
  readonly traceparent: string;
  readonly traceId: string;
  /** Records a child span between two monotonic instants (milliseconds). */
  stage(
    name: RequestStage,
    startMono: number,
    endMono: number,
    attributes?: Record<string, AttributeValue>,
  ): void;
  /** Adds attributes to the request span. */
  set(attributes: Record<string, AttributeValue>): void;
  /** Ends the request span (once); `error` marks it failed. */
  end(error?: string): void;
}

export interface RequestTraceOptions {
  /** The client's `traceparent`, continued when valid. @default a new trace */
  traceparent?: string;
  /** The request span's name, e.g. `POST /v1/chat/completions`. */
  name: string;
  attributes?: Record<string, AttributeValue>;
  /** Wall clock, epoch milliseconds. */
  now: () => number;
  /** Monotonic milliseconds (stage instants use it). */
  monotonic: () => number;
}

/** A trace for one request, or undefined when tracing is off or the client's trace is unsampled. */
export function startRequestTrace(
  exporter: SpanExporter | undefined,
  options: RequestTraceOptions,
): RequestTrace | undefined {
  if (!exporter) return undefined;
  const parent = parseTraceparent(options.traceparent);
  if (parent && !parent.sampled) return undefined;
  const traceId = parent?.traceId ?? randomHex(16);
  const spanId = randomHex(8);
  const startMono = options.monotonic();
  const startMs = options.now();
  const wall = (mono: number) => startMs + (mono - startMono);
  const attributes: Record<string, AttributeValue> = { ...options.attributes };
  let ended = false;
  return {
    traceparent: `00-${traceId}-${spanId}-01`,
    traceId,
    stage(name, from, to, extra = {}) {
      if (ended) return;
      exporter.export({
        traceId,
        spanId: randomHex(8),
        parentSpanId: spanId,
        name,
        kind: name === 'dispatch' ? 'client' : 'internal',
        startMs: wall(from),
        endMs: wall(Math.max(from, to)),
        attributes: extra,
      });
    },
    set(extra) {
      Object.assign(attributes, extra);
    },
    end(error) {
      if (ended) return;
      ended = true;
      exporter.export({
        traceId,
        spanId,
        ...(parent ? { parentSpanId: parent.spanId } : {}),
        name: options.name,
        kind: 'server',
        startMs,
        endMs: wall(options.monotonic()),
        attributes,
        ...(error !== undefined ? { error } : {}),
      });
    },
  };
}
