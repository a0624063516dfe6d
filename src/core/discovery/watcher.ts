/**
 * Feeds the model registry from discovery: model cards (`v1/mdc`) and endpoint instances
 * (`v1/instances`), filtered by namespace, with the frontend's overrides applied to each card.
 */
import type { Config } from '../config.ts';
import type { Logger } from '../logger.ts';
import type { FrontendMetrics, Gauge } from '../metrics/metrics.ts';
import { contextLengthOf, type ModelCard, parseModelCard } from './model-card.ts';
import type { CardSource, ModelRegistry, WorkerInstance } from './models.ts';
import { type Discovery, matchesNamespace, type ModelRef, namespaceFilter } from './discovery.ts';
import type { EndpointId } from './types.ts';

export type ModelEvent =
  | { kind: 'added'; source: CardSource; card: unknown }
  | { kind: 'removed'; source: CardSource };

export type InstanceEvent =
  | { kind: 'added'; instance: WorkerInstance }
  | { kind: 'removed'; endpoint: EndpointId; instanceId: string };

/** What the watcher needs from discovery. */
export interface DiscoveryFeed {
  listModels(): Promise<Array<{ source: CardSource; card: unknown }>>;
  listInstances(): Promise<WorkerInstance[]>;
  watchModels(signal: AbortSignal): AsyncIterable<ModelEvent>;
  watchInstances(signal: AbortSignal): AsyncIterable<InstanceEvent>;
}

/** Applies `--model-name`, `--kv-cache-block-size` and `--model-path` to a worker's card. */
export function applyCardOverrides(
  card: ModelCard,
  config: Pick<Config, 'modelName' | 'kvCacheBlockSize' | 'modelPath'>,
): ModelCard {
  const out: ModelCard = { ...card };
  if (config.modelName) out.display_name = config.modelName;
  if (config.kvCacheBlockSize) out.kv_cache_block_size = config.kvCacheBlockSize;
  if (config.modelPath) {
    const dir = config.modelPath.replace(/\/+$/, '');
    const local = (name: string, checksum?: string) => ({ path: `${dir}/${name}`, checksum });
    out.tokenizer = { hf_tokenizer_json: local('tokenizer.json') };
    out.prompt_formatter = { hf_tokenizer_config_json: local('tokenizer_config.json') };
    out.model_info = { hf_config_json: local('config.json') };
  }
  return out;
}

export interface ModelWatcherOptions {
  feed: DiscoveryFeed;
  registry: ModelRegistry;
  config: Config;
  logger: Logger;
  metrics?: FrontendMetrics;
  signal: AbortSignal;
}

const sourceName = (s: CardSource) =>
  `${s.namespace}/${s.component}/${s.endpoint}/${s.instanceId}${s.suffix ? `/${s.suffix}` : ''}`;

/** What both the watcher and the edge poller do to the registry: filter, parse, override, log. */
export interface RegistryWriter {
  addCard(source: CardSource, json: unknown): void;
  removeCard(source: CardSource): void;
  setInstance(instance: WorkerInstance): void;
  removeInstance(endpoint: EndpointId, instanceId: string): void;
}

/**
 * Applies discovery records to `registry` with the frontend's namespace filter and card overrides,
 * logging what is added, removed or refused; with `metrics`, keeps the per-model gauges current.
 */
export function createRegistryWriter(
  options: Pick<ModelWatcherOptions, 'registry' | 'config' | 'logger' | 'metrics'>,
): RegistryWriter {
  const { registry, config, logger } = options;
  const filter = namespaceFilter({
    namespace: config.namespace,
    namespacePrefix: config.namespacePrefix,
    strictPrefix: config.namespacePrefixStrict,
  });
  const wanted = (namespace: string) => matchesNamespace(filter, namespace);

  const addCard = (source: CardSource, json: unknown) => {
    if (!wanted(source.namespace)) return;
    const parsed = parseModelCard(json);
    if (!parsed.ok) {
      logger.warn('ignoring an invalid model card', {
        source: sourceName(source),
        error: parsed.error,
      });
      return;
    }
    const card = applyCardOverrides(parsed.card, config);
    const known = registry.get(card.display_name) !== undefined;
    const added = registry.addCard(source, card);
    if (!added.ok) {
      logger.error('refused a worker whose model card disagrees', {
        model: card.display_name,
        source: sourceName(source),
        reason: added.reason,
      });
    } else if (!known) {
      logger.info('added model', { model: card.display_name, source: sourceName(source) });
    }
  };
  const removeCard = (source: CardSource) => {
    const before = new Set(registry.list().map((m) => m.name));
    registry.removeCard(source);
    const after = new Set(registry.list().map((m) => m.name));
    for (const name of before) {
      if (!after.has(name)) {
        logger.info('removed model', { model: name, source: sourceName(source) });
      }
    }
  };

  if (options.metrics) {
    const metrics = options.metrics;
    registry.onChange((names) => {
      for (const name of names) publishModelGauges(metrics, registry, name);
    });
  }
  return {
    addCard,
    removeCard,
    setInstance(instance) {
      if (wanted(instance.endpoint.namespace)) registry.setInstance(instance);
    },
    removeInstance: (endpoint, instanceId) => registry.removeInstance(endpoint, instanceId),
  };
}

