/**
 * Tool-call parsers, selected by the model card's `tool_call_parser` (Dynamo's names). Each
 * turns a choice's streamed content into text and tool-call events as the deltas arrive: a
 * call's name as soon as it is known, then its arguments in pieces (JSON text, concatenating to
 * the whole arguments), then its end. Only what could be the start of a marker is held back.
 *
 * Formats (the family's markers around calls):
 * - hermes, qwen25: `<tool_call>{"name": N, "arguments": {...}}</tool_call>`, repeated
 * - nemotron_deci: `<TOOLCALL>[{"name": N, "arguments": {...}}, ...]</TOOLCALL>`
 * - jamba: `<tool_calls>[...]</tool_calls>`; default: `<TOOLCALL>` or `<|python_tag|>`
 * - llama3_json: `<|python_tag|>` or a `{` opening the answer, then `{"name": N,
 *   "parameters": {...}}` objects separated by `;`
 * - mistral: `[TOOL_CALLS][{"name": N, "arguments": {...}}, ...]`, or (newer)
 *   `[TOOL_CALLS]N[ARGS]{...}` per call
 * - phi4: `functools[{...}, ...]`
 * - deepseek_v3: `<｜tool▁calls▁begin｜><｜tool▁call▁begin｜>function<｜tool▁sep｜>N\n```json\n{...}\n```<｜tool▁call▁end｜>...<｜tool▁calls▁end｜>`
 * - deepseek_v3_1: `<｜tool▁calls▁begin｜><｜tool▁call▁begin｜>N<｜tool▁sep｜>{...}<｜tool▁call▁end｜>...<｜tool▁calls▁end｜>`
 * - kimi_k2: `<|tool_calls_section_begin|><|tool_call_begin|>functions.N:0<|tool_call_argument_begin|>{...}<|tool_call_end|>...<|tool_calls_section_end|>`
 * - qwen3_coder, nemotron_nano: `<tool_call><function=N><parameter=K>V</parameter>...</function></tool_call>`
 * - pythonic: `[f(a=1), g(b='x')]` as the answer, or in `<|python_start|>...<|python_end|>`
 * - glm47: `<tool_call>N<arg_key>K</arg_key><arg_value>V</arg_value>...</tool_call>`
 * - minimax_m2: `<minimax:tool_call><invoke name="N"><parameter name="K">V</parameter></invoke>...`
 * - deepseek_v3_2, deepseek_v4 (DSML): `<｜DSML｜function_calls>` (v4: `tool_calls`) around
 *   `<｜DSML｜invoke name="N"><｜DSML｜parameter name="K" string="true|false">V</｜DSML｜parameter></｜DSML｜invoke>`
 * - harmony (gpt-oss): see `harmony.ts`
 *
 * Text that looks like a call but does not parse stays text.
 */
import { createJsonScanner, findFirst, isSpace, partialLength } from './_scan.ts';

export type ToolEvent =
  | { type: 'content'; text: string }
  /** A call begins; `id` when the format carries one (Kimi's `functions.N:0`). */
  | { type: 'call'; index: number; name: string; id?: string }
  | { type: 'args'; index: number; text: string }
  | { type: 'end'; index: number };

export interface ToolCallParser {
  push(text: string): ToolEvent[];
  finish(): ToolEvent[];
}

/** What a section body writes to. */
interface Sink {
  content(text: string): void;
  call(name: string, id?: string): number;
  args(index: number, text: string): void;
  end(index: number): void;
}

/** One tool section after its start marker: returns the text after the section once it ends. */
interface Body {
  push(text: string): string | undefined;
  finish(): void;
}

// ------------------------------------------------------------------------------------------
// One JSON call object, streamed: {"name": N, "arguments": {...}}
// ------------------------------------------------------------------------------------------

const NAMED =
  /^\s*\{\s*"name"\s*:\s*"((?:[^"\\]|\\.)*)"\s*,\s*"(?:arguments|parameters)"\s*:\s*(?=\{)/;

function callOf(value: unknown): { name: string; arguments: string } | undefined {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return undefined;
  let v = value as Record<string, unknown>;
  if (v.function && typeof v.function === 'object') v = v.function as Record<string, unknown>;
  const { name } = v;
  if (typeof name !== 'string' || name === '') return undefined;
  const raw = v.arguments ?? v.parameters;
  const args = typeof raw === 'string' ? raw : raw === undefined ? '{}' : JSON.stringify(raw);
  return { name, arguments: args };
}

/**
 * Streams one `{"name": ..., "arguments": {...}}` object: once the name and the start of the
 * arguments object are in, the call starts and the arguments' text flows as it arrives. Other
 * key orders or string arguments are parsed whole when the object closes.
 */
