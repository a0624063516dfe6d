/**
 * Sends one request to one worker: picks the instance, calls it over the request plane, and
 * unwraps the worker's `Annotated` stream. Failures before the first token that leave the request
 * unstarted (the worker could not be reached, did not acknowledge it, or did not open its response
 * stream within the handshake deadline) are retried on the other instances, counted as
 * `new_request` migrations, and the failed one is skipped for a while. A request of a session
 * goes to its session's worker while that one is still a candidate (`router/sessions.ts`).
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
import type { LoadLease, LoadTracker } from '../router/load.ts';
import { sessionKey, type SessionRequest, type SessionTable } from '../router/sessions.ts';
import { AGAIN, Stage, type Step } from '../stage.ts';

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
  /**
   * Called when the request is sent again to another worker because `failed` could not start it
   * (before any token). @default none
   */
  onRetry?: (failed: WorkerInstance, error: PlaneError) => void;
  /** In-flight accounting per worker (least-loaded, power-of-two-choices). @default none */
  load?: LoadTracker;
  /** The prompt's length in tokens, when known (counted as load). @default unknown */
  tokens?: number;
  /** Session affinity: the request's session and the table of bound sessions. @default none */
  session?: { table: SessionTable; request: SessionRequest };
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

/**
 * A worker's `Annotated` stream as the `data` of each item, in one iterator (no generator per
 * concern): an error item throws `WorkerStreamError`; the KV booking (first token, output tokens,
 * freed at the end) and the in-flight lease (output tokens, released at the end) follow it when
 * given.
 */
class WorkerItems extends Stage<unknown, unknown> {
  #booking: KvBooking | undefined;
  #lease: LoadLease | undefined;
  #first = true;
  #open = true;

  constructor(items: AsyncIterable<unknown>, booking?: KvBooking, lease?: LoadLease) {
    super(items);
    this.#booking = booking;
    this.#lease = lease;
  }

