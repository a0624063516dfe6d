/**
 * gpt-oss's Harmony format (reasoning parser `gpt_oss`, tool-call parser `harmony`): the answer
 * is a series of messages, each a header and a body:
 *
 *   <|channel|>analysis<|message|>REASONING<|end|>
 *   <|start|>assistant<|channel|>commentary to=functions.NAME <|constrain|>json<|message|>{ARGS}<|call|>
 *   <|start|>assistant<|channel|>final<|message|>ANSWER<|return|>
 *
 * `analysis` bodies are reasoning, `final` bodies (and `commentary` without a recipient) content,
 * and a body addressed `to=functions.NAME` a tool call whose arguments stream as they arrive.
 * Text before any header is content (a model that does not speak Harmony).
 */
import { partialLength } from './_scan.ts';
import type { ToolEvent } from './tool-calls.ts';

export type HarmonyEvent = ToolEvent | { type: 'reasoning'; text: string };

const MESSAGE = '<|message|>';
const BODY_ENDS = ['<|end|>', '<|call|>', '<|return|>', '<|start|>', '<|channel|>'];
const HEADER_OPENERS = ['<|start|>', '<|channel|>'];

export interface HarmonyParserOptions {
  /** Turn `to=functions.*` messages into tool calls; else their bodies are dropped. */
  toolCalls: boolean;
}

export function createHarmonyParser(options: HarmonyParserOptions) {
  let out: HarmonyEvent[] = [];
  let state: 'lead' | 'header' | 'body' = 'lead';
  let buffer = '';
  let header = '';
  let kind: 'reasoning' | 'content' | 'call' | 'drop' = 'content';
  let index = -1;
  let calls = 0;
  let trim = true;

  const emit = (event: HarmonyEvent) => {
    const last = out[out.length - 1];
    if (event.type === 'content' || event.type === 'reasoning') {
      if (event.text === '') return;
      if (last?.type === event.type) {
        last.text += event.text;
        return;
      }
    }
    if (event.type === 'args' && last?.type === 'args' && last.index === event.index) {
      last.text += event.text;
      return;
    }
    out.push(event);
  };

  const body = (text: string) => {
    let t = text;
    if (trim) {
      t = t.trimStart();
      if (t === '') return;
      trim = false;
    }
    if (kind === 'reasoning') emit({ type: 'reasoning', text: t });
    else if (kind === 'content') emit({ type: 'content', text: t });
    else if (kind === 'call') emit({ type: 'args', index, text: t });
  };

  const open = (h: string) => {
    const channel = /<\|channel\|>\s*([A-Za-z_]+)/.exec(h)?.[1] ?? 'final';
    const recipient = /to=([^\s<]+)/.exec(h)?.[1];
    trim = true;
    if (recipient?.startsWith('functions.')) {
      if (!options.toolCalls) {
        kind = 'drop';
        return;
      }
      kind = 'call';
      index = calls++;
      emit({ type: 'call', index, name: recipient.slice('functions.'.length) });
    } else if (recipient) kind = 'drop';
    else kind = channel === 'analysis' ? 'reasoning' : 'content';
  };

  const close = () => {
    if (kind === 'call' && index >= 0) emit({ type: 'end', index });
    index = -1;
    kind = 'content';
  };

  const run = (final: boolean) => {
    for (;;) {
      if (state === 'lead') {
        const lead = buffer.trimStart();
        if (lead === '' && !final) return;
        if (HEADER_OPENERS.some((o) => lead.startsWith(o))) {
          state = 'header';
          buffer = lead;
          continue;
        }
        if (!final && HEADER_OPENERS.some((o) => o.startsWith(lead))) return;
        // Not Harmony: plain content until a header shows up.
        state = 'body';
        kind = 'content';
        continue;
      }
      if (state === 'header') {
        const at = buffer.indexOf(MESSAGE);
        if (at < 0) return;
        header = buffer.slice(0, at);
        buffer = buffer.slice(at + MESSAGE.length);
        open(header);
        state = 'body';
        continue;
      }
      // body
      let end = -1;
      let marker = '';
      for (const m of BODY_ENDS) {
        const i = buffer.indexOf(m);
        if (i >= 0 && (end < 0 || i < end)) [end, marker] = [i, m];
      }
      if (end >= 0) {
        body(buffer.slice(0, end));
        close();
        // <|start|> and <|channel|> open the next header; the others are consumed.
        buffer = HEADER_OPENERS.includes(marker)
          ? buffer.slice(end)
          : buffer.slice(end + marker.length);
        state = 'lead';
        continue;
      }
      const keep = final ? 0 : partialLength(buffer, BODY_ENDS);
      body(buffer.slice(0, buffer.length - keep));
      buffer = buffer.slice(buffer.length - keep);
      if (final) close();
      return;
    }
  };

  return {
    push(text: string): HarmonyEvent[] {
      out = [];
      buffer += text;
      run(false);
      return out;
    },
    finish(): HarmonyEvent[] {
      out = [];
      run(true);
      if (state === 'body' && index >= 0) close();
      return out;
    },
  };
}
