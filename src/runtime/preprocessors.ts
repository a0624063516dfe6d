/**
 * The `PreprocessorSource` port: loads each served model's tokenizer and chat template from the
 * files its card names (or `--model-path`), once per card version, and runs templating and
 * tokenization inline or in `--dyn-preprocess-workers` worker threads.
 */
import { dirname } from 'node:path';
import type { PreprocessorSource, PromptPreprocessor } from '../core/core.ts';
import type { ServedModel } from '../core/discovery/models.ts';
import { ServiceUnavailableError } from '../core/errors.ts';
import type { Logger } from '../core/logger.ts';
import { createPreprocessorCache } from '../core/preprocess/source-cache.ts';
import { readModelDir } from './model-dir.ts';
import { createPreprocessPool, type PreprocessPool } from '../adapters/threads/preprocess-pool.ts';

export interface PreprocessorSourceOptions {
  /** Worker threads for templating and tokenization; 0 runs them inline. @default 0 */
  workers?: number;
  /** Requests under this many characters run inline even with workers. @default 0 */
  inlineBelowChars?: number;
  logger: Logger;
}

/** Where a card's tokenizer lives: the directory of its tokenizer.json. */
export function modelDirOf(model: ServedModel): string | undefined {
  const path = model.card.tokenizer?.hf_tokenizer_json?.path;
  return path ? dirname(path) : undefined;
}

export function createPreprocessorSource(options: PreprocessorSourceOptions): PreprocessorSource {
  const pools = new Set<PreprocessPool>();
  let closed = false;

  async function load(model: ServedModel): Promise<PromptPreprocessor> {
    const dir = modelDirOf(model);
    if (!dir) {
      throw new ServiceUnavailableError(
        `Model "${model.name}" has no tokenizer in its card; start the frontend with --model-path`,
      );
    }
    const files = await readModelDir(dir);
    // With 0 workers the pool runs everything inline, behind the same interface.
    const pool = await createPreprocessPool({
      workers: options.workers ?? 0,
      files,
      inlineBelowChars: options.inlineBelowChars,
    });
    if (closed) {
      // The source closed while this pool was starting: its threads would outlive it.
      await pool.close();
      throw new ServiceUnavailableError('The frontend is shutting down');
    }
    pools.add(pool);
    options.logger.info('loaded tokenizer and chat template', {
      model: model.name,
      dir,
      worker_threads: pool.workers,
    });
    return pool;
  }

  const cached = createPreprocessorCache(load, options.logger);
  return {
    get: (model) => cached.get(model),
    async close() {
      closed = true;
      await Promise.allSettled([...pools].map((pool) => pool.close()));
      pools.clear();
      cached.clear();
    },
  };
}
