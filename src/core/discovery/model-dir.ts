/**
 * A Hugging Face model directory (config.json, tokenizer.json, tokenizer_config.json,
 * generation_config.json) turned into what a worker publishes: its model card, EOS ids and, for
 * the simulated engine, a vocabulary of readable words. Pure: the caller reads the files.
 */
import {
  formatModelTypes,
  type ModelCard,
  type ModelType,
  type RuntimeConfig,
  slugify,
} from './model-card.ts';

/** A file of the model directory: where it is and its text. */
export interface ModelFile {
  path: string;
  text: string;
}

export interface ModelDirFiles {
  dir: string;
  config?: ModelFile;
  tokenizer?: ModelFile;
  tokenizerConfig?: ModelFile;
  generationConfig?: ModelFile;
}

/** SHA-256 of a text as `sha256:<hex>` (Web Crypto, available on every runtime). */
export async function checksumOf(text: string): Promise<string> {
  const digest = await crypto.subtle.digest('SHA-256', new TextEncoder().encode(text));
  return `sha256:${
    [...new Uint8Array(digest)].map((b) => b.toString(16).padStart(2, '0')).join('')
  }`;
}

function parseJson(file: ModelFile | undefined): Record<string, unknown> {
  if (!file) return {};
  try {
    const value = JSON.parse(file.text) as unknown;
    return value && typeof value === 'object' ? value as Record<string, unknown> : {};
  } catch (error) {
    throw new Error(`${file.path} is not valid JSON: ${(error as Error).message}`);
  }
}

const positiveInt = (v: unknown) =>
  typeof v === 'number' && Number.isInteger(v) && v > 0 ? v : undefined;

/** The longest context the model architecture supports. */
export function maxContextOf(files: ModelDirFiles): number | undefined {
  const config = parseJson(files.config);
  const text = (config.text_config ?? {}) as Record<string, unknown>;
  const tokenizerConfig = parseJson(files.tokenizerConfig);
  const fromConfig = positiveInt(config.max_position_embeddings) ??
    positiveInt(text.max_position_embeddings);
  const fromTokenizer = positiveInt(tokenizerConfig.model_max_length);
  // tokenizer_config's model_max_length is often a huge sentinel; config.json wins when present.
  return fromConfig ?? (fromTokenizer && fromTokenizer < 1e9 ? fromTokenizer : undefined);
}

/** Token ids that end generation: generation_config, then config, then the tokenizer's eos. */
export function eosTokenIdsOf(files: ModelDirFiles): number[] {
  const ids = (v: unknown): number[] =>
    typeof v === 'number' ? [v] : Array.isArray(v) ? v.filter((x) => typeof x === 'number') : [];
  const fromGeneration = ids(parseJson(files.generationConfig).eos_token_id);
  if (fromGeneration.length > 0) return fromGeneration;
  const fromConfig = ids(parseJson(files.config).eos_token_id);
  if (fromConfig.length > 0) return fromConfig;
  const eos = parseJson(files.tokenizerConfig).eos_token;
  const eosText = typeof eos === 'string' ? eos : (eos as { content?: string } | null)?.content;
  const added = parseJson(files.tokenizer).added_tokens;
  if (eosText && Array.isArray(added)) {
    const hit = added.find((t: { content?: string }) => t.content === eosText) as
      | { id?: number }
      | undefined;
    if (typeof hit?.id === 'number') return [hit.id];
  }
  return [];
}

/**
 * Ids of vocabulary entries that read as whole lower-case words with a leading space (byte-level
 * BPE writes the space as `Ġ`, SentencePiece as `▁`), sorted by id: the simulated engine's output
 * alphabet, so its text looks like prose.
 */
export function wordTokenIdsOf(tokenizerJson: string, options: { limit?: number } = {}): number[] {
  const parsed = JSON.parse(tokenizerJson) as { model?: { vocab?: unknown } };
  const vocab = parsed.model?.vocab;
  const entries: [string, number][] = Array.isArray(vocab)
    ? vocab.map((entry, id) => [String((entry as unknown[])[0]), id])
    : Object.entries((vocab ?? {}) as Record<string, number>);
  const ids = entries.filter(([token]) => /^[Ġ▁][a-z]{3,9}$/.test(token)).map(([, id]) => id)
    .sort((a, b) => a - b);
  return ids.slice(0, options.limit ?? 4096);
}

export interface WorkerCardOptions {
  /** Served name. @default the directory's last path segment */
  name?: string;
  kvCacheBlockSize: number;
  /** @default ['Chat', 'Completions'] */
  modelTypes?: readonly ModelType[];
  /** @default 'Tokens' */
  modelInput?: ModelCard['model_input'];
  runtimeConfig?: RuntimeConfig;
  migrationLimit?: number;
}

/** The model card a worker publishes for a local model directory. */
export async function modelCardFor(
  files: ModelDirFiles,
  options: WorkerCardOptions,
): Promise<ModelCard> {
  const name = options.name ?? files.dir.replace(/\/+$/, '').split('/').pop() ?? 'model';
  const checked = async (file: ModelFile | undefined) =>
    file ? { path: file.path, checksum: await checksumOf(file.text) } : undefined;
  const contextLength = maxContextOf(files);
  const card: ModelCard = {
    display_name: name,
    slug: slugify(name),
    source_path: files.dir,
    kv_cache_block_size: options.kvCacheBlockSize,
    model_type: formatModelTypes(options.modelTypes ?? ['Chat', 'Completions']),
    model_input: options.modelInput ?? 'Tokens',
    runtime_config: { context_length: contextLength, ...options.runtimeConfig },
    ...(contextLength ? { context_length: contextLength } : {}),
    ...(options.migrationLimit === undefined ? {} : { migration_limit: options.migrationLimit }),
  };
  const config = await checked(files.config);
  if (config) card.model_info = { hf_config_json: config };
  const tokenizer = await checked(files.tokenizer);
  if (tokenizer) card.tokenizer = { hf_tokenizer_json: tokenizer };
  const tokenizerConfig = await checked(files.tokenizerConfig);
  if (tokenizerConfig) card.prompt_formatter = { hf_tokenizer_config_json: tokenizerConfig };
  const generation = await checked(files.generationConfig);
  if (generation) card.gen_config = { hf_generation_config_json: generation };
  return card;
}
