/**
 * The `PreprocessorSource` port over `fetch`, for hosts with no file system (the edge profile):
 * a model's tokenizer.json, tokenizer_config.json (chat template), config.json and
 * generation_config.json are fetched from the http(s) URLs its card names (or that
 * `--model-path <url>` puts there), checked against the card's `sha256:` checksums when it has
 * them, and loaded inline (no worker threads). Each card version is loaded once per source, so
 * once per isolate; a failed load is retried by the next request.
 */
import type { PreprocessorSource, PromptPreprocessor } from '../core/core.ts';
import type { CheckedFile } from '../core/discovery/model-card.ts';
import { checksumOf, type ModelDirFiles, type ModelFile } from '../core/discovery/model-dir.ts';
import type { ServedModel } from '../core/discovery/models.ts';
import { ServiceUnavailableError } from '../core/errors.ts';
import type { Logger } from '../core/logger.ts';
import { createPreprocessorCache } from '../core/preprocess/source-cache.ts';
import { loadModelPreprocessor } from '../core/preprocess/preprocessor.ts';

export interface HttpPreprocessorSourceOptions {
  logger: Logger;
  /** @default globalThis.fetch */
  fetch?: typeof fetch;
  /** Deadline of each file download. @default 30000 */
  requestTimeoutMs?: number;
}

/** A model file could not be downloaded, or did not match its card. */
export class ModelFileFetchError extends Error {
  constructor(message: string, options: { cause?: unknown } = {}) {
    super(message, options);
    this.name = 'ModelFileFetchError';
  }
}

const isUrl = (path: string | undefined): path is string =>
  path !== undefined && /^https?:\/\//i.test(path);

/** The URL of `name` beside the card's tokenizer.json. */
const sibling = (tokenizerUrl: string, name: string) => new URL(name, tokenizerUrl).href;

export function createHttpPreprocessorSource(
  options: HttpPreprocessorSourceOptions,
): PreprocessorSource {
  const doFetch = options.fetch ?? ((input, init) => fetch(input, init));
  const timeoutMs = options.requestTimeoutMs ?? 30_000;

  async function download(
    url: string,
    file: CheckedFile | undefined,
    required: boolean,
  ): Promise<ModelFile | undefined> {
    let response: Response;
    try {
      response = await doFetch(url, { signal: AbortSignal.timeout(timeoutMs) });
    } catch (cause) {
      throw new ModelFileFetchError(`Cannot fetch "${url}": ${(cause as Error).message}`, {
        cause,
      });
    }
    if (response.status === 404 && !required) {
      await response.body?.cancel();
      return undefined;
    }
    if (!response.ok) {
      await response.body?.cancel();
      throw new ModelFileFetchError(`Fetching "${url}" answered HTTP ${response.status}`);
    }
    const text = await response.text();
    if (file?.checksum?.startsWith('sha256:') && await checksumOf(text) !== file.checksum) {
      throw new ModelFileFetchError(`"${url}" does not match the card's checksum ${file.checksum}`);
    }
    return { path: url, text };
  }

  async function load(model: ServedModel): Promise<PromptPreprocessor> {
    const { card } = model;
    const tokenizer = card.tokenizer?.hf_tokenizer_json;
    if (!isUrl(tokenizer?.path)) {
      throw new ServiceUnavailableError(
        `Model "${model.name}" names no tokenizer URL (its card says "${
          tokenizer?.path ?? 'nothing'
        }"); on the edge profile set DYN_MODEL_PATH to an http(s) URL serving tokenizer.json`,
      );
    }
    const fileAt = (file: CheckedFile | undefined, name: string) =>
      isUrl(file?.path) ? { url: file.path, file } : { url: sibling(tokenizer.path, name) };
    const config = fileAt(card.model_info?.hf_config_json, 'config.json');
    const template = fileAt(
      card.prompt_formatter?.hf_tokenizer_config_json,
      'tokenizer_config.json',
    );
    const generation = fileAt(card.gen_config?.hf_generation_config_json, 'generation_config.json');
    const [tokenizerFile, configFile, templateFile, generationFile] = await Promise.all([
      download(tokenizer.path, tokenizer, true),
      download(config.url, config.file, false),
      download(template.url, template.file, false),
      download(generation.url, generation.file, false),
    ]);
    const files: ModelDirFiles = {
      dir: new URL('.', tokenizer.path).href,
      tokenizer: tokenizerFile,
      config: configFile,
      tokenizerConfig: templateFile,
      generationConfig: generationFile,
    };
    const preprocessor = await loadModelPreprocessor(files);
    options.logger.info('loaded tokenizer and chat template over HTTP', {
      model: model.name,
      url: files.dir,
    });
    return {
      tokenizer: preprocessor.tokenizer,
      eosTokenIds: preprocessor.eosTokenIds,
      contextLength: preprocessor.contextLength,
      renderChat: (request) => Promise.resolve().then(() => preprocessor.renderChat(request)),
      tokenizePrompt: (text) => Promise.resolve().then(() => preprocessor.tokenizePrompt(text)),
    };
  }

  const cached = createPreprocessorCache(load, options.logger);
  return {
    get: (model) => cached.get(model),
    close() {
      cached.clear();
      return Promise.resolve();
    },
  };
}
