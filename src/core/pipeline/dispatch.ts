/**
 * Sends one request to one worker: picks the instance, calls it over the request plane, and
 * unwraps the worker's `Annotated` stream. Connection failures at send time are retried on the
 * other instances (the request never reached a worker) and the failed one is skipped for a while.
 */
import type { Core } from '../core.ts';
import type { WorkerInstance } from '../discovery/models.ts';
import {
  type ApiError,
  CancelledError,
  InternalError,
  OverloadedError,
  ServiceUnavailableError,
  UpstreamRejectedError,
} from '../errors.ts';
import type { Logger } from '../logger.ts';
import { PlaneError } from '../plane/errors.ts';
import type { RequestPlaneClient } from '../plane/types.ts';
import { type Inhibitor, type RoutingPolicy, selectWorker } from '../router/policy.ts';
import type { KvBooking, KvRouter, KvRouteRequest } from '../router/kv/types.ts';

export interface DispatchOptions {
  plane: RequestPlaneClient;
  policy: RoutingPolicy;
  inhibitor: Inhibitor;
  logger: Logger;
  model: string;
  instances: readonly WorkerInstance[];
  request: { id: string; headers: Record<string, string>; body: unknown };
  signal: AbortSignal;
  backendInstanceId?: string;
  /** Status of "every worker is busy" answers. */
  overloadStatus: number;
  /**
   * KV-aware selection: the router picks among the candidates and books the request; the
   * booking follows the stream and is freed when it ends. @default the routing policy
   */
  kv?: { router: KvRouter; request: Omit<KvRouteRequest, 'candidates' | 'pinned'> };
  /**
   * Load shedding: busy workers are skipped; when every worker is busy the request is refused
   * with `overloadStatus` and `Retry-After` (a pinned worker is never skipped). @default none
   */
  /** Called with each worker chosen, before the request is sent to it. @default none */
  onSelected?: (instance: WorkerInstance) => void;
  busy?: {
    isBusy(instance: WorkerInstance): boolean;
    /** The worker answered "overloaded". */
    markOverloaded(instance: WorkerInstance): void;
    /** Every worker was busy: the request is being refused. */
    onRejected(): void;
  };
}

export interface Dispatched {
  instance: WorkerInstance;
  /** The KV router's decision, when it chose. */
  booking?: KvBooking;
  /** The `data` of each item; an error item throws `WorkerStreamError`. */
  stream: AsyncIterable<unknown>;
}

/** The worker reported an error in the middle of its stream. */
export class WorkerStreamError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'WorkerStreamError';
  }
}

/** Maps a request-plane failure to what the client is told. */
export function planeErrorToApi(error: PlaneError, overloadStatus: number): ApiError {
  switch (error.kind) {
    case 'overloaded':
      return new OverloadedError(overloadStatus, { cause: error });
    case 'rejected':
      return error.status !== undefined && error.status >= 400 && error.status < 500 &&
          error.status !== 499
        ? new UpstreamRejectedError(error.status, error.message, { cause: error })
        : error.status === 503 || error.status === overloadStatus
        ? new OverloadedError(overloadStatus, { cause: error })
        : new InternalError('Internal server error', { cause: error });
    case 'cannot_connect':
    case 'disconnected':
      return new ServiceUnavailableError(
        'Service temporarily unavailable: the worker could not be reached',
        {
          cause: error,
        },
      );
    default:
      return new InternalError('Internal server error', { cause: error });
  }
}

async function* unwrap(items: AsyncIterable<unknown>): AsyncIterable<unknown> {
  for await (const item of items) {
    const annotated = item as { data?: unknown; event?: string; comment?: string[] } | null;
    if (annotated?.event === 'error') {
      throw new WorkerStreamError(annotated.comment?.join(' ') || 'worker error');
    }
    if (annotated && annotated.data !== undefined) yield annotated.data;
  }
}

/** Follows a worker's stream for the KV router: first token, output tokens, and the end. */
async function* track(items: AsyncIterable<unknown>, booking: KvBooking): AsyncIterable<unknown> {
  let first = true;
  try {
    for await (const data of items) {
      const ids = (data as { token_ids?: unknown } | null)?.token_ids;
      if (Array.isArray(ids) && ids.length > 0) {
        if (first) booking.firstToken();
        first = false;
        booking.tokens(ids.length);
      }
      yield data;
    }
  } finally {
    booking.free();
  }
}

