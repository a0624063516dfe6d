/**
 * What the request pipeline sees of the KV router: pick a worker for a tokenized prompt and book
 * it, then report the stream's progress so the router's load accounting follows the request.
 */
import type { ServedModel, WorkerInstance } from '../../discovery/models.ts';

/** Per-request changes to the router's settings (`nvext` / `router_config_override`). */
export interface KvRouteOverrides {
  overlapScoreWeight?: number;
  temperature?: number;
  /** Book the prompt's blocks as shared with cached ones (false: fresh hashes). */
  assumeKvReuse?: boolean;
  /** Count the prompt's uncached tokens as prefill load. */
  trackPrefillTokens?: boolean;
}

export interface KvRouteRequest {
  requestId: string;
  tokens: readonly number[];
  loraName?: string | null;
  cacheSalt?: string | null;
  /** Workers that may serve it (inhibited ones already removed); never empty. */
  candidates: readonly WorkerInstance[];
  /** A worker the request names (`backend_instance_id` / header): no search, still booked. */
  pinned?: string;
  /** dp rank the request names. */
  dpRank?: number;
  /** `nvext.agent_hints.priority`: larger goes first in the queue. @default 0 */
  priority?: number;
  /** `nvext.agent_hints.osl`: expected output tokens (output block decay). */
  expectedOutputTokens?: number;
  overrides?: KvRouteOverrides;
  /** false: decide only (query_instance_id), book nothing. @default true */
  book?: boolean;
}

export interface KvDecision {
  instance: WorkerInstance;
  dpRank: number;
  /** Blocks of the prompt the chosen worker already holds. */
  overlapBlocks: number;
  /** Full blocks in the prompt. */
  requiredBlocks: number;
}

/** A booked request: call `firstToken` / `tokens` as output arrives and `free` exactly once. */
export interface KvBooking extends KvDecision {
  /** The first chunk with tokens arrived: the prompt is no longer prefill load. */
  firstToken(): void;
  /** `count` more output tokens were generated. */
  tokens(count: number): void;
  /** The request ended (completed, failed or cancelled). Idempotent. */
  free(): void;
}

export interface KvRouter {
  /** Picks a worker (waiting in the queue while every worker is above the threshold). */
  route(request: KvRouteRequest, signal?: AbortSignal): Promise<KvBooking>;
}

/** The KV routers of `--router-mode kv`: one per model and pool (aggregated/decode, prefill). */
export interface KvRouting {
  routerFor(model: ServedModel, pool: 'decode' | 'prefill'): KvRouter;
}
