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
 * The JSON of `choices`; a chat choice that only carries text (the bulk of a stream: `content`, or
 * `reasoning_content` when a reasoning parser is on) is written directly, the key order being
 * `chat.ts`'s: index, delta (role, then the one text field), logprobs, finish_reason.
 */
const CHOICE_KEYS = ['index', 'delta', 'logprobs', 'finish_reason'];
const TEXT_KEYS = new Set(['content', 'reasoning_content']);

function choicesText(choices: unknown): string {
  const only = Array.isArray(choices) && choices.length === 1
    ? choices[0] as Record<string, unknown>
    : undefined;
  const delta = only?.delta as Record<string, unknown> | undefined;
  if (
    !only || !delta || typeof only.index !== 'number' || only.logprobs !== null ||
    only.finish_reason !== null
  ) return jsonText(choices);
  let at = 0;
  for (const key in only) if (key !== CHOICE_KEYS[at++]) return jsonText(choices);
  if (at !== CHOICE_KEYS.length) return jsonText(choices);
  // The delta: an optional `role: "assistant"` first, then exactly one text field.
  let role = false;
  let field: string | undefined;
  let n = 0;
  for (const key in delta) {
    if (n === 0 && key === 'role' && delta.role === 'assistant') role = true;
    else if (field === undefined && TEXT_KEYS.has(key) && typeof delta[key] === 'string') {
      field = key;
    } else return jsonText(choices);
    n++;
  }
  if (field === undefined) return jsonText(choices);
  return `[{"index":${only.index},"delta":{${role ? '"role":"assistant",' : ''}"${field}":${
    JSON.stringify(delta[field])
  }},"logprobs":null,"finish_reason":null}]`;
}
