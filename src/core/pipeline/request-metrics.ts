/**
 * The per-request metric guard of Dynamo's frontend (§10.1): inflight and queued gauges while a
 * request runs, TTFT and ISL at the first token, ITL and output tokens per chunk, and
 * `requests_total` with its outcome at the end. Streams count as cancelled unless they finish.
 */
import type { FrontendMetrics } from '../metrics.ts';

export type EndpointLabel =
  | 'chat_completions'
  | 'completions'
  | 'embeddings'
  | 'responses'
  | 'anthropic_messages'
  | 'images'
  | 'videos';
export type ErrorType =
  | ''
  | 'validation'
  | 'not_found'
  | 'overload'
  | 'unavailable'
  | 'cancelled'
  | 'internal'
  | 'not_implemented';

export interface RequestMetricsOptions {
  model: string;
  endpoint: EndpointLabel;
  stream: boolean;
  /** Monotonic milliseconds. */
  now: () => number;
}

export interface RequestMetrics {
  /** A chunk with `tokens` new tokens arrived (the first one with tokens > 0 is the first token). */
  tokens(tokens: number): void;
  /** Prompt length and prefix-cache hits, known once the worker answered. */
  prompt(inputTokens: number, cachedTokens?: number): void;
  /** The client went away before the end. */
  disconnected(): void;
  /** Records the outcome once; later calls are ignored. */
  finish(outcome: { errorType: ErrorType; outputTokens?: number }): void;
}

export function startRequestMetrics(
  metrics: FrontendMetrics,
  options: RequestMetricsOptions,
): RequestMetrics {
  const { model, endpoint, now } = options;
  const requestType = options.stream ? 'stream' : 'unary';
  const byModel = { model };
  const labels = { model, endpoint, request_type: requestType };
  const start = now();
  let last = start;
  let firstTokenSeen = false;
  let finished = false;
  let output = 0;
  let inputTokens: number | undefined;
  metrics.requestsStartedTotal.inc(labels);
  metrics.inflightRequests.inc(byModel);
  metrics.activeRequests.inc(byModel);
  metrics.queuedRequests.inc(byModel);

  const leaveQueue = () => {
    if (firstTokenSeen) return;
    firstTokenSeen = true;
    metrics.queuedRequests.dec(byModel);
  };

  return {
    prompt(tokens, cached) {
      if (inputTokens !== undefined) return;
      inputTokens = tokens;
      metrics.inputSequenceTokens.observe(byModel, tokens);
      if (cached !== undefined) metrics.cachedTokens.observe(byModel, cached);
    },
    tokens(count) {
      if (count <= 0 || finished) return;
      const t = now();
      if (!firstTokenSeen) {
        metrics.timeToFirstToken.observe(byModel, (t - start) / 1000);
        leaveQueue();
      } else {
        const perToken = (t - last) / 1000 / count;
        for (let i = 0; i < count; i++) metrics.interTokenLatency.observe(byModel, perToken);
      }
      last = t;
      output += count;
      metrics.outputTokensTotal.inc(byModel, count);
    },
    disconnected() {
      metrics.disconnectedClients.inc();
      metrics.modelCancellationTotal.inc(labels);
    },
    finish({ errorType, outputTokens }) {
      if (finished) return;
      finished = true;
      leaveQueue();
      metrics.inflightRequests.dec(byModel);
      metrics.activeRequests.dec(byModel);
      metrics.requestsTotal.inc({
        ...labels,
        status: errorType === '' ? 'success' : 'error',
        error_type: errorType,
      });
      metrics.requestDuration.observe(byModel, (now() - start) / 1000);
      const osl = outputTokens ?? output;
      if (osl > 0) metrics.outputSequenceTokens.observe(byModel, osl);
    },
  };
}

/** The `error_type` label of an HTTP status. */
export function errorTypeOf(status: number, overloadStatus: number): ErrorType {
  if (status < 400) return '';
  if (status === 404) return 'not_found';
  if (status === 499) return 'cancelled';
  if (status === 501) return 'not_implemented';
  if (status === overloadStatus && status !== 503) return 'overload';
  if (status === 503) return 'unavailable';
  if (status < 500) return 'validation';
  return 'internal';
}
