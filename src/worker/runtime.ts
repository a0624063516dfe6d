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
import type { KvCacheEvent } from '../core/router/kv/events.ts';
import type { ActiveLoad, ForwardPassMetrics } from '../core/router/kv/load.ts';
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
  /**
   * Load reports are coalesced: one goes out at once when none went out for this long, else the
   * latest is sent when the interval ends (so the frontend's view is at most this stale, and an
   * engine stepping every few milliseconds does not send a message pair per step). 0 sends every
   * report. `DYN_WORKER_LOAD_REPORT_INTERVAL_MS` on the mocker.
   * @default 25
   */
  loadReportIntervalMs?: number;
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
   * Registers another model card on an endpoint this worker serves: a LoRA adapter (a card with
   * `lora.name`, registered under the key suffix `lora.name`, as Dynamo does) or a second name.
   * Requests for it arrive on the same handler with `routing.lora_name` set to the adapter.
   */
  addModel(endpoint: EndpointId, card: ModelCard): Promise<void>;
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
  /**
   * Shuts down: deregisters every model and endpoint (frontends stop routing here), stops taking
   * requests (late ones are refused as "Server unavailable", which frontends retry elsewhere),
   * lets the running ones finish for up to `drainTimeoutMs`, cancels what is left, then closes
   * the request plane, the event plane and the lease. Calling it again returns the same promise.
   */
  close(options?: WorkerCloseOptions): Promise<void>;
}

export interface WorkerCloseOptions {
  /**
   * How long in-flight requests may run on after the worker left discovery
   * (`DYN_WORKER_GRACEFUL_SHUTDOWN_TIMEOUT`, in seconds, for `switchboard mocker`).
   * @default 0 (cancel them at once)
   */
  drainTimeoutMs?: number;
}

/** Dynamo's subject segment encoding: anything outside `[A-Za-z0-9_-]` becomes `%XX`. */
/** A LoRA name as a discovery key segment: lower case, `[a-z0-9_-]` kept, the rest `_`. */
export function loraSlug(name: string): string {
  return name.toLowerCase().replace(/[^a-z0-9_-]/g, '_');
}

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
  const models: Array<{ endpoint: EndpointId; suffix?: string }> = [];
  const workerId = BigInt(`0x${discovery.instanceId}`);
  let closing: Promise<void> | undefined;
  const loadInterval = options.loadReportIntervalMs ?? 25;
  type LoadReport = Parameters<WorkerRuntime['publishLoad']>;
  /** Per endpoint and dp rank: when a report last went out, and the one waiting to go. */
  const loadSlots = new Map<
    string,
    { last: number; latest?: LoadReport; timer?: ReturnType<typeof setTimeout> }
  >();
  const sendLoad = (endpoint: EndpointId, load: LoadReport[1]) =>
    Promise.all([
      events.publish(kvMetricsSubject(endpoint), load.activeLoad),
      events.publish(forwardPassSubject(endpoint), load.forwardPass),
    ]).then(() => {});
  const logs = new Map<number, KvEventLog>();
  const logOf = (dpRank: number) => {
    let log = logs.get(dpRank);
    if (!log) logs.set(dpRank, log = createKvEventLog(workerId, { dpRank }));
    return log;
  };
  /** Waits for the plane's running requests, up to `timeoutMs`; logs when some were left. */
  async function drain(timeoutMs: number): Promise<void> {
    const instance_id = discovery.instanceId;
    logger.info('draining in-flight requests', { instance_id, timeout_ms: timeoutMs });
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timedOut = new Promise<boolean>((resolve) => {
      timer = setTimeout(() => resolve(true), timeoutMs);
    });
    const late = await Promise.race([plane.drain().then(() => false), timedOut]);
    clearTimeout(timer);
    if (late) {
      logger.warn('drain timeout reached: cancelling the remaining requests', { instance_id });
    } else logger.info('drained', { instance_id });
  }

  return {
    instanceId: discovery.instanceId,
    workerId,
    async serve(endpoint, handler, card) {
      const transport = await plane.serve(endpoint, discovery.instanceId, handler);
      await discovery.registerEndpoint(endpoint, transport);
      served.push(endpoint);
      if (card) {
        await discovery.registerModel(endpoint, card as JsonObject);
        models.push({ endpoint });
      }
      logger.info('serving', {
        endpoint: `dyn://${endpoint.namespace}.${endpoint.component}.${endpoint.endpoint}`,
        instance_id: discovery.instanceId,
        transport,
        model: card?.display_name,
      });
    },
    async addModel(endpoint, card) {
      const suffix = card.lora?.name ? loraSlug(card.lora.name) : undefined;
      await discovery.registerModel(endpoint, card as JsonObject, suffix);
      models.push({ endpoint, ...(suffix ? { suffix } : {}) });
      logger.info('model added', { model: card.display_name, lora: card.lora?.name, suffix });
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
    publishLoad(endpoint, load) {
      if (loadInterval <= 0 || closing) return sendLoad(endpoint, load);
      const key = `${kvMetricsSubject(endpoint)}#${load.activeLoad.dp_rank}`;
      let slot = loadSlots.get(key);
      if (!slot) loadSlots.set(key, slot = { last: -Infinity });
      const now = Date.now();
      if (!slot.timer && now - slot.last >= loadInterval) {
        slot.last = now;
        return sendLoad(endpoint, load);
      }
      slot.latest = [endpoint, load];
      const s = slot;
      s.timer ??= setTimeout(() => {
        s.timer = undefined;
        s.last = Date.now();
        const latest = s.latest;
        s.latest = undefined;
        if (latest) {
          sendLoad(...latest).catch((error) => logger.warn('could not publish load', { error }));
        }
      }, Math.max(0, loadInterval - (now - slot.last)));
      return Promise.resolve();
    },
    close(options = {}) {
      return closing ??= (async () => {
        for (const slot of loadSlots.values()) clearTimeout(slot.timer);
        // Leave discovery first so frontends stop routing here, then stop serving.
        const leave = [
          ...models.map((m) => discovery.unregisterModel(m.endpoint, m.suffix)),
          ...served.map((e) => discovery.unregisterEndpoint(e)),
        ];
        await Promise.allSettled(leave);
        const drainTimeoutMs = options.drainTimeoutMs ?? 0;
        if (drainTimeoutMs > 0) await drain(drainTimeoutMs);
        await plane.close();
        await Promise.allSettled([store.close(), events.close()]);
      })();
    },
  };
}
