/**
 * The models the frontend serves, as discovery reports them. A model is listed while at least
 * one worker serves it. Discovery backends (the workers issue) feed this registry.
 */

export interface ServedModel {
  /** The name clients use in `model`. */
  name: string;
  /** Unix seconds when the first worker of the model appeared. */
  created: number;
  contextLength?: number;
}

export interface ModelRegistry {
  list(): ServedModel[];
  get(name: string): ServedModel | undefined;
  upsert(model: ServedModel): void;
  remove(name: string): void;
}

export function createModelRegistry(): ModelRegistry {
  const models = new Map<string, ServedModel>();
  return {
    list: () => [...models.values()].sort((a, b) => a.name.localeCompare(b.name)),
    get: (name) => models.get(name),
    upsert: (model) => void models.set(model.name, model),
    remove: (name) => void models.delete(name),
  };
}
