/**
 * The `PreprocessorSource` port: loads each served model's tokenizer and chat template from the
 * files its card names (or `--model-path`), once per card version, and runs templating and
 * tokenization inline or in `--dyn-preprocess-workers` worker threads.
 */
import { dirname } from 'node:path';
import type { PreprocessorSource, PromptPreprocessor } from '../core/core.ts';
import { cardFingerprint } from '../core/discovery/model-card.ts';
import type { ServedModel } from '../core/discovery/models.ts';
import { ServiceUnavailableError } from '../core/errors.ts';
import type { Logger } from '../core/logger.ts';
import { readModelDir } from './model-dir.ts';
import { createPreprocessPool, type PreprocessPool } from './preprocess-pool.ts';

export interface PreprocessorSourceOptions {
  /** Worker threads for templating and tokenization; 0 runs them inline. @default 0 */
  workers?: number;
  logger: Logger;
}

/** Where a card's tokenizer lives: the directory of its tokenizer.json. */
export function modelDirOf(model: ServedModel): string | undefined {
  const path = model.card.tokenizer?.hf_tokenizer_json?.path;
  return path ? dirname(path) : undefined;
}

export function createPreprocessorSource(options: PreprocessorSourceOptions): PreprocessorSource {
  const cache = new Map<string, Promise<PromptPreprocessor>>();
  const pools = new Set<PreprocessPool>();

  async function load(model: ServedModel): Promise<PromptPreprocessor> {
    const dir = modelDirOf(model);
    if (!dir) {
      throw new ServiceUnavailableError(
        `Model "${model.name}" has no tokenizer in its card; start the frontend with --model-path`,
      );
    }
    const files = await readModelDir(dir);
    // With 0 workers the pool runs everything inline, behind the same interface.
    const pool = await createPreprocessPool({ workers: options.workers ?? 0, files });
    pools.add(pool);
    options.logger.info('loaded tokenizer and chat template', {
      model: model.name,
      dir,
      worker_threads: pool.workers,
    });
    return pool;
  }

  return {
    get(model) {
      const key = `${model.name}\u0000${cardFingerprint(model.card)}`;
      let loaded = cache.get(key);
      if (!loaded) {
        loaded = load(model);
        cache.set(key, loaded);
        // A failed load is retried by the next request rather than cached.
        loaded.catch(() => cache.delete(key));
      }
      return loaded.catch((error: unknown) => {
        if (error instanceof ServiceUnavailableError) throw error;
        options.logger.error("could not load the model's tokenizer", { model: model.name, error });
        throw new ServiceUnavailableError(
          `Model "${model.name}" cannot be served: its tokenizer did not load`,
          {
            cause: error,
          },
        );
      });
    },
    async close() {
      await Promise.allSettled([...pools].map((pool) => pool.close()));
      pools.clear();
      cache.clear();
    },
  };
}
