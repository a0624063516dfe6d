/**
 * The SSE frame of an OpenAI streaming chunk (`data: {...}\n\n`) from a pre-serialized per-stream
 * prefix: `id`, `object`, `created` and `model` are the same in every chunk of a stream, so they
 * are written once; each chunk adds its `choices` (and `usage`, `nvext` when present). The text is
 * exactly `data: ${jsonText(chunk)}\n\n` for chunks built as `{...base, choices, usage?, nvext?}`.
 */
import { jsonText } from '../../json.ts';

export interface ChunkBase {
  id: string;
  object: string;
  created: number;
  model: string;
}

/** Chunks whose keys are not the base's four, `choices`, `usage`, `nvext` in that order. */
const KEYS = ['id', 'object', 'created', 'model', 'choices', 'usage', 'nvext'];

export function chunkFramer(base: ChunkBase): (chunk: unknown) => string | undefined {
  const prefix = `data: ${jsonText(base).slice(0, -1)},"choices":`;
  return (chunk) => {
    const c = chunk as Record<string, unknown> & ChunkBase;
    // Anything else (a chunk another layer reshaped) takes the generic path.
    if (c.id !== base.id || c.model !== base.model || c.created !== base.created) return undefined;
    if (c.object !== base.object) return undefined;
    let n = 0;
    for (const key in c) {
      while (n < KEYS.length && KEYS[n] !== key) n++;
      if (n === KEYS.length) return undefined;
    }
    let text = prefix + choicesText(c.choices);
    if (c.usage !== undefined) text += `,"usage":${jsonText(c.usage)}`;
    if (c.nvext !== undefined) text += `,"nvext":${jsonText(c.nvext)}`;
    return `${text}}\n\n`;
  };
}

/**
 * The JSON of `choices`; a chat choice that only carries text (the bulk of a stream) is written
 * directly, the key order being `chat.ts`'s: index, delta (role, content), logprobs,
 * finish_reason.
 */
const CHOICE_KEYS = ['index', 'delta', 'logprobs', 'finish_reason'];
const DELTA_KEYS = ['role', 'content'];

function choicesText(choices: unknown): string {
  const only = Array.isArray(choices) && choices.length === 1
    ? choices[0] as Record<string, unknown>
    : undefined;
  const delta = only?.delta as Record<string, unknown> | undefined;
  if (
    !only || !delta || typeof only.index !== 'number' || only.logprobs !== null ||
    only.finish_reason !== null || typeof delta.content !== 'string'
  ) return jsonText(choices);
  let at = 0;
  for (const key in only) if (key !== CHOICE_KEYS[at++]) return jsonText(choices);
  const role = delta.role === 'assistant';
  let deltaAt = role ? 0 : 1;
  for (const key in delta) if (key !== DELTA_KEYS[deltaAt++]) return jsonText(choices);
  if (at !== CHOICE_KEYS.length || deltaAt !== DELTA_KEYS.length) return jsonText(choices);
  return `[{"index":${only.index},"delta":{${role ? '"role":"assistant",' : ''}"content":${
    JSON.stringify(delta.content)
  }},"logprobs":null,"finish_reason":null}]`;
}
