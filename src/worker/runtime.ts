/**
 * The worker runtime: what a process needs to serve models behind Switchboard (or Dynamo).
 * It registers endpoints and model cards in discovery under one lease, serves them on the
 * request plane, and publishes KV events and load on the event plane. Runtime-neutral: the
 * concrete discovery store, request plane and event plane are passed in (see
 * `src/runtime/infra.ts` for building them from flags). See docs/workers.md.
 */
import { createDiscovery, type JsonObject } from '../core/discovery/discovery.ts';
import type { ModelCard } from '../core/discovery/model-card.ts';
import type { EndpointId, KvStore } from '../core/discovery/types.ts';
import type { EventPlane } from '../core/events/types.ts';
import type { KvCacheEvent } from '../core/kv/events.ts';
import type { ActiveLoad, ForwardPassMetrics } from '../core/kv/load.ts';
import type { Logger } from '../core/logger.ts';
import type { EndpointHandler, RequestPlaneServer } from '../core/plane/types.ts';
import { stringifyExactJson } from '../core/json.ts';
import {
  createKvEventLog,
  KV_QUERY_ENDPOINT,
  type KvEventLog,
  type WorkerKvQueryRequest,
} from './kv-event-log.ts';

export interface WorkerRuntimeOptions {
  /** Discovery backend; its lease is this worker's identity. */
  store: KvStore;
  /** Request plane the endpoints are served on. */
  plane: RequestPlaneServer;
  /** Event plane for KV events and load. */
  events: EventPlane;
  logger: Logger;
}

export interface WorkerRuntime {
  /** Lower-case hex u64, shared by everything this worker registers. */
  readonly instanceId: string;
  /** The same id as an exact integer, as KV events and load metrics carry it. */
  readonly workerId: bigint;
  /**
   * Serves `endpoint` with `handler` and registers it in discovery; with a `card`, registers the
   * model too (the frontend lists it once both are visible).
   */
  serve(endpoint: EndpointId, handler: EndpointHandler, card?: ModelCard): Promise<void>;
  /**
   * Publishes a KV cache event on `namespace.{ns}.component.{c}.kv-events` and remembers it for
   * routers that missed it (see `serveKvQuery`).
   */
  publishKvEvent(endpoint: EndpointId, event: KvCacheEvent): Promise<void>;
  /**
   * Serves `worker_kv_indexer_query` in `endpoint`'s component: routers ask it for events they
   * missed or for a dump of this worker's blocks (docs/kv-routing.md, "Recovery"). The answer is
   * one item `{exact_json}`: the `WorkerKvQueryResponse` as JSON text with exact u64s.
   */
  serveKvQuery(endpoint: EndpointId): Promise<void>;
  /** Publishes load on `namespace.{ns}.kv_metrics` and `...endpoint.{e}.forward-pass-metrics`. */
  publishLoad(
    endpoint: EndpointId,
    load: { activeLoad: ActiveLoad; forwardPass: ForwardPassMetrics },
  ): Promise<void>;
  /** Deregisters everything, stops serving and releases the lease. */
  close(): Promise<void>;
}

/** Dynamo's subject segment encoding: anything outside `[A-Za-z0-9_-]` becomes `%XX`. */
export function subjectSegment(value: string): string {
  return value.replace(
    /[^A-Za-z0-9_-]/g,
    (c) =>
      [...new TextEncoder().encode(c)].map((b) =>
        `%${b.toString(16).toUpperCase().padStart(2, '0')}`
      ).join(''),
  );
}

export const kvEventsSubject = (e: EndpointId) =>
  `namespace.${subjectSegment(e.namespace)}.component.${subjectSegment(e.component)}.kv-events`;
export const kvMetricsSubject = (e: Pick<EndpointId, 'namespace'>) =>
  `namespace.${subjectSegment(e.namespace)}.kv_metrics`;
export const forwardPassSubject = (e: EndpointId) =>
  `namespace.${subjectSegment(e.namespace)}.component.${subjectSegment(e.component)}.endpoint.${
    subjectSegment(e.endpoint)
  }.forward-pass-metrics`;

export function createWorkerRuntime(options: WorkerRuntimeOptions): WorkerRuntime {
  const { store, plane, events, logger } = options;
  const discovery = createDiscovery(store, { logger });
  const served: EndpointId[] = [];
  const models: EndpointId[] = [];
  const workerId = BigInt(`0x${discovery.instanceId}`);
  let closed = false;
  const logs = new Map<number, KvEventLog>();
  const logOf = (dpRank: number) => {
    let log = logs.get(dpRank);
    if (!log) logs.set(dpRank, log = createKvEventLog(workerId, { dpRank }));
    return log;
  };
  return {
    instanceId: discovery.instanceId,
    workerId,
    async serve(endpoint, handler, card) {
      const transport = await plane.serve(endpoint, discovery.instanceId, handler);
      await discovery.registerEndpoint(endpoint, transport);
      served.push(endpoint);
      if (card) {
        await discovery.registerModel(endpoint, card as JsonObject);
        models.push(endpoint);
      }
      logger.info('serving', {
        endpoint: `dyn://${endpoint.namespace}.${endpoint.component}.${endpoint.endpoint}`,
        instance_id: discovery.instanceId,
        transport,
        model: card?.display_name,
      });
    },
    async serveKvQuery(endpoint) {
      const query: EndpointHandler = async function* (body) {
        const request = (body ?? {}) as WorkerKvQueryRequest;
        const rank = typeof request.dp_rank === 'number' ? request.dp_rank : 0;
        yield { data: { exact_json: stringifyExactJson(logOf(rank).query(request)) } };
      };
      await this.serve({ ...endpoint, endpoint: KV_QUERY_ENDPOINT }, query);
      // A ZMQ plane binds and advertises on first publish; do it now so routers connect first.
      const advertise = (events as { advertise?: (subject: string) => Promise<unknown> }).advertise;
      await advertise?.call(events, kvEventsSubject(endpoint));
    },
    async publishKvEvent(endpoint, event) {
      logOf(event.dp_rank).record(event);
      await events.publish(kvEventsSubject(endpoint), { worker_id: workerId, event });
    },
    async publishLoad(endpoint, load) {
      await Promise.all([
        events.publish(kvMetricsSubject(endpoint), load.activeLoad),
        events.publish(forwardPassSubject(endpoint), load.forwardPass),
      ]);
    },
    async close() {
      if (closed) return;
      closed = true;
      // Leave discovery first so the frontend stops routing here, then stop serving.
      const leave = [
        ...models.map((e) => discovery.unregisterModel(e)),
        ...served.map((e) => discovery.unregisterEndpoint(e)),
      ];
      await Promise.allSettled(leave);
      await plane.close();
      await Promise.allSettled([store.close(), events.close()]);
    },
  };
}
