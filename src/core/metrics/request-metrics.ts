/**
 * The per-request metric guard of Dynamo's frontend (§10.1): inflight and queued gauges while a
 * request runs, TTFT and ISL at the first token, ITL and output tokens per chunk, and
 * `requests_total` with its outcome at the end. Streams count as cancelled unless they finish.
 */
import { bindHistogram, type FrontendMetrics } from './metrics.ts';
import type { RequestTrace } from '../tracing.ts';

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
  /** The request's trace: first-token and stream spans, ended with the outcome. @default none */
  trace?: RequestTrace;
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
  /** The request's trace, when tracing is on. */
  readonly trace?: RequestTrace;
  /**
   * A worker took the request (its prefill, or its decode): the per-worker `worker_last_*`
   * gauges follow it (TTFT and ISL go to the prefill worker when there is one, ITL to decode).
   */
  worker(worker: RequestWorker): void;
}

export interface RequestWorker {
  /** Lower-case hex instance id. */
  instanceId: string;
  /** The dp rank the router chose; `none` in the label when unknown. */
  dpRank?: number;
  type: 'prefill' | 'decode';
  promptTokens?: number;
}

/** `worker_id` (decimal, as Dynamo writes lease ids), `dp_rank`, `worker_type`. */
export function workerLabels(worker: RequestWorker): Record<string, string> {
  return {
    worker_id: BigInt(`0x${worker.instanceId}`).toString(),
    dp_rank: worker.dpRank === undefined ? 'none' : String(worker.dpRank),
    worker_type: worker.type,
  };
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
  /** Labels of the worker that prefills (TTFT, ISL) and the one that decodes (ITL). */
  const { trace } = options;
  /** When the last worker accepted the request (the `first_token` span starts there). */
  let dispatchedAt = start;
  let firstTokenSeenAt: number | undefined;
  let prefillWorker: Record<string, string> | undefined;
  let decodeWorker: Record<string, string> | undefined;
  /** Per-token metrics, bound or batched once per request. */
  let itl: { observe(value: number): void } | undefined;
  let lastItl: number | undefined;
  let unreported = 0;
  const reportTokens = () => {
    if (unreported > 0) metrics.outputTokensTotal.inc(byModel, unreported);
    unreported = 0;
    if (lastItl !== undefined && decodeWorker) {
      metrics.workerLastInterTokenLatency.set(decodeWorker, lastItl);
    }
    lastItl = undefined;
  };
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
        firstTokenSeenAt = t;
        const ttft = (t - start) / 1000;
        metrics.timeToFirstToken.observe(byModel, ttft);
        trace?.stage('first_token', dispatchedAt, t);
        const prefiller = prefillWorker ?? decodeWorker;
        if (prefiller) metrics.workerLastTimeToFirstToken.set(prefiller, ttft);
        leaveQueue();
      } else {
        const perToken = (t - last) / 1000 / count;
        itl ??= bindHistogram(metrics.interTokenLatency, byModel);
        for (let i = 0; i < count; i++) itl.observe(perToken);
        lastItl = perToken;
      }
      last = t;
      output += count;
      // Counted in batches: every 32 tokens, and at the end.
      unreported += count;
      if (unreported >= 32) reportTokens();
    },
    trace,
    worker(worker) {
      dispatchedAt = now();
      const labels = workerLabels(worker);
      trace?.set({ [`switchboard.${worker.type}_worker_id`]: worker.instanceId });
      if (worker.type === 'prefill') prefillWorker = labels;
      else decodeWorker = labels;
      if (worker.promptTokens !== undefined && (worker.type === 'prefill' || !prefillWorker)) {
        metrics.workerLastInputSequenceTokens.set(labels, worker.promptTokens);
      }
    },
    disconnected() {
      metrics.disconnectedClients.inc();
      metrics.modelCancellationTotal.inc(labels);
    },
    finish({ errorType, outputTokens }) {
      if (finished) return;
      finished = true;
      reportTokens();
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
      if (trace) {
        const end = now();
        if (firstTokenSeenAt !== undefined) trace.stage('stream', firstTokenSeenAt, end);
        trace.set({
          'switchboard.output_tokens': osl,
          'switchboard.status': errorType || 'success',
        });
        trace.end(errorType === '' ? undefined : errorType);
      }
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
