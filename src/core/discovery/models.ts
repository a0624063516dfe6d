/**
 * The models the frontend serves, built from what discovery reports: model cards (`v1/mdc`)
 * and endpoint instances (`v1/instances`). A model is listed while at least one card for it is
 * registered; a worker is routable while it has both a card and a transport address.
 */
import { cardFingerprint, contextLengthOf, type ModelCard, modelTypesOf } from './model-card.ts';
import type { EndpointId, TransportAddress } from './types.ts';

export interface WorkerInstance {
  /** Lower-case hex u64. */
  instanceId: string;
  endpoint: EndpointId;
  transport: TransportAddress;
}

/** Where a card was registered: its `v1/mdc` key parts. */
export interface CardSource extends EndpointId {
  instanceId: string;
  suffix?: string;
}

export interface ServedModel {
  /** The name clients use in `model`. */
  name: string;
  /** Unix seconds when the first card of the model appeared. */
  created: number;
  /** The card of the first worker; every other card agrees with it. */
  card: ModelCard;
  contextLength?: number;
}

export type AddCardResult = { ok: true; model: ServedModel } | { ok: false; reason: string };

export interface ModelRegistry {
  list(): ServedModel[];
  /** A model by its name or one of its card's `aliases` (the model keeps its primary name). */
  get(name: string): ServedModel | undefined;
  /** Every alias with the model it names, for `/v1/models`; a primary name always wins. */
  aliases(): Array<{ alias: string; model: ServedModel }>;
  /** Routable workers of a model: a card and a live endpoint instance. */
  instances(name: string): WorkerInstance[];
  /**
   * Prefill workers of a model (cards whose `model_type` has `Prefill` or `worker_type` is
   * `Prefill`): kept apart from the model's serving workers and never listed as a model.
   */
  prefillInstances(name: string): WorkerInstance[];
  /** Every endpoint instance discovery reports, with or without a card. */
  allInstances(): WorkerInstance[];
  /** Adds a worker's card; refused when it disagrees with the cards already serving the name. */
  addCard(source: CardSource, card: ModelCard): AddCardResult;
  removeCard(source: CardSource): void;
  setInstance(instance: WorkerInstance): void;
  removeInstance(endpoint: EndpointId, instanceId: string): void;
  /** Called after every change, with the model names it touched. */
  onChange(listener: (models: string[]) => void): () => void;
}

export const endpointPath = (e: EndpointId) => `${e.namespace}/${e.component}/${e.endpoint}`;
const cardKey = (s: CardSource) =>
  `${endpointPath(s)}/${s.instanceId}${s.suffix ? `/${s.suffix}` : ''}`;
const instanceKey = (e: EndpointId, id: string) => `${endpointPath(e)}/${id}`;

interface ModelState {
  model: ServedModel;
  fingerprint: string;
  /** cardKey -> source */
  cards: Map<string, CardSource>;
}

export interface ModelRegistryOptions {
  /** Unix seconds. @default () => Math.floor(Date.now() / 1000) */
  nowSeconds?: () => number;
}

/** Prefill pools live in the same maps under this key prefix (not a valid model name start). */
const PREFILL = '\u0000prefill:';
const isPrefillCard = (card: ModelCard) =>
  card.worker_type === 'Prefill' || modelTypesOf(card).includes('Prefill');
const publicName = (key: string) => key.startsWith(PREFILL) ? key.slice(PREFILL.length) : key;

