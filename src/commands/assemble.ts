/**
 * `assembleFrontend(config, options)`: the one place the frontend is put together. It builds the
 * core from the ports the caller passes, wires the event plane into it (KV events, replica sync,
 * worker load for load shedding), keeps the model registry fed from discovery (a watch, or a
 * poller on hosts without long-lived work), and mounts the routes in the HTTP app.
 *
 * The callers add only what is theirs: `frontend.ts` (the CLI, `demo`, `interactive`, the e2e
 * tests) opens the infrastructure, serves the app over HTTP(S) and the KServe gRPC server and
 * drains on signals; `edge.ts` answers `fetch` on serverless hosts; `scripts/gen.ts` and
 * `tests/helpers/app.ts` use the app alone. Like `edge.ts`, this module touches no runtime API
 * (the edge bundle imports it).
 */
import { routes as manifest } from '../../routes/_manifest.gen.ts';
import type { Config } from '../core/config.ts';
import { type Core, type CorePorts, createCore } from '../core/core.ts';
import { createDiscovery } from '../core/discovery/discovery.ts';
import { createDiscoveryPoller, type DiscoveryPoller } from '../core/discovery/poll.ts';
import type { KvStore } from '../core/discovery/types.ts';
import { discoveryFeed, startModelWatcher } from '../core/discovery/watcher.ts';
import type { EventEnvelope, EventPlane } from '../core/events/types.ts';
import { type App, type AppOptions, createApp } from '../http/app.ts';
import type { RouteModule } from '../http/types.ts';

/** What load shedding needs, said when the event plane is missing. */
export const BUSY_NEEDS = 'a busy threshold (--active-decode-blocks-threshold, ' +
  "--active-prefill-tokens-threshold or POST /busy_threshold) needs the workers' load reports";

/** Where the model registry comes from. */
export type DiscoverySource =
  /** Watched for changes; `/health` is ready after the first snapshot (the CLI). */
  | { watch: KvStore }
  /** Re-read when a request finds the snapshot older than `maxAgeMs` (the edge). */
  | { poll: KvStore; maxAgeMs: number };

export interface AssembleOptions {
  /** The core's ports: logger, metric factory, request plane, preprocessors, ... */
  ports: CorePorts;
  /** Route modules to mount. @default the generated manifest */
  routes?: readonly RouteModule[];
  /** Passed to `createApp` (Swagger UI assets, the body thread). @default {} */
  app?: AppOptions;
  /**
   * Opens the event plane, called once on first need (KV events, replica sync, a busy
   * threshold). @default none: nothing is subscribed
   */
  events?: () => EventPlane;
  /**
   * Says whether the event plane can be reached; rejects with the reason, naming `needs`. Called
   * when a busy threshold is set after start-up (start-up checks `eventPlaneNeeds()` itself).
   * @default none: no check
   */
  checkEvents?: (needs: string) => Promise<void>;
  /** Where the model registry comes from. @default none: the registry stays empty */
  discovery?: DiscoverySource;
  /** Load each new model's tokenizer as soon as it appears, not on its first request. @default false */
  preloadTokenizers?: boolean;
}

export interface AssembledFrontend {
  core: Core;
  app: App;
  /** Set with `discovery: { poll }`: refresh it before a request. */
  poller?: DiscoveryPoller;
  /** The event plane, once something has opened it. */
  events(): EventPlane | undefined;
  /**
   * Stops discovery and the subscriptions, then closes what the core holds (request plane,
   * preprocessors, KV routing, responses store). The discovery store, the server and the span
   * exporter are the caller's.
   */
  close(): Promise<void>;
}

/**
 * What the configuration needs from the event plane at start-up, as the sentence to show when it
 * cannot be reached; undefined when it needs nothing.
 */
export function eventPlaneNeeds(config: Config): string | undefined {
  const kv = config.routerMode === 'kv';
  if (kv && config.routerKvEvents) {
    return "--router-mode kv needs the workers' KV events (--no-router-kv-events routes on the " +
      "frontend's own bookkeeping instead)";
  }
  if (kv && config.routerReplicaSync) return '--router-replica-sync needs the event plane';
  const thresholds = config.activeDecodeBlocksThreshold !== undefined ||
    config.activePrefillTokensThreshold !== undefined ||
    config.activePrefillTokensThresholdFrac !== undefined;
  return thresholds ? BUSY_NEEDS : undefined;
}

