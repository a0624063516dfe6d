/** Reads a Hugging Face model directory's JSON files for `modelCardFor()` and friends. */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { ModelDirFiles, ModelFile } from '../core/discovery/model-dir.ts';

/** The model directory cannot be used: the message is the whole story (no stack trace). */
export class ModelDirError extends Error {
  constructor(message: string, options: { cause?: unknown } = {}) {
    super(message, options);
    this.name = 'ModelDirError';
  }
}

async function optional(dir: string, name: string): Promise<ModelFile | undefined> {
  const path = join(dir, name);
  try {
    return { path, text: await readFile(path, 'utf8') };
  } catch (error) {
    const code = (error as { code?: string }).code;
    // ENOTDIR: `dir` is a file, which is "not a model directory" too.
    if (code === 'ENOENT' || code === 'ENOTDIR') return undefined;
    throw new ModelDirError(`Cannot read "${path}": ${(error as Error).message}`, {
      cause: error,
    });
  }
}

export async function readModelDir(dir: string): Promise<ModelDirFiles> {
  const [config, tokenizer, tokenizerConfig, generationConfig] = await Promise.all([
    optional(dir, 'config.json'),
    optional(dir, 'tokenizer.json'),
    optional(dir, 'tokenizer_config.json'),
    optional(dir, 'generation_config.json'),
  ]);
  if (!tokenizer) {
    throw new ModelDirError(`"${dir}" is not a model directory: it has no tokenizer.json`);
  }
  return { dir, config, tokenizer, tokenizerConfig, generationConfig };
}