export function createModelRegistry(options: ModelRegistryOptions = {}): ModelRegistry {
  const nowSeconds = options.nowSeconds ?? (() => Math.floor(Date.now() / 1000));
  const models = new Map<string, ModelState>();
  /** cardKey -> model name */
  const cardOwner = new Map<string, string>();
  /** instanceKey -> instance */
  const live = new Map<string, WorkerInstance>();
  const listeners = new Set<(models: string[]) => void>();
  const changed = (keys: string[]) => {
    const names = [...new Set(keys.map(publicName))];
    for (const listener of listeners) listener(names);
  };

  return {
    list: () =>
      [...models.entries()].filter(([key]) => !key.startsWith(PREFILL)).map(([, s]) => s.model)
        .sort((a, b) => a.name.localeCompare(b.name)),
    get: (name) => stateOf(name)?.model,
    aliases() {
      const out: Array<{ alias: string; model: ServedModel }> = [];
      const seen = new Set<string>();
      for (const [key, state] of models) {
        if (key.startsWith(PREFILL)) continue;
        for (const alias of state.model.card.aliases ?? []) {
          if (models.has(alias) || seen.has(alias) || alias === '') continue;
          seen.add(alias);
          out.push({ alias, model: state.model });
        }
      }
      return out.sort((a, b) => a.alias.localeCompare(b.alias));
    },
    prefillInstances(name) {
      const primary = stateOf(name)?.model.name ?? name;
      return this.instances(PREFILL + primary);
    },
    instances(name) {
      const state = stateOf(name);
      if (!state) return [];
      const out: WorkerInstance[] = [];
      const seen = new Set<string>();
      for (const source of state.cards.values()) {
        const key = instanceKey(source, source.instanceId);
        const instance = live.get(key);
        if (instance && !seen.has(key)) {
          seen.add(key);
          out.push(instance);
        }
      }
      return out.sort((
        a,
        b,
      ) => (a.instanceId < b.instanceId ? -1 : a.instanceId > b.instanceId ? 1 : 0));
    },
    allInstances: () =>
      [...live.values()].sort((a, b) =>
        endpointPath(a.endpoint).localeCompare(endpointPath(b.endpoint)) ||
        a.instanceId.localeCompare(b.instanceId)
      ),
    addCard(source, card) {
      const key = cardKey(source);
      const name = isPrefillCard(card) ? PREFILL + card.display_name : card.display_name;
      const fingerprint = cardFingerprint(card);
      const previousOwner = cardOwner.get(key);
      if (previousOwner !== undefined && previousOwner !== name) this.removeCard(source);
      let state = models.get(name);
      if (
        state && state.fingerprint !== fingerprint &&
        !(state.cards.size === 1 && state.cards.has(key))
      ) {
        const [first] = state.cards.keys();
        return {
          ok: false,
          reason:
            `card of ${key} disagrees with the card of ${first} already serving "${card.display_name}" ` +
            `(${fingerprint} vs ${state.fingerprint}); drain the old workers before deploying ` +
            'another version under the same name',
        };
      }
      if (!state || state.fingerprint !== fingerprint) {
        state = {
          model: {
            name: card.display_name,
            created: state?.model.created ?? nowSeconds(),
            card,
            contextLength: contextLengthOf(card),
          },
          fingerprint,
          cards: state?.cards ?? new Map(),
        };
        models.set(name, state);
      }
      state.cards.set(key, source);
      cardOwner.set(key, name);
      changed([name]);
      return { ok: true, model: state.model };
    },
    removeCard(source) {
      const key = cardKey(source);
      const name = cardOwner.get(key);
      if (name === undefined) return;
      cardOwner.delete(key);
      const state = models.get(name);
      state?.cards.delete(key);
      if (state && state.cards.size === 0) models.delete(name);
      changed([name]);
    },
    setInstance(instance) {
      live.set(instanceKey(instance.endpoint, instance.instanceId), instance);
      changed(namesServedBy(instance.endpoint, instance.instanceId));
    },
    removeInstance(endpoint, instanceId) {
      if (live.delete(instanceKey(endpoint, instanceId))) {
        changed(namesServedBy(endpoint, instanceId));
      }
    },
    onChange(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
  };

  /** The model `name` names: its own, else the first (by name) whose card lists it as an alias. */
  function stateOf(name: string): ModelState | undefined {
    const own = models.get(name);
    if (own || name.startsWith(PREFILL)) return own;
    let found: ModelState | undefined;
    for (const [key, state] of models) {
      if (key.startsWith(PREFILL) || !state.model.card.aliases?.includes(name)) continue;
      if (!found || state.model.name < found.model.name) found = state;
    }
    return found;
  }

  function namesServedBy(endpoint: EndpointId, instanceId: string): string[] {
    const prefix = `${instanceKey(endpoint, instanceId)}`;
    const names = new Set<string>();
    for (const [key, name] of cardOwner) {
      if (key === prefix || key.startsWith(`${prefix}/`)) names.add(name);
    }
    return [...names];
  }
}