function createCallObject(sink: Sink) {
  let text = '';
  const scanner = createJsonScanner();
  let named: { index: number; emitted: number; argsEnd: number } | undefined;
  const onClose = (i: number, depth: number) => {
    if (named && named.argsEnd < 0 && depth === 1 && i >= named.emitted) named.argsEnd = i + 1;
  };
  return {
    /** Returns the text after the object once it closed, with `ok` false if it was no call. */
    push(chunk: string): { rest: string; ok: boolean; raw: string } | undefined {
      const chunkStart = text.length;
      text += chunk;
      scanner.feed(chunk, onClose);
      if (!named && scanner.end < 0) {
        const m = NAMED.exec(text);
        if (m) {
          let name: string;
          try {
            name = JSON.parse(`"${m[1]}"`) as string;
          } catch {
            name = m[1] ?? '';
          }
          if (name !== '') {
            named = { index: sink.call(name), emitted: m[0].length, argsEnd: -1 };
            // The arguments may have closed already in this chunk.
            const argsScan = createJsonScanner(m[0].length);
            const end = argsScan.feed(text.slice(m[0].length));
            if (end >= 0) named.argsEnd = end;
          }
        }
      }
      if (named) {
        const upto = named.argsEnd >= 0 ? named.argsEnd : text.length;
        if (upto > named.emitted) {
          sink.args(
            named.index,
            named.emitted >= chunkStart
              ? chunk.slice(named.emitted - chunkStart, upto - chunkStart)
              : text.slice(named.emitted, upto),
          );
          named.emitted = upto;
        }
      }
      if (scanner.end < 0) return undefined;
      const body = text.slice(0, scanner.end);
      const rest = text.slice(scanner.end);
      if (named) {
        sink.end(named.index);
        return { rest, ok: true, raw: body };
      }
      let parsed: unknown;
      try {
        parsed = JSON.parse(body);
      } catch {
        return { rest, ok: false, raw: body };
      }
      const call = callOf(parsed);
      if (!call) return { rest, ok: false, raw: body };
      const index = sink.call(call.name);
      sink.args(index, call.arguments);
      sink.end(index);
      return { rest, ok: true, raw: body };
    },
    /** The stream ended inside the object: a started call ends as it is; else the raw text. */
    finish(): { ok: boolean; raw: string } {
      if (named) {
        sink.end(named.index);
        return { ok: true, raw: text };
      }
      return { ok: false, raw: text };
    },
  };
}

// ------------------------------------------------------------------------------------------
// Bodies
// ------------------------------------------------------------------------------------------

interface JsonBodyOptions {
  /** The start marker, put back in front of text that turned out not to be a call. */
  opener: string;
  /** Markers that close the section; what is between the calls and the marker is dropped. */
  end?: readonly string[];
  /** The end marker may be missing (the model stops at EOS): the section then ends with its JSON. */
  endOptional?: boolean;
  /** Separators between call objects besides `,` inside arrays (`;` for Llama 3). @default '' */
  separator?: string;
}

/** Calls as JSON: one object, several objects (separated), or an array of them. */
function jsonBody(sink: Sink, options: JsonBodyOptions): Body {
  const ends = options.end ?? [];
  let state: 'lead' | 'object' | 'between' | 'tail' | 'raw' = 'lead';
  let inArray = false;
  let buffer = '';
  let raw = options.opener;
  let object: ReturnType<typeof createCallObject> | undefined;
  let calls = 0;

  const fail = (text: string) => {
    state = 'raw';
    raw += text;
  };

  function run(): string | undefined {
    for (;;) {
      switch (state) {
        case 'lead':
        case 'between': {
          let i = 0;
          while (
            i < buffer.length && (isSpace(buffer[i]) || (state === 'between' &&
              (buffer[i] === ',' || buffer[i] === options.separator)))
          ) i++;
          raw += buffer.slice(0, i);
          buffer = buffer.slice(i);
          if (buffer === '') return undefined;
          const ch = buffer[0];
          if (ch === '[' && state === 'lead' && !inArray) {
            inArray = true;
            raw += '[';
            buffer = buffer.slice(1);
            state = 'between';
            continue;
          }
          if (ch === ']' && inArray) {
            raw += ']';
            buffer = buffer.slice(1);
            inArray = false;
            state = 'tail';
            continue;
          }
          if (ch === '{') {
            object = createCallObject(sink);
            state = 'object';
            continue;
          }
          if (state === 'between' && !inArray) {
            state = 'tail';
            continue;
          }
          fail(buffer);
          buffer = '';
          continue;
        }
        case 'object': {
          const chunk = buffer;
          buffer = '';
          const done = object!.push(chunk);
          if (!done) return undefined;
          object = undefined;
          if (!done.ok) {
            fail(done.raw);
            buffer = done.rest;
            continue;
          }
          calls++;
          raw = '';
          buffer = done.rest;
          state = 'between';
          continue;
        }
        case 'tail': {
          if (ends.length === 0) return buffer;
          const lead = buffer.trimStart();
          const found = findFirst(buffer, ends);
          if (found) {
            const rest = buffer.slice(found.at + found.marker.length);
            buffer = '';
            return rest;
          }
          if (options.endOptional) {
            if (lead === '' || ends.some((e) => e.startsWith(lead))) return undefined;
            const rest = buffer;
            buffer = '';
            return rest;
          }
          // Text between the calls and the end marker is dropped; a marker may be arriving.
          buffer = buffer.slice(buffer.length - partialLength(buffer, ends));
          return undefined;
        }
        case 'raw': {
          // Not a call: text until the end marker (or the end of the stream) stays text.
          const found = findFirst(buffer, ends);
          if (found) {
            sink.content(raw + buffer.slice(0, found.at + found.marker.length));
            const rest = buffer.slice(found.at + found.marker.length);
            buffer = '';
            raw = '';
            return rest;
          }
          const keep = partialLength(buffer, ends);
          raw += buffer.slice(0, buffer.length - keep);
          buffer = buffer.slice(buffer.length - keep);
          if (ends.length === 0) {
            sink.content(raw);
            raw = '';
          }
          return undefined;
        }
      }
    }
  }

  return {
    push(text) {
      buffer += text;
      return run();
    },
    finish() {
      if (state === 'object' && object) {
        const done = object.finish();
        if (!done.ok) sink.content(raw + done.raw);
        return;
      }
      if (state === 'raw' || (calls === 0 && state !== 'tail')) sink.content(raw + buffer);
    },
  };
}

