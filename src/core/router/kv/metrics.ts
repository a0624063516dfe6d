/**
 * The KV router's metric families (router reference §7.1): per-decision component metrics under
 * `dynamo_component_router_*` (labels `dynamo_namespace`, `dynamo_component`, `dynamo_endpoint`),
 * routing overhead under `dynamo_router_overhead_*` (label `router_id`), indexer event outcomes,
 * and the frontend-prefixed queue and per-worker load gauges. Registered at zero in every mode,
 * as Dynamo does, so dashboards find them.
 */
import {
  BUCKETS,
  type Counter,
  type Gauge,
  type Histogram,
  type MetricFactory,
} from '../../metrics/metrics.ts';

const COMPONENT = ['dynamo_namespace', 'dynamo_component', 'dynamo_endpoint'] as const;
const WORKER = ['worker_id', 'dp_rank', 'worker_type'] as const;
const OVERHEAD_MS = [0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 25, 50];
const HIT_RATE = [0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1];

export interface RouterMetrics {
  requests: Counter;
  kvHitRate: Histogram;
  inputSequenceTokens: Histogram;
  outputSequenceTokens: Histogram;
  timeToFirstToken: Histogram;
  /** `dynamo_component_kv_cache_events_applied{event_type, status}` */
  eventsApplied: Counter;
  /** `dynamo_component_kv_cache_event_warnings{kind}` (duplicates, gaps) */
  eventWarnings: Counter;
  overheadBlockHashing: Histogram;
  overheadFindMatches: Histogram;
  overheadScheduling: Histogram;
  overheadTotal: Histogram;
  queuePending: Gauge;
  workerActiveDecodeBlocks: Gauge;
  workerActivePrefillTokens: Gauge;
}

/**
 * The queue and per-worker gauges keep the literal `dynamo_frontend_` prefix whatever
 * `--metrics-prefix` says (reference §10.3). `_frontendPrefix` is kept for callers.
 */
export function createRouterMetrics(
  factory: MetricFactory,
  _frontendPrefix: string,
): RouterMetrics {
  const h = (name: string, help: string, labels: readonly string[], buckets: readonly number[]) =>
    factory.histogram({ name, help, labels, buckets });
  return {
    requests: factory.counter({
      name: 'dynamo_component_router_requests_total',
      help: 'Requests the KV router placed',
      labels: COMPONENT,
    }),
    kvHitRate: h(
      'dynamo_component_router_kv_hit_rate',
      'Prompt blocks the chosen worker had cached, as a fraction of the prompt, at routing time',
      COMPONENT,
      HIT_RATE,
    ),
    inputSequenceTokens: h(
      'dynamo_component_router_input_sequence_tokens',
      'Prompt length of routed requests',
      COMPONENT,
      BUCKETS.inputSequence,
    ),
    outputSequenceTokens: h(
      'dynamo_component_router_output_sequence_tokens',
      'Output length of routed requests',
      COMPONENT,
      BUCKETS.outputSequence,
    ),
    timeToFirstToken: h(
      'dynamo_component_router_time_to_first_token_seconds',
      'Time from routing to the first token',
      COMPONENT,
      BUCKETS.ttft,
    ),
    eventsApplied: factory.counter({
      name: 'dynamo_component_kv_cache_events_applied',
      help: 'KV events applied to the index, by type and outcome',
      labels: ['event_type', 'status'],
    }),
    eventWarnings: factory.counter({
      name: 'dynamo_component_kv_cache_event_warnings',
      help: 'KV events dropped as duplicates, and gaps recovered from workers',
      labels: ['kind'],
    }),
    overheadBlockHashing: h(
      'dynamo_router_overhead_block_hashing_ms',
      'Time hashing the prompt into blocks',
      ['router_id'],
      OVERHEAD_MS,
    ),
    overheadFindMatches: h(
      'dynamo_router_overhead_indexer_find_matches_ms',
      'Time finding cached prefixes in the index',
      ['router_id'],
      OVERHEAD_MS,
    ),
    overheadScheduling: h(
      'dynamo_router_overhead_scheduling_ms',
      'Time scoring workers and booking the request',
      ['router_id'],
      OVERHEAD_MS,
    ),
    overheadTotal: h(
      'dynamo_router_overhead_total_ms',
      'Total routing time of a request (queue wait excluded)',
      ['router_id'],
      OVERHEAD_MS,
    ),
    queuePending: factory.gauge({
      name: `dynamo_frontend_router_queue_pending_requests`,
      help: 'Requests waiting in the router queue',
      labels: ['worker_type'],
    }),
    workerActiveDecodeBlocks: factory.gauge({
      name: `dynamo_frontend_worker_active_decode_blocks`,
      help: 'KV blocks the router counts as in use on a worker',
      labels: WORKER,
    }),
    workerActivePrefillTokens: factory.gauge({
      name: `dynamo_frontend_worker_active_prefill_tokens`,
      help: 'Prompt tokens the router counts as waiting for prefill on a worker',
      labels: WORKER,
    }),
  };
}
