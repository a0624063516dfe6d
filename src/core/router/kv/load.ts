/**
 * Worker load payloads (runtime reference §4.5): the classic `ForwardPassMetrics` (sent as
 * `LoadEvent {worker_id, data}` on `kv_metrics`) and the newest `ActiveLoad`.
 */

/** Classic `ForwardPassMetrics`. */
export interface ForwardPassMetrics {
  worker_stats: {
    data_parallel_rank?: number;
    request_active_slots: number;
    request_total_slots: number;
    num_requests_waiting: number;
  };
  kv_stats: {
    kv_active_blocks: number;
    kv_total_blocks: number;
    /** 0..1 */
    gpu_cache_usage_perc: number;
    /** 0..1 */
    gpu_prefix_cache_hit_rate: number;
  };
  spec_decode_stats?: unknown;
}

/** Classic `kv_metrics` payload. */
export interface LoadEvent {
  worker_id: bigint;
  data: ForwardPassMetrics;
}

/** Newest `kv_metrics` payload. */
export interface ActiveLoad {
  worker_id: bigint;
  dp_rank: number;
  active_decode_blocks?: number;
  active_prefill_tokens?: number;
  kv_used_blocks?: number;
  waiting_requests?: number;
}
