/**
 * Token ids a client sent are checked against the model's vocabulary before any worker sees them
 * (docs/security.md): prompt token ids, `logit_bias` keys, `stop_token_ids`, `allowed_token_ids`,
 * `bad_words_token_ids` and `nvext.token_data`. An id the tokenizer does not have is a 400 that
 * names the field, as vLLM answers, not an engine error later.
 */
import { ValidationError } from '../errors.ts';

const DIGITS = /^\d{1,10}$/;

function checkId(id: number, vocabSize: number, param: string): void {
  if (!Number.isInteger(id) || id < 0 || id >= vocabSize) {
    throw new ValidationError(
      `Invalid value for "${param}": token id ${id} is out of the vocabulary (0 to ${
        vocabSize - 1
      })`,
      { param },
    );
  }
}

function checkList(ids: unknown, vocabSize: number, param: string): void {
  if (!Array.isArray(ids)) return;
  // The parameter's name is built only for an item that fails (a prompt has 10k+ of them).
  for (let i = 0; i < ids.length; i++) {
    const id: unknown = ids[i];
    if (Array.isArray(id)) checkList(id, vocabSize, `${param}[${i}]`);
    else if (
      typeof id === 'number' && !(Number.isInteger(id) && id >= 0 && id < vocabSize)
    ) checkId(id, vocabSize, `${param}[${i}]`);
  }
}

/** `logit_bias` keys are token ids written as decimal strings. */
export function checkLogitBias(bias: unknown, vocabSize: number): void {
  if (bias === null || typeof bias !== 'object') return;
  for (const key of Object.keys(bias)) {
    if (!DIGITS.test(key)) {
      throw new ValidationError(
        `Invalid value for "logit_bias": key ${JSON.stringify(key.slice(0, 50))} is not a token id`,
        { param: 'logit_bias' },
      );
    }
    checkId(Number(key), vocabSize, `logit_bias.${key}`);
  }
}

/** Every token id in `request` (and the given prompts) must be below `vocabSize`. */
export function checkTokenIds(
  request: Record<string, unknown>,
  vocabSize: number,
  prompts: ReadonlyArray<string | readonly number[]> = [],
): void {
  if (!(vocabSize > 0)) return;
  checkLogitBias(request.logit_bias, vocabSize);
  for (const field of ['stop_token_ids', 'allowed_token_ids', 'bad_words_token_ids']) {
    checkList(request[field], vocabSize, field);
  }
  const nvext = request.nvext as { token_data?: unknown } | null | undefined;
  checkList(nvext?.token_data, vocabSize, 'nvext.token_data');
  for (const [i, prompt] of prompts.entries()) {
    if (typeof prompt !== 'string') {
      checkList(prompt, vocabSize, prompts.length > 1 ? `prompt[${i}]` : 'prompt');
    }
  }
}