/**
 * Loads the current cards and instances, then follows changes in the background until `signal`
 * aborts. Resolves once the initial state is in the registry (the frontend is then ready).
 */
export async function startModelWatcher(options: ModelWatcherOptions): Promise<void> {
  const { feed, logger, signal } = options;
  const writer = createRegistryWriter(options);
  const addCard = writer.addCard;
  const removeCard = writer.removeCard;

  for (const { source, card } of await feed.listModels()) addCard(source, card);
  for (const instance of await feed.listInstances()) writer.setInstance(instance);

  const follow = async <E>(events: AsyncIterable<E>, apply: (event: E) => void, what: string) => {
    try {
      for await (const event of events) apply(event);
    } catch (error) {
      if (!signal.aborted) logger.error(`discovery watch of ${what} failed`, { error });
    }
  };
  void follow(feed.watchModels(signal), (event) => {
    if (event.kind === 'added') addCard(event.source, event.card);
    else removeCard(event.source);
  }, 'model cards');
  void follow(feed.watchInstances(signal), (event) => {
    if (event.kind === 'added') writer.setInstance(event.instance);
    else writer.removeInstance(event.endpoint, event.instanceId);
  }, 'instances');
}

function publishModelGauges(metrics: FrontendMetrics, registry: ModelRegistry, name: string) {
  const model = registry.get(name);
  const labels = { model: name };
  metrics.modelReady.set(labels, model && registry.instances(name).length > 0 ? 1 : 0);
  if (!model) return;
  const { card } = model;
  const rc = card.runtime_config;
  const values: Array<[Gauge, number | null | undefined]> = [
    [metrics.modelContextLength, contextLengthOf(card)],
    [metrics.modelKvCacheBlockSize, card.kv_cache_block_size],
    [metrics.modelTotalKvBlocks, rc.total_kv_blocks],
    [metrics.modelMaxNumSeqs, rc.max_num_seqs],
    [metrics.modelMaxNumBatchedTokens, rc.max_num_batched_tokens],
    [metrics.modelMigrationLimit, card.migration_limit],
  ];
  for (const [gauge, value] of values) if (typeof value === 'number') gauge.set(labels, value);
}

/** The frontend's view of a `Discovery`: every model card and every endpoint instance. */
export function discoveryFeed(discovery: Discovery): DiscoveryFeed {
  const source = (ref: ModelRef): CardSource => ({
    ...ref.endpoint,
    instanceId: ref.instanceId,
    ...(ref.suffix ? { suffix: ref.suffix } : {}),
  });
  return {
    listModels: async () =>
      (await discovery.listModels()).map((r) => ({ source: source(r), card: r.card })),
    listInstances: async () =>
      (await discovery.listInstances()).map((r) => ({
        instanceId: r.instanceId,
        endpoint: r.endpoint,
        transport: r.transport,
      })),
    async *watchModels(signal) {
      for await (const event of discovery.watchModels({}, signal)) {
        yield event.kind === 'added'
          ? { kind: 'added', source: source(event.record), card: event.record.card }
          : { kind: 'removed', source: source(event.id) };
      }
    },
    async *watchInstances(signal) {
      for await (const event of discovery.watchInstances({}, signal)) {
        yield event.kind === 'added'
          ? {
            kind: 'added',
            instance: {
              instanceId: event.record.instanceId,
              endpoint: event.record.endpoint,
              transport: event.record.transport,
            },
          }
          : { kind: 'removed', endpoint: event.id.endpoint, instanceId: event.id.instanceId };
      }
    },
  };
}