/**
 * Streams a JSON value's text (the arguments after an explicit marker) until it closes;
 * `holdFence` also holds back trailing whitespace and backticks (DeepSeek's ```json fences).
 */
interface MarkerSectionOptions {
  /** Ends the whole section. */
  sectionEnd: readonly string[];
  /** Starts one call inside the section. */
  callBegin: string;
  /** Ends the call header (its name); the arguments follow. */
  headerEnd: string;
  /** Ends one call. */
  callEnd: string;
  /** The call's name (and id) from its header text. */
  header(text: string): { name: string; id?: string } | undefined;
  /** Arguments are wrapped in a ```json fence. @default false */
  fenced?: boolean;
}

function markerSection(sink: Sink, options: MarkerSectionOptions): Body {
  let state: 'between' | 'header' | 'args' = 'between';
  let buffer = '';
  let index = -1;
  let leading = true;
  const stripFence = (text: string) => text.replace(/^\s*(```(json)?)?\s*/, '');

  function run(final: boolean): string | undefined {
    for (;;) {
      if (state === 'between') {
        const found = findFirst(buffer, [options.callBegin, ...options.sectionEnd]);
        if (!found) {
          buffer = buffer.slice(
            buffer.length -
              partialLength(buffer, [options.callBegin, ...options.sectionEnd]),
          );
          return undefined;
        }
        buffer = buffer.slice(found.at + found.marker.length);
        if (found.marker !== options.callBegin) return buffer;
        state = 'header';
        continue;
      }
      if (state === 'header') {
        const at = buffer.indexOf(options.headerEnd);
        // The header is still arriving (at the end of the stream it is dropped).
        if (at < 0) return undefined;
        const header = options.header(buffer.slice(0, at));
        buffer = buffer.slice(at + options.headerEnd.length);
        if (!header) {
          // Unusable header: skip the call.
          const end = buffer.indexOf(options.callEnd);
          state = 'between';
          if (end >= 0) buffer = buffer.slice(end + options.callEnd.length);
          continue;
        }
        index = sink.call(header.name, header.id);
        leading = true;
        state = 'args';
        continue;
      }
      // args
      const at = buffer.indexOf(options.callEnd);
      let piece: string;
      let closed = false;
      if (at >= 0) {
        piece = buffer.slice(0, at);
        buffer = buffer.slice(at + options.callEnd.length);
        closed = true;
      } else {
        let keep = final ? 0 : partialLength(buffer, [options.callEnd]);
        if (options.fenced && !final) {
          const tail = /[\s`]*$/.exec(buffer.slice(0, buffer.length - keep))?.[0].length ?? 0;
          keep += tail;
        }
        piece = buffer.slice(0, buffer.length - keep);
        buffer = buffer.slice(buffer.length - keep);
      }
      if (leading) {
        const stripped = options.fenced ? stripFence(piece) : piece.trimStart();
        // Hold a fence that is still arriving.
        const lead = piece.trimStart();
        if (!closed && !final && options.fenced && '```json\n'.startsWith(lead)) {
          buffer = piece + buffer;
          return undefined;
        }
        if (stripped !== '') leading = false;
        piece = stripped;
      }
      if (closed || final) {
        piece = options.fenced ? piece.replace(/\s*(```)?\s*$/, '') : piece.trimEnd();
      }
      if (piece !== '') sink.args(index, piece);
      if (!closed) return undefined;
      sink.end(index);
      index = -1;
      state = 'between';
    }
  }

  return {
    push(text) {
      buffer += text;
      return run(false);
    },
    finish() {
      run(true);
      if (index >= 0) sink.end(index);
    },
  };
}

/** Mistral's newer `[TOOL_CALLS]name[ARGS]{...}` form, or the JSON array of the older one. */
function mistralBody(sink: Sink): Body {
  let mode: 'lead' | 'json' | 'name' | 'args' = 'lead';
  let buffer = '';
  let json: Body | undefined;
  let index = -1;
  let args:
    | { scanner: ReturnType<typeof createJsonScanner>; emitted: number }
    | undefined;
  const run = (): string | undefined => {
    for (;;) {
      if (mode === 'lead') {
        const lead = buffer.trimStart();
        if (lead === '') return undefined;
        if (lead[0] === '[' || lead[0] === '{') {
          mode = 'json';
          json = jsonBody(sink, {
            opener: '[TOOL_CALLS]',
            end: ['[/TOOL_CALLS]'],
            endOptional: true,
          });
          const rest = json.push(buffer);
          buffer = '';
          return rest;
        }
        buffer = lead;
        mode = 'name';
      }
      if (mode === 'name') {
        const at = buffer.indexOf('[ARGS]');
        if (at < 0) return undefined;
        const name = buffer.slice(0, at).replace(/\[CALL_ID\].*$/s, '').trim();
        buffer = buffer.slice(at + '[ARGS]'.length);
        index = sink.call(name);
        args = { scanner: createJsonScanner(), emitted: 0 };
        mode = 'args';
      }
      // args: the JSON object after [ARGS]
      const a = args!;
      const chunk = buffer;
      const chunkStart = a.emitted;
      buffer = '';
      const end = a.scanner.feed(chunk);
      const upto = end >= 0 ? end : chunkStart + chunk.length;
      const piece = chunk.slice(0, upto - chunkStart);
      a.emitted = upto;
      const trimmed = chunkStart === 0 ? piece.trimStart() : piece;
      if (trimmed !== '') sink.args(index, trimmed);
      if (end < 0) return undefined;
      sink.end(index);
      index = -1;
      return chunk.slice(end - chunkStart);
    }
  };
  return {
    push(text) {
      if (mode === 'json') return json!.push(text);
      buffer += text;
      return run();
    },
    finish() {
      if (mode === 'json') json!.finish();
      else if (index >= 0) sink.end(index);
      else if (buffer.trim() !== '') sink.content(`[TOOL_CALLS]${buffer}`);
    },
  };
}

// ------------------------------------------------------------------------------------------
// Families
// ------------------------------------------------------------------------------------------

interface Family {
  /** Markers that open a tool section anywhere in the content. */
  starts: readonly string[];
  /** This character first in the answer also opens one (`{` for Llama 3, `[` pythonic). */
  bareStart?: string;
  body(sink: Sink, marker: string, tools: ToolSchemas): Body;
}

/** The request's tools: function name -> its parameters' JSON schema (for typed XML values). */
export type ToolSchemas = ReadonlyMap<string, unknown>;

/** A parameter value of an XML-style call, typed by the function's schema (else a string). */
function typedValue(raw: string, schema: unknown, key: string): unknown {
  const props = (schema as { properties?: Record<string, { type?: unknown }> } | undefined)
    ?.properties;
  const type = props?.[key]?.type;
  const types = Array.isArray(type) ? type : [type];
  if (types.includes('string') || type === undefined) return raw;
  try {
    return JSON.parse(raw);
  } catch {
    return raw;
  }
}

/** The markers of an XML-style call format. */
interface XmlStyle {
  /** Opens a function; its name follows, up to `>`. */
  fn: string;
  fnEnd: string;
  /** Opens a parameter; its name (and attributes) follow, up to `>`. */
  param: string;
  paramEnd: string;
  /** Closes the wrapper around the calls. */
  wrapEnd: string;
}

const QWEN_XML: XmlStyle = {
  fn: '<function=',
  fnEnd: '</function>',
  param: '<parameter=',
  paramEnd: '</parameter>',
  wrapEnd: '</tool_call>',
};
const MINIMAX_XML: XmlStyle = {
  fn: '<invoke name=',
  fnEnd: '</invoke>',
  param: '<parameter name=',
  paramEnd: '</parameter>',
  wrapEnd: '</minimax:tool_call>',
};
const dsml = (block: string): XmlStyle => ({
  fn: '<｜DSML｜invoke name=',
  fnEnd: '</｜DSML｜invoke>',
  param: '<｜DSML｜parameter name=',
  paramEnd: '</｜DSML｜parameter>',
  wrapEnd: `</｜DSML｜${block}>`,
});

/** `"name" string="true"` (or `name`) -> the name and its `string` attribute. */
function headerOf(text: string): { name: string; string?: boolean } {
  const m = /^\s*"([^"]*)"|^\s*'([^']*)'|^\s*([^\s"'>]+)/.exec(text);
  const name = m?.[1] ?? m?.[2] ?? m?.[3] ?? '';
  const flag = /\bstring\s*=\s*"(true|false)"/.exec(text)?.[1];
  return { name, ...(flag ? { string: flag === 'true' } : {}) };
}

/**
 * XML-style calls: Qwen3-Coder's `<tool_call><function=N><parameter=K>V</parameter>...
 * </function></tool_call>` (the wrapper may be missing), MiniMax's `<invoke name="N">` and
 * DeepSeek's DSML `<｜DSML｜invoke name="N">` (with `string="true|false"` parameters).
 * Arguments stream as JSON, one parameter at a time: `{` when the function opens, `"K": V` as
 * each parameter closes, `}` at its end.
 */
function xmlBody(
  sink: Sink,
  options: { wrapped: boolean; tools: ToolSchemas; style: XmlStyle },
): Body {
  const { fn: FN, fnEnd: FN_END, param: P, paramEnd: P_END, wrapEnd: WRAP_END } = options.style;
  let stringFlag: boolean | undefined;
  let state: 'between' | 'fname' | 'params' | 'pname' | 'pvalue' = options.wrapped
    ? 'between'
    : 'fname';
  let buffer = '';
  let index = -1;
  let fn = '';
  let key = '';
  let first = true;

  const closeCall = () => {
    if (index < 0) return;
    sink.args(index, '}');
    sink.end(index);
    index = -1;
  };
  const param = (raw: string) => {
    const value = raw.replace(/^\n/, '').replace(/\n$/, '');
    const typed = stringFlag === true
      ? value
      : stringFlag === false
      ? typedValue(value, { properties: { [key]: { type: 'any' } } }, key)
      : typedValue(value, options.tools.get(fn), key);
    sink.args(index, `${first ? '' : ', '}${JSON.stringify(key)}: ${JSON.stringify(typed)}`);
    first = false;
  };

  function run(final: boolean): string | undefined {
    for (;;) {
      switch (state) {
        case 'between': {
          const ends = options.wrapped ? [FN, WRAP_END] : [FN];
          const found = findFirst(buffer, ends);
          if (!found) {
            buffer = buffer.slice(buffer.length - partialLength(buffer, ends));
            return undefined;
          }
          buffer = buffer.slice(found.at + found.marker.length);
          if (found.marker === WRAP_END) return buffer;
          state = 'fname';
          continue;
        }
        case 'fname':
        case 'pname': {
          const at = buffer.indexOf('>');
          if (at < 0) return undefined;
          const header = headerOf(buffer.slice(0, at));
          buffer = buffer.slice(at + 1);
          if (state === 'fname') {
            fn = header.name;
            index = sink.call(fn);
            sink.args(index, '{');
            first = true;
          } else {
            key = header.name;
            stringFlag = header.string;
          }
          state = state === 'fname' ? 'params' : 'pvalue';
          continue;
        }
        case 'params': {
          const found = findFirst(buffer, [P, FN_END]);
          if (!found) {
            buffer = buffer.slice(buffer.length - partialLength(buffer, [P, FN_END]));
            if (final) closeCall();
            return undefined;
          }
          buffer = buffer.slice(found.at + found.marker.length);
          if (found.marker === P) {
            state = 'pname';
            continue;
          }
          closeCall();
          if (!options.wrapped) return buffer;
          state = 'between';
          continue;
        }
        case 'pvalue': {
          // A value ends at its closing tag (or, leniently, at the next parameter or the end).
          const found = findFirst(buffer, [P_END, P, FN_END]);
          if (!found) {
            if (final) {
              param(buffer);
              buffer = '';
              closeCall();
            }
            return undefined;
          }
          param(buffer.slice(0, found.at));
          buffer = buffer.slice(found.marker === P_END ? found.at + P_END.length : found.at);
          state = 'params';
          continue;
        }
      }
    }
  }

  return {
    push(text) {
      buffer += text;
      return run(false);
    },
    finish() {
      run(true);
      closeCall();
    },
  };
}

/**
 * GLM-4.5/4.7: `<tool_call>N<arg_key>K</arg_key><arg_value>V</arg_value>...</tool_call>`, one
 * call per wrapper; arguments stream as JSON, one pair at a time, typed like the XML formats.
 */
function glmBody(sink: Sink, tools: ToolSchemas): Body {
  const END = '</tool_call>';
  let state: 'name' | 'pairs' | 'key' | 'seek' | 'value' = 'name';
  let buffer = '';
  let index = -1;
  let fn = '';
  let key = '';
  let first = true;
  const close = () => {
    if (index < 0) return;
    sink.args(index, '}');
    sink.end(index);
    index = -1;
  };
  const run = (final: boolean): string | undefined => {
    for (;;) {
      if (state === 'name') {
        const found = findFirst(buffer, ['<arg_key>', END]);
        if (!found) {
          if (final && buffer.trim()) {
            index = sink.call(buffer.trim());
            sink.args(index, '{');
          }
          return undefined;
        }
        fn = buffer.slice(0, found.at).trim();
        buffer = buffer.slice(found.at);
        index = sink.call(fn);
        sink.args(index, '{');
        first = true;
        state = 'pairs';
        continue;
      }
      if (state === 'pairs') {
        const found = findFirst(buffer, ['<arg_key>', END]);
        if (!found) {
          buffer = buffer.slice(buffer.length - partialLength(buffer, ['<arg_key>', END]));
          return undefined;
        }
        buffer = buffer.slice(found.at + found.marker.length);
        if (found.marker === END) {
          close();
          return buffer;
        }
        state = 'key';
        continue;
      }
      const marker = state === 'key'
        ? '</arg_key>'
        : state === 'seek'
        ? '<arg_value>'
        : '</arg_value>';
      const at = buffer.indexOf(marker);
      if (at < 0) {
        if (final && state === 'value') {
          sink.args(index, pair(buffer));
          buffer = '';
        }
        return undefined;
      }
      const text = buffer.slice(0, at);
      buffer = buffer.slice(at + marker.length);
      if (state === 'key') {
        key = text.trim();
        state = 'seek';
      } else if (state === 'seek') {
        state = 'value';
      } else {
        sink.args(index, pair(text));
        state = 'pairs';
      }
    }
  };
  const pair = (raw: string) => {
    const text = `${first ? '' : ', '}${JSON.stringify(key)}: ${
      JSON.stringify(typedValue(raw.trim(), tools.get(fn), key))
    }`;
    first = false;
    return text;
  };
  return {
    push(text) {
      buffer += text;
      return run(false);
    },
    finish() {
      run(true);
      close();
    },
  };
}

/** A Python literal (strings in either quote, True/False/None) as JSON text. */
function pythonToJson(src: string): string {
  let out = '';
  for (let i = 0; i < src.length; i++) {
    const ch = src[i]!;
    if (ch === '"' || ch === "'") {
      let value = '';
      let j = i + 1;
      for (; j < src.length && src[j] !== ch; j++) {
        if (src[j] === '\\' && j + 1 < src.length) {
          const e = src[++j]!;
          value += e === 'n' ? '\n' : e === 't' ? '\t' : e === 'r' ? '\r' : e;
        } else value += src[j];
      }
      out += JSON.stringify(value);
      i = j;
    } else if (/[A-Za-z_]/.test(ch)) {
      const word = /^[A-Za-z_]\w*/.exec(src.slice(i))![0];
      out += word === 'True'
        ? 'true'
        : word === 'False'
        ? 'false'
        : word === 'None'
        ? 'null'
        : word;
      i += word.length - 1;
    } else out += ch;
  }
  return out;
}

/** Splits `text` at top-level `sep`s (outside brackets and strings). */
function splitTopLevel(text: string, sep: string): string[] {
  const parts: string[] = [];
  let depth = 0;
  let quote = '';
  let start = 0;
  for (let i = 0; i < text.length; i++) {
    const ch = text[i]!;
    if (quote) {
      if (ch === '\\') i++;
      else if (ch === quote) quote = '';
    } else if (ch === '"' || ch === "'") quote = ch;
    else if ('([{'.includes(ch)) depth++;
    else if (')]}'.includes(ch)) depth--;
    else if (ch === sep && depth === 0) {
      parts.push(text.slice(start, i));
      start = i + 1;
    }
  }
  parts.push(text.slice(start));
  return parts.map((p) => p.trim()).filter((p) => p !== '');
}

/** `[f(a=1, b='x'), g()]` -> calls, or undefined when it is not such a list. */
function parsePythonicCalls(text: string): Array<{ name: string; arguments: string }> | undefined {
  const inner = /^\s*\[([\s\S]*)\]\s*$/.exec(text)?.[1];
  if (inner === undefined) return undefined;
  const calls: Array<{ name: string; arguments: string }> = [];
  for (const part of splitTopLevel(inner, ',')) {
    const m = /^([A-Za-z_][\w.]*)\s*\(([\s\S]*)\)$/.exec(part);
    if (!m) return undefined;
    const args: Record<string, unknown> = {};
    for (const kv of splitTopLevel(m[2]!, ',')) {
      const eq = /^([A-Za-z_]\w*)\s*=\s*([\s\S]+)$/.exec(kv);
      if (!eq) return undefined;
      try {
        args[eq[1]!] = JSON.parse(pythonToJson(eq[2]!));
      } catch {
        return undefined;
      }
    }
    calls.push({ name: m[1]!, arguments: JSON.stringify(args) });
  }
  return calls.length > 0 ? calls : undefined;
}

/**
 * Pythonic calls (Llama 3.2 / 4): `[f(a=1), g(b='x')]` as the answer (or inside
 * `<|python_start|>...<|python_end|>`). The list is parsed when it closes; each call is sent
 * whole. A list that is not calls stays text.
 */
function pythonicBody(sink: Sink, opener: string): Body {
  let text = '';
  let depth = 0;
  let quote = '';
  let scanned = 0;
  let started = false;
  const fail = (rest = '') => {
    sink.content(opener + text + rest);
    text = '';
  };
  const END = '<|python_end|>';
  /** After the list: an optional `<|python_end|>` may still be arriving. */
  let tail: string | undefined;
  const afterList = (): string | undefined => {
    const lead = tail!.trimStart();
    if (lead.startsWith(END)) return lead.slice(END.length);
    if (lead === '' || END.startsWith(lead)) return undefined;
    return tail;
  };
  return {
    push(chunk) {
      if (tail !== undefined) {
        tail += chunk;
        return afterList();
      }
      const from = text.length;
      text += chunk;
      for (let i = Math.max(scanned, from); i < text.length; i++) {
        const ch = text[i]!;
        if (quote) {
          if (ch === '\\') i++;
          else if (ch === quote) quote = '';
          continue;
        }
        if (!started) {
          if (/\s/.test(ch)) continue;
          if (ch !== '[') {
            fail();
            return '';
          }
          started = true;
        }
        if (ch === '"' || ch === "'") quote = ch;
        else if ('([{'.includes(ch)) depth++;
        else if (')]}'.includes(ch)) {
          depth--;
          if (depth === 0) {
            const list = text.slice(0, i + 1);
            const rest = text.slice(i + 1);
            const calls = parsePythonicCalls(list);
            if (!calls) {
              text = list;
              fail();
              return rest;
            }
            for (const call of calls) {
              const index = sink.call(call.name);
              sink.args(index, call.arguments);
              sink.end(index);
            }
            text = '';
            if (opener === '') return rest;
            tail = rest;
            return afterList();
          }
        }
      }
      scanned = text.length;
      return undefined;
    },
    finish() {
      if (tail !== undefined) sink.content(tail.trimStart());
      else if (text !== '') fail();
    },
  };
}

/** An XML-style family: its wrapper, or (when the wrapper is missing) a bare function opener. */
const xmlFamily = (wrap: string, style: XmlStyle): Family => ({
  starts: [wrap, style.fn],
  body: (sink, marker, tools) => xmlBody(sink, { wrapped: marker === wrap, tools, style }),
});

const DS_CALLS_BEGIN = '<｜tool▁calls▁begin｜>';
const DS_CALLS_END = '<｜tool▁calls▁end｜>';
const DS_CALL_BEGIN = '<｜tool▁call▁begin｜>';
const DS_CALL_END = '<｜tool▁call▁end｜>';
const DS_SEP = '<｜tool▁sep｜>';

const wrapped = (start: string, end: string): Family => ({
  starts: [start],
  body: (sink) => jsonBody(sink, { opener: start, end: [end] }),
});

const KIMI_SECTION = ['<|tool_calls_section_begin|>', '<|tool_call_section_begin|>'];
const KIMI_SECTION_END = ['<|tool_calls_section_end|>', '<|tool_call_section_end|>'];

const FAMILIES: Readonly<Record<string, Family>> = {
  qwen3_coder: xmlFamily('<tool_call>', QWEN_XML),
  pythonic: {
    starts: ['<|python_start|>'],
    bareStart: '[',
    body: (sink, marker) => pythonicBody(sink, marker),
  },
  glm47: { starts: ['<tool_call>'], body: (sink, _marker, tools) => glmBody(sink, tools) },
  nemotron_nano: xmlFamily('<tool_call>', QWEN_XML),
  minimax_m2: xmlFamily('<minimax:tool_call>', MINIMAX_XML),
  deepseek_v3_2: xmlFamily('<｜DSML｜function_calls>', dsml('function_calls')),
  deepseek_v4: xmlFamily('<｜DSML｜tool_calls>', dsml('tool_calls')),
  'deepseek-v4': xmlFamily('<｜DSML｜tool_calls>', dsml('tool_calls')),
  deepseekv4: xmlFamily('<｜DSML｜tool_calls>', dsml('tool_calls')),
  hermes: wrapped('<tool_call>', '</tool_call>'),
  qwen25: wrapped('<tool_call>', '</tool_call>'),
  nemotron_deci: wrapped('<TOOLCALL>', '</TOOLCALL>'),
  jamba: wrapped('<tool_calls>', '</tool_calls>'),
  default: {
    starts: ['<TOOLCALL>', '<|python_tag|>'],
    body: (sink, marker) =>
      marker === '<TOOLCALL>'
        ? jsonBody(sink, { opener: marker, end: ['</TOOLCALL>'] })
        : jsonBody(sink, { opener: marker, separator: ';' }),
  },
  llama3_json: {
    starts: ['<|python_tag|>'],
    bareStart: '{',
    body: (sink, marker) => jsonBody(sink, { opener: marker, separator: ';' }),
  },
  mistral: { starts: ['[TOOL_CALLS]'], body: (sink) => mistralBody(sink) },
  phi4: {
    starts: ['functools'],
    body: (sink, marker) => jsonBody(sink, { opener: marker }),
  },
  deepseek_v3: {
    starts: [DS_CALLS_BEGIN, DS_CALL_BEGIN],
    body: (sink, marker) => {
      const body = markerSection(sink, {
        sectionEnd: [DS_CALLS_END],
        callBegin: DS_CALL_BEGIN,
        headerEnd: '\n',
        callEnd: DS_CALL_END,
        fenced: true,
        header: (text) => {
          const name = text.includes(DS_SEP)
            ? text.slice(text.indexOf(DS_SEP) + DS_SEP.length)
            : text;
          return name.trim() ? { name: name.trim() } : undefined;
        },
      });
      return marker === DS_CALL_BEGIN ? primed(body, DS_CALL_BEGIN) : body;
    },
  },
  deepseek_v3_1: {
    starts: [DS_CALLS_BEGIN, DS_CALL_BEGIN],
    body: (sink, marker) => {
      const body = markerSection(sink, {
        sectionEnd: [DS_CALLS_END],
        callBegin: DS_CALL_BEGIN,
        headerEnd: DS_SEP,
        callEnd: DS_CALL_END,
        header: (text) => (text.trim() ? { name: text.trim() } : undefined),
      });
      return marker === DS_CALL_BEGIN ? primed(body, DS_CALL_BEGIN) : body;
    },
  },
  kimi_k2: {
    starts: [...KIMI_SECTION, '<|tool_call_begin|>'],
    body: (sink, marker) => {
      const body = markerSection(sink, {
        sectionEnd: KIMI_SECTION_END,
        callBegin: '<|tool_call_begin|>',
        headerEnd: '<|tool_call_argument_begin|>',
        callEnd: '<|tool_call_end|>',
        header: (text) => {
          const id = text.trim();
          const name = id.replace(/^functions\./, '').replace(/:\d+$/, '');
          return name ? { name, id } : undefined;
        },
      });
      return marker === '<|tool_call_begin|>' ? primed(body, marker) : body;
    },
  },
};

/** A section body that already saw its first call's begin marker (it opened the section). */
function primed(body: Body, marker: string): Body {
  let first = true;
  return {
    push(text) {
      if (first) {
        first = false;
        return body.push(marker + text);
      }
      return body.push(text);
    },
    finish: () => body.finish(),
  };
}

/** Tool-call parser names the frontend implements (Dynamo's names; harmony in harmony.ts). */
export const TOOL_CALL_PARSERS: readonly string[] = [...Object.keys(FAMILIES), 'harmony'];

export function isToolCallParser(name: string): boolean {
  return TOOL_CALL_PARSERS.includes(name);
}

/** A `Sink` writing to `target.list` (merging adjacent pieces), numbering calls from 0. */
function listSink(target: { list: ToolEvent[] }): Sink {
  let calls = 0;
  return {
    content(text) {
      if (text === '') return;
      const last = target.list[target.list.length - 1];
      if (last?.type === 'content') last.text += text;
      else target.list.push({ type: 'content', text });
    },
    call(name, id) {
      const index = calls++;
      target.list.push({ type: 'call', index, name, ...(id ? { id } : {}) });
      return index;
    },
    args(index, text) {
      if (text === '') return;
      const last = target.list[target.list.length - 1];
      if (last?.type === 'args' && last.index === index) last.text += text;
      else target.list.push({ type: 'args', index, text });
    },
    end(index) {
      target.list.push({ type: 'end', index });
    },
  };
}

/** The streaming parser of `name` (a marker family, not harmony). */
export function createToolCallParser(
  name: string,
  options: { tools?: ToolSchemas } = {},
): ToolCallParser {
  const tools: ToolSchemas = options.tools ?? new Map();
  const family = FAMILIES[name];
  if (!family) throw new Error(`Unknown tool-call parser "${name}"`);
  const target = { list: [] as ToolEvent[] };
  const inner = listSink(target);
  let sectionCalls = 0;
  const proxy: Sink = {
    ...inner,
    call(name, id) {
      sectionCalls++;
      return inner.call(name, id);
    },
  };
  let body: Body | undefined;
  let buffer = '';
  let answered = false;
  /** Whitespace right after a tool section (between calls, at the end) is not content. */
  let afterCall = false;
  const content = (text: string) => {
    if (!afterCall) return proxy.content(text);
    const rest = text.trimStart();
    if (rest === '') return;
    afterCall = false;
    proxy.content(rest);
  };

  const run = (final: boolean) => {
    for (;;) {
      if (body) {
        const rest = body.push(buffer);
        buffer = '';
        if (rest === undefined) {
          if (final) {
            body.finish();
            body = undefined;
          }
          return;
        }
        body = undefined;
        afterCall = sectionCalls > 0;
        sectionCalls = 0;
        buffer = rest;
        continue;
      }
      if (family.bareStart && !answered) {
        const lead = buffer.trimStart();
        if (lead === '') {
          if (final) content(buffer);
          return;
        }
        answered = true;
        if (lead[0] === family.bareStart) {
          body = family.body(proxy, '', tools);
          buffer = lead;
          continue;
        }
      }
      const found = findFirst(buffer, family.starts);
      if (found) {
        content(buffer.slice(0, found.at));
        answered = true;
        body = family.body(proxy, found.marker, tools);
        buffer = buffer.slice(found.at + found.marker.length);
        continue;
      }
      const keep = final ? 0 : partialLength(buffer, family.starts);
      const text = buffer.slice(0, buffer.length - keep);
      if (text.trim() !== '') answered = true;
      content(text);
      buffer = buffer.slice(buffer.length - keep);
      return;
    }
  };

  return {
    push(text) {
      target.list = [];
      buffer += text;
      run(false);
      return target.list;
    },
    finish() {
      target.list = [];
      run(true);
      if (body) body.finish();
      body = undefined;
      return target.list;
    },
  };
}

/**
 * `tool_choice: "required"` and named tools, constrained by guided decoding: the answer is bare
 * JSON, an array of `{"name", "parameters"}` objects (required), or the arguments object of the
 * named function.
 */
export function createGuidedToolParser(
  choice: { required: true } | { name: string },
): ToolCallParser {
  const target = { list: [] as ToolEvent[] };
  const sink = listSink(target);
  if ('required' in choice) {
    const body = jsonBody(sink, { opener: '' });
    let done = false;
    return {
      push(text) {
        target.list = [];
        if (done) sink.content(text);
        else if (body.push(text) !== undefined) done = true;
        return target.list;
      },
      finish() {
        target.list = [];
        if (!done) body.finish();
        return target.list;
      },
    };
  }
  // Named: the whole answer is the arguments object.
  let index = -1;
  let lead = true;
  return {
    push(text) {
      target.list = [];
      let piece = text;
      if (lead) {
        piece = piece.trimStart();
        if (piece === '') return target.list;
        lead = false;
        index = sink.call(choice.name);
      }
      sink.args(index, piece);
      return target.list;
    },
    finish() {
      target.list = [];
      if (index < 0) index = sink.call(choice.name);
      sink.end(index);
      return target.list;
    },
  };
}
