/**
 * The caching shared by every `PreprocessorSource`: a model's preprocessor is loaded once per
 * card version (name and fingerprint), a failed load is retried by the next request rather than
 * cached, and any failure reaches the client as a 503 that names the model (the cause is logged).
 */
import type { PromptPreprocessor } from '../core.ts';
import { cardFingerprint } from '../discovery/model-card.ts';
import type { ServedModel } from '../discovery/models.ts';
import { ServiceUnavailableError } from '../errors.ts';
import type { Logger } from '../logger.ts';

export interface PreprocessorCache {
  get(model: ServedModel): Promise<PromptPreprocessor>;
  clear(): void;
}

export function createPreprocessorCache(
  load: (model: ServedModel) => Promise<PromptPreprocessor>,
  logger: Logger,
): PreprocessorCache {
  const cache = new Map<string, Promise<PromptPreprocessor>>();
  return {
    get(model) {
      const key = `${model.name}\u0000${cardFingerprint(model.card)}`;
      let loaded = cache.get(key);
      if (!loaded) {
        loaded = load(model);
        cache.set(key, loaded);
        loaded.catch(() => cache.delete(key));
      }
      return loaded.catch((error: unknown) => {
        if (error instanceof ServiceUnavailableError) throw error;
        logger.error("could not load the model's tokenizer", { model: model.name, error });
        throw new ServiceUnavailableError(
          `Model "${model.name}" cannot be served: its tokenizer did not load`,
          { cause: error },
        );
      });
    },
    clear: () => cache.clear(),
  };
}