  protected step(result: IteratorResult<unknown>): Step<unknown> {
    if (result.done) {
      this.#end();
      return result;
    }
    const annotated = result.value as { data?: unknown; event?: string; comment?: string[] } | null;
    if (annotated?.event === 'error') {
      throw new WorkerStreamError(annotated.comment?.join(' ') || 'worker error');
    }
    const data = annotated?.data;
    if (data === undefined) return AGAIN;
    if (this.#booking || this.#lease) this.#count(data);
    return { value: data, done: false };
  }

  protected override error(error: unknown): never {
    this.#end();
    throw error;
  }

  protected override close(): void {
    this.#end();
  }

  #count(data: unknown) {
    const ids = (data as { token_ids?: unknown } | null)?.token_ids;
    if (!Array.isArray(ids)) return;
    this.#lease?.tokens(ids.length);
    if (this.#booking && ids.length > 0) {
      if (this.#first) this.#booking.firstToken();
      this.#first = false;
      this.#booking.tokens(ids.length);
    }
  }

  #end() {
    if (!this.#open) return;
    this.#open = false;
    this.#booking?.free();
    this.#lease?.release();
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
  /** A lease also released when the call is aborted (a stream nobody reads never ends). */
  const hold = (lease: LoadLease): LoadLease => {
    const release = () => {
      signal.removeEventListener('abort', release);
      lease.release();
    };
    if (signal.aborted) return { tokens: lease.tokens, release };
    signal.addEventListener('abort', release, { once: true });
    return { tokens: lease.tokens, release };
  };
  let candidates = [...options.instances];
  if (busy && !options.backendInstanceId && candidates.length > 0) {
    candidates = candidates.filter((c) => !busy.isBusy(c));
    if (candidates.length === 0) {
      busy.onRejected();
      throw new OverloadedError(options.overloadStatus, { retryAfter: 1 });
    }
  }
  const session = options.backendInstanceId ? undefined : options.session;
  /** The session's worker, while it is a candidate that has not just failed. */
  const sticky = () => {
    const bound = session?.table.lookup(session.request.sessionId);
    return bound === undefined || inhibitor.isInhibited(bound)
      ? undefined
      : candidates.find((c) => c.instanceId === bound);
  };
  for (;;) {
    let instance: WorkerInstance;
    let booking: KvBooking | undefined;
    let request = options.request;
    const stuck = sticky();
    if (options.kv && candidates.length > 0) {
      booking = await options.kv.router.route({
        ...options.kv.request,
        candidates: stuck ? [stuck] : inhibitor.filter(candidates),
        pinned: options.backendInstanceId,
      }, signal);
      instance = booking.instance;
      request = { ...request, body: withDpRank(request.body, booking.dpRank) };
    } else {
      instance = stuck ?? selectWorker(policy, inhibitor, candidates, {
        model,
        backendInstanceId: options.backendInstanceId,
      });
    }
    options.onSelected?.(instance);
    const lease = options.load && hold(options.load.start(instance.instanceId, options.tokens));
    try {
      const items = await plane.send(instance.transport, request, { signal });
      const stream = new WorkerItems(items, booking, lease || undefined);
      if (session) {
        if (session.request.action === 'close') session.table.close(session.request.sessionId);
        else session.table.bind(session.request, instance.instanceId);
      }
      return { instance, stream, ...(booking ? { booking } : {}) };
    } catch (error) {
      booking?.free();
      lease?.release();
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
      options.onRetry?.(instance, error);
    }
  }
}

/** What a model request carries into dispatch (a subset of the route's call context). */
export interface DispatchCall {
  requestId: string;
  headers: Record<string, string>;
  signal: AbortSignal;
  nvext?: {
    backend_instance_id?: string | null;
    /** The `x-dynamo-session-id` header is merged in here (`applyRoutingHeaders`). */
    session_control?: SessionRequestInput | null;
  } | undefined;
}

/** `nvext.session_control` as the request schema parses it. */
interface SessionRequestInput {
  session_id: string;
  action?: 'bind' | 'open' | 'close' | null;
  timeout?: number | null;
}

/** What `routingOf()` reads: the router mode, sessions, in-flight accounting, a retry counter. */
export type RoutingServices = Pick<Core, 'config' | 'sessions' | 'load' | 'metrics'>;

/** What `busyOf()` reads: the model's workers and the busy detector. */
export type BusyServices = Pick<Core, 'models' | 'busy' | 'metrics'>;

/** What `dispatchTo()` uses: the two above plus the request plane, the policy and the inhibitor. */
export type DispatchServices =
  & RoutingServices
  & BusyServices
  & Pick<Core, 'plane' | 'policy' | 'inhibitor' | 'logger'>;

/**
 * What every dispatch of `model` shares: the in-flight accounting (in the load-aware modes), the
 * request's session (when it has one and affinity is on), and retries counted as `new_request`
 * migrations.
 */
export function routingOf(
  core: RoutingServices,
  request: { model: string; call: DispatchCall; tokens?: number; pool?: 'decode' | 'prefill' },
): Pick<DispatchOptions, 'load' | 'tokens' | 'session' | 'onRetry'> {
  const control = request.call.nvext?.session_control;
  const session = control && core.config.routerSessionAffinityTtlSecs > 0
    ? {
      table: core.sessions,
      request: {
        sessionId: sessionKey(request.model, request.pool ?? 'decode', control.session_id),
        action: control.action,
        ttlSecs: control.timeout,
      },
    }
    : undefined;
  // Only the load-aware modes read the accounting: the others skip its per-item cost.
  const mode = core.config.routerMode;
  const counted = mode === 'least-loaded' || mode === 'power-of-two-choices';
  return {
    ...(counted ? { load: core.load } : {}),
    ...(counted && request.tokens !== undefined ? { tokens: request.tokens } : {}),
    ...(session ? { session } : {}),
    onRetry: () =>
      core.metrics.modelMigrationTotal.inc({
        model: request.model,
        migration_type: 'new_request',
      }),
  };
}

/** `dispatch()` with the core's plane, router and settings, for one request to `model`. */
/** The core's load shedding for `model`, as `dispatch()` takes it. */
export function busyOf(core: BusyServices, model: string): DispatchOptions['busy'] {
  const served = core.models.get(model);
  if (!served) return undefined;
  return {
    isBusy: (instance) => core.busy.isBusy(served, instance),
    markOverloaded: (instance) => core.busy.markOverloaded(instance.instanceId),
    onRejected: () => core.metrics.modelRejectionTotal.inc({ model, endpoint: 'generate' }),
  };
}

export function dispatchTo(
  core: DispatchServices,
  request: { model: string; call: DispatchCall; body: unknown },
) {
  const { model, call, body } = request;
  return dispatch({
    ...routingOf(core, { model, call }),
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