/** Writes the chosen dp rank into a worker request's `routing`. */
function withDpRank(body: unknown, dpRank: number): unknown {
  if (!body || typeof body !== 'object') return body;
  const request = body as { routing?: Record<string, unknown> | null };
  return { ...request, routing: { ...(request.routing ?? {}), dp_rank: dpRank } };
}

export async function dispatch(options: DispatchOptions): Promise<Dispatched> {
  const { plane, policy, inhibitor, logger, model, signal, busy } = options;
  let candidates = [...options.instances];
  if (busy && !options.backendInstanceId && candidates.length > 0) {
    candidates = candidates.filter((c) => !busy.isBusy(c));
    if (candidates.length === 0) {
      busy.onRejected();
      throw new OverloadedError(options.overloadStatus, { retryAfter: 1 });
    }
  }
  for (;;) {
    let instance: WorkerInstance;
    let booking: KvBooking | undefined;
    let request = options.request;
    if (options.kv && candidates.length > 0) {
      booking = await options.kv.router.route({
        ...options.kv.request,
        candidates: inhibitor.filter(candidates),
        pinned: options.backendInstanceId,
      }, signal);
      instance = booking.instance;
      request = { ...request, body: withDpRank(request.body, booking.dpRank) };
    } else {
      instance = selectWorker(policy, inhibitor, candidates, {
        model,
        backendInstanceId: options.backendInstanceId,
      });
    }
    options.onSelected?.(instance);
    try {
      const items = await plane.send(instance.transport, request, { signal });
      const stream = booking ? track(unwrap(items), booking) : unwrap(items);
      return { instance, stream, ...(booking ? { booking } : {}) };
    } catch (error) {
      booking?.free();
      if (!(error instanceof PlaneError)) throw error;
      if (error.kind === 'overloaded') busy?.markOverloaded(instance);
      logger.warn('worker call failed', {
        request_id: request.id,
        instance_id: instance.instanceId,
        kind: error.kind,
        error: error.message,
      });
      if (error.kind === 'cannot_connect' || error.kind === 'disconnected') {
        inhibitor.report(instance.instanceId);
      }
      candidates = candidates.filter((c) => c.instanceId !== instance.instanceId);
      // The client left: not the worker's fault, and nobody is waiting for a status.
      if (signal.aborted) {
        throw new CancelledError('Request cancelled by the client', { cause: error });
      }
      const retry = error.kind === 'cannot_connect' && !options.backendInstanceId &&
        candidates.length > 0;
      if (!retry) throw planeErrorToApi(error, options.overloadStatus);
    }
  }
}

/** What a model request carries into dispatch (a subset of the route's call context). */
export interface DispatchCall {
  requestId: string;
  headers: Record<string, string>;
  signal: AbortSignal;
  nvext?: { backend_instance_id?: string | null } | undefined;
}

/** `dispatch()` with the core's plane, router and settings, for one request to `model`. */
/** The core's load shedding for `model`, as `dispatch()` takes it. */
export function busyOf(core: Core, model: string): DispatchOptions['busy'] {
  const served = core.models.get(model);
  if (!served) return undefined;
  return {
    isBusy: (instance) => core.busy.isBusy(served, instance),
    markOverloaded: (instance) => core.busy.markOverloaded(instance.instanceId),
    onRejected: () => core.metrics.modelRejectionTotal.inc({ model, endpoint: 'generate' }),
  };
}

export function dispatchTo(
  core: Core,
  request: { model: string; call: DispatchCall; body: unknown },
) {
  const { model, call, body } = request;
  return dispatch({
    busy: busyOf(core, model),
    plane: core.plane,
    policy: core.policy,
    inhibitor: core.inhibitor,
    logger: core.logger,
    model,
    instances: core.models.instances(model),
    request: { id: call.requestId, headers: call.headers, body },
    signal: call.signal,
    backendInstanceId: call.nvext?.backend_instance_id ?? undefined,
    overloadStatus: core.config.httpOverloadStatusCode,
  });
}
