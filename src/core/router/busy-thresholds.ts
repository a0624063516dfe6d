/**
 * Per-model busy thresholds, settable at runtime through `/busy_threshold`. Enforcement (load
 * shedding) reads them; this module only stores and validates them.
 */

export interface BusyThresholds {
  active_decode_blocks_threshold: number | null;
  active_prefill_tokens_threshold: number | null;
  active_prefill_tokens_threshold_frac: number | null;
}

export interface ModelThresholds extends BusyThresholds {
  model: string;
}

export const NO_THRESHOLDS: BusyThresholds = {
  active_decode_blocks_threshold: null,
  active_prefill_tokens_threshold: null,
  active_prefill_tokens_threshold_frac: null,
};

export interface BusyThresholdStore {
  /** The thresholds in force for `model`: its own, else the CLI defaults. */
  get(model: string): BusyThresholds;
  /** Merges the non-null fields of `update` into the model's thresholds and returns the result. */
  set(model: string, update: Partial<BusyThresholds>): BusyThresholds;
  /** Unsets `keys` (all when omitted) for `model`, overriding the CLI defaults too. */
  unset(model: string, keys?: readonly (keyof BusyThresholds)[]): BusyThresholds;
  /** Every model with thresholds of its own. */
  list(): ModelThresholds[];
  /** Whether any threshold is in force for any model (or by default). */
  any(): boolean;
  /** Called after every `set`. */
  onChange(listener: () => void): () => void;
}

export function createBusyThresholdStore(
  defaults: BusyThresholds = NO_THRESHOLDS,
): BusyThresholdStore {
  const byModel = new Map<string, BusyThresholds>();
  const listeners = new Set<() => void>();
  const get = (model: string) => byModel.get(model) ?? { ...defaults };
  const set = (t: BusyThresholds) => Object.values(t).some((v) => v !== null);
  return {
    get,
    any: () => set(defaults) || [...byModel.values()].some(set),
    onChange(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    set(model, update) {
      const next = { ...get(model) };
      for (const key of Object.keys(NO_THRESHOLDS) as (keyof BusyThresholds)[]) {
        const value = update[key];
        if (value !== undefined && value !== null) next[key] = value;
      }
      byModel.set(model, next);
      for (const listener of listeners) listener();
      return { ...next };
    },
    unset(model, keys) {
      const next = { ...get(model) };
      for (const key of keys ?? (Object.keys(NO_THRESHOLDS) as (keyof BusyThresholds)[])) {
        next[key] = null;
      }
      byModel.set(model, next);
      for (const listener of listeners) listener();
      return { ...next };
    },
    list: () =>
      [...byModel.entries()].sort(([a], [b]) => a.localeCompare(b)).map(([model, t]) => ({
        model,
        ...t,
      })),
  };
}
