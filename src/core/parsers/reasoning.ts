/**
 * Reasoning parsers, selected by the model card's `reasoning_parser` (Dynamo's names): each
 * splits a choice's streamed text into reasoning and normal content as the deltas arrive,
 * holding back only what could be the start of a marker. gpt-oss (Harmony) is handled by
 * `harmony.ts`, which splits reasoning and tool calls together.
 */
import { partialLength } from './_scan.ts';

export interface ReasoningSplit {
  reasoning: string;
  content: string;
}

export interface ReasoningParser {
  push(text: string): ReasoningSplit;
  /** The stream ended: whatever is held back. */
  finish(): ReasoningSplit;
}

interface MarkerStyle {
  start: string;
  end: string;
  /** The model starts reasoning without writing the start marker (DeepSeek-R1 style). */
  force: boolean;
}

const THINK = { start: '<think>', end: '</think>' };

/** Dynamo's reasoning parser names and the marker style each uses. */
export const REASONING_PARSERS: Readonly<Record<string, MarkerStyle | 'harmony'>> = {
  basic: { ...THINK, force: false },
  qwen3: { ...THINK, force: false },
  nemotron_deci: { ...THINK, force: false },
  glm45: { ...THINK, force: false },
  deepseek_r1: { ...THINK, force: true },
  step3: { ...THINK, force: true },
  nemotron_nano: { ...THINK, force: true },
  nemotron3: { ...THINK, force: true },
  kimi_k25: { ...THINK, force: true },
  kimi: { start: '◁think▷', end: '◁/think▷', force: false },
  mistral: { start: '[THINK]', end: '[/THINK]', force: true },
  gpt_oss: 'harmony',
};

export function isReasoningParser(name: string): boolean {
  return Object.hasOwn(REASONING_PARSERS, name);
}

/** The start marker of a parser (for "the prompt already opened the reasoning" checks). */
export function reasoningStartOf(name: string): string | undefined {
  const style = REASONING_PARSERS[name];
  return typeof style === 'object' ? style.start : undefined;
}

export interface ReasoningParserOptions {
  /**
   * Start inside reasoning: the chat template ended the prompt with the start marker (Qwen3
   * with thinking on). Forced styles start there anyway. @default false
   */
  inReasoning?: boolean;
}

/** A marker-style reasoning parser; `name` must be a non-Harmony entry of REASONING_PARSERS. */
export function createReasoningParser(
  name: string,
  options: ReasoningParserOptions = {},
): ReasoningParser {
  const style = REASONING_PARSERS[name];
  if (typeof style !== 'object') throw new Error(`Not a marker reasoning parser: "${name}"`);
  const { start, end } = style;
  let reasoning = style.force || options.inReasoning === true;
  /** Nothing emitted yet: a forced parser still strips a leading start marker. */
  let fresh = true;
  /** Leading whitespace of a block is dropped (the newlines around the markers). */
  let trim = true;
  let buffer = '';

  let out: ReasoningSplit = { reasoning: '', content: '' };
  // Hoisted out of `run` (one closure per parser, not per delta).
  const put = (kind: 'reasoning' | 'content', text: string) => {
    let t = text;
    if (trim) {
      t = t.trimStart();
      if (t === '') return;
      trim = false;
    }
    fresh = false;
    out[kind] += t;
  };

  const run = (final: boolean): ReasoningSplit => {
    out = { reasoning: '', content: '' };
    for (;;) {
      if (reasoning && fresh) {
        // A forced parser may still see the start marker first: drop it.
        const lead = buffer.trimStart();
        if (lead.startsWith(start)) {
          buffer = lead.slice(start.length);
          fresh = false;
        } else if (!final && start.startsWith(lead)) {
          return out;
        }
      }
      const marker = reasoning ? end : start;
      const at = buffer.indexOf(marker);
      if (at >= 0) {
        put(reasoning ? 'reasoning' : 'content', buffer.slice(0, at));
        buffer = buffer.slice(at + marker.length);
        reasoning = !reasoning;
        fresh = false;
        trim = true;
        continue;
      }
      const keep = final ? 0 : partialLength(buffer, [marker]);
      put(reasoning ? 'reasoning' : 'content', buffer.slice(0, buffer.length - keep));
      buffer = buffer.slice(buffer.length - keep);
      return out;
    }
  };

  return {
    push(text) {
      buffer += text;
      return run(false);
    },
    finish() {
      return run(true);
    },
  };
}
