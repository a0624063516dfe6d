/** Reads a Hugging Face model directory's JSON files for `modelCardFor()` and friends. */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { ModelDirFiles, ModelFile } from '../core/discovery/model-dir.ts';

async function optional(dir: string, name: string): Promise<ModelFile | undefined> {
  const path = join(dir, name);
  try {
    return { path, text: await readFile(path, 'utf8') };
  } catch (error) {
    if ((error as { code?: string }).code === 'ENOENT') return undefined;
    throw error;
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
    throw new Error(`${dir} is not a model directory: it has no tokenizer.json`);
  }
  return { dir, config, tokenizer, tokenizerConfig, generationConfig };
}
