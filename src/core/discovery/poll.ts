/**
 * Discovery for hosts that cannot hold a watch open between requests (serverless isolates): the
 * registry is refreshed from a full listing when a request finds it older than `maxAgeMs`, and
 * the listing is diffed against the previous one, so the registry sees the same added/removed
 * changes a watch would have delivered. One listing runs at a time; concurrent requests wait for
 * it. A failed listing keeps the last good snapshot (logged) and is retried after `retryMs`.
 */
import type { Config } from '../config.ts';
import type { Logger } from '../logger.ts';
import type { FrontendMetrics } from '../metrics/metrics.ts';
import type { CardSource, ModelRegistry, WorkerInstance } from './models.ts';
import { createRegistryWriter, type DiscoveryFeed } from './watcher.ts';

export interface DiscoveryPollerOptions {
  feed: Pick<DiscoveryFeed, 'listModels' | 'listInstances'>;
  registry: ModelRegistry;
  config: Config;
  logger: Logger;
  metrics?: FrontendMetrics;
  /** How old the snapshot may be before a request re-reads discovery. @default 2000 */
  maxAgeMs?: number;
  /** After a failed listing, how long requests use the old snapshot before trying again. @default 1000 */
  retryMs?: number;
  /** Monotonic clock in milliseconds. @default () => performance.now() */
  now?: () => number;
}

export interface DiscoveryPoller {
  /**
   * Re-reads discovery when the snapshot is older than `maxAgeMs`. Rejects only while there has
   * never been a good snapshot; later failures keep the last one.
   */
  refresh(): Promise<void>;
  /** Age of the registry's snapshot in milliseconds; undefined before the first good listing. */
  ageMs(): number | undefined;
}

const sourceKey = (s: CardSource) =>
  `${s.namespace}/${s.component}/${s.endpoint}/${s.instanceId}/${s.suffix ?? ''}`;
const instanceKey = (i: WorkerInstance) =>
  `${i.endpoint.namespace}/${i.endpoint.component}/${i.endpoint.endpoint}/${i.instanceId}`;

export function createDiscoveryPoller(options: DiscoveryPollerOptions): DiscoveryPoller {
  const { feed, logger } = options;
  const maxAgeMs = options.maxAgeMs ?? 2000;
  const retryMs = options.retryMs ?? 1000;
  const now = options.now ?? (() => performance.now());
  const writer = createRegistryWriter(options);
  let cards = new Map<string, { source: CardSource; text: string }>();
  let instances = new Map<string, { instance: WorkerInstance; text: string }>();
  let loadedAt: number | undefined;
  let nextTry = -Infinity;
  let running: Promise<void> | undefined;

  async function load(): Promise<void> {
    const [models, listed] = await Promise.all([feed.listModels(), feed.listInstances()]);
    const nextCards = new Map<string, { source: CardSource; text: string }>();
    for (const { source, card } of models) {
      const key = sourceKey(source);
      const text = JSON.stringify(card);
      nextCards.set(key, { source, text });
      if (cards.get(key)?.text !== text) writer.addCard(source, card);
    }
    for (const [key, { source }] of cards) if (!nextCards.has(key)) writer.removeCard(source);
    const nextInstances = new Map<string, { instance: WorkerInstance; text: string }>();
    for (const instance of listed) {
      const key = instanceKey(instance);
      const text = JSON.stringify(instance.transport);
      nextInstances.set(key, { instance, text });
      if (instances.get(key)?.text !== text) writer.setInstance(instance);
    }
    for (const [key, { instance }] of instances) {
      if (!nextInstances.has(key)) writer.removeInstance(instance.endpoint, instance.instanceId);
    }
    cards = nextCards;
    instances = nextInstances;
    loadedAt = now();
  }

  return {
    refresh() {
      const t = now();
      if (loadedAt !== undefined && t - loadedAt < maxAgeMs) return Promise.resolve();
      if (running) return running;
      if (loadedAt !== undefined && t < nextTry) return Promise.resolve();
      running = load().catch((error: unknown) => {
        nextTry = now() + retryMs;
        if (loadedAt === undefined) throw error;
        logger.warn('discovery refresh failed; serving the last snapshot', {
          error,
          snapshot_age_ms: Math.round(now() - loadedAt),
        });
      }).finally(() => (running = undefined));
      return running;
    },
    ageMs: () => (loadedAt === undefined ? undefined : now() - loadedAt),
  };
}