export function assembleFrontend(config: Config, options: AssembleOptions): AssembledFrontend {
  const { logger } = options.ports;
  const core = createCore(options.ports, config);
  let events: EventPlane | undefined;
  const makeEvents = options.events;
  const openEvents = makeEvents && ((): EventPlane => events ??= makeEvents());

  /** `kv_event_lag_seconds`: published (the worker's clock) -> handed to the router (ours). */
  const observeLag = (e: EventEnvelope) =>
    core.metrics.kvEventLag.observe(
      { topic: e.topic },
      Math.max(0, Date.now() - e.published_at) / 1000,
    );

  if (openEvents && core.kv && (config.routerKvEvents || config.routerReplicaSync)) {
    const plane = openEvents();
    const kv = core.kv;
    if (config.routerKvEvents) {
      const subject = 'namespace.*.component.*.kv-events';
      if (config.routerEventThreads > 1 && plane.subscribeRaw) {
        // Decoded by the event threads, not here.
        plane.subscribeRaw(subject, (message) => kv.onKvEventRaw(message));
      } else {
        if (config.routerEventThreads > 1) {
          logger.warn('this event plane has no raw form: KV events are decoded inline', {
            event_plane: config.eventPlane,
          });
        }
        plane.subscribe(subject, (e) => {
          observeLag(e);
          kv.onKvEvent(e.payload);
        });
      }
    }
    if (config.routerReplicaSync) {
      // The payload went out through exact JSON; peers' events arrive the same way.
      plane.subscribe(
        'namespace.*.component.*.active_sequences_events',
        (e) => kv.onReplicaEvent(e.payload),
      );
    }
  }

  /** Worker load (`kv_metrics`) for load shedding, once a threshold is in force. */
  let loadFeed = false;
  const feedLoad = (checked: boolean) => {
    if (!openEvents || loadFeed || !core.thresholds.any()) return;
    loadFeed = true;
    // A threshold set later (POST /busy_threshold) cannot stop start-up: say what is missing.
    if (!checked && options.checkEvents) {
      options.checkEvents(BUSY_NEEDS).catch((error: unknown) =>
        logger.warn((error as Error).message)
      );
    }
    openEvents().subscribe('namespace.*.kv_metrics', (e) => {
      observeLag(e);
      core.busy.onLoad(e.payload);
    });
  };
  feedLoad(true);
  core.thresholds.onChange(() => feedLoad(false));

  const app = createApp(options.routes ?? manifest, core, options.app);

  if (options.preloadTokenizers) {
    core.models.onChange((names) => {
      for (const name of names) {
        const model = core.models.get(name);
        if (model?.card.model_input === 'Tokens') {
          void core.preprocessors.get(model).catch(() => {});
        }
      }
    });
  }

  const watching = new AbortController();
  const source = options.discovery;
  let poller: DiscoveryPoller | undefined;
  if (source && 'poll' in source) {
    poller = createDiscoveryPoller({
      feed: discoveryFeed(createDiscovery(source.poll, { logger })),
      registry: core.models,
      config,
      logger,
      metrics: core.metrics,
      maxAgeMs: source.maxAgeMs,
    });
  } else if (source) {
    // /health says "not ready" until the first snapshot of discovery is in the registry.
    startModelWatcher({
      feed: discoveryFeed(createDiscovery(source.watch, { logger })),
      registry: core.models,
      config,
      logger,
      metrics: core.metrics,
      signal: watching.signal,
    }).then(() => core.lifecycle.markReady(), (error: unknown) => {
      logger.error('initial model discovery failed', { error });
      core.lifecycle.markDiscoveryFailed(error instanceof Error ? error.message : String(error));
    });
  }

  return {
    core,
    app,
    ...(poller ? { poller } : {}),
    events: () => events,
    async close() {
      watching.abort();
      await Promise.allSettled([
        core.plane.close(),
        core.preprocessors.close(),
        events?.close(),
        core.kv?.close(),
        core.responseStore?.close(),
      ]);
    },
  };
}
