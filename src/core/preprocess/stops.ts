/**
 * User stop strings over a stream of text deltas (reference §9.5). Text that could be the start
 * of a stop string is held back (the "jail") until the next delta shows whether it is one, so a
 * stop string split across deltas is still found and never partly shown. A matched stop string
 * is hidden unless `includeStopStr`; after a match nothing more is emitted.
 *
 * One Aho-Corasick automaton over all the stop strings (UTF-16 code units, like `indexOf`) reads
 * each character once, carrying its state across deltas: the work is linear in the text whatever
 * the number and length of the stop strings (rescanning every suffix against every stop string
 * was super-quadratic). The state's depth is the held-back text: the longest suffix read so far
 * that begins some stop string. `compileStops()` builds the automaton once per request, shared
 * by its choices.
 */

/** The stop strings as an automaton, built once and shared by every matcher over them. */
export interface CompiledStops {
  readonly stops: readonly string[];
  /** Per state: children by code unit. */
  readonly next: Map<number, number>[];
  /** Per state: the failure link. */
  readonly fail: Int32Array;
  /** Per state: the depth (length of the text it stands for). */
  readonly depth: Int32Array;
  /** Per state: index into `stops` of the longest stop string ending here, or -1. */
  readonly out: Int32Array;
}

/** Builds the automaton of `stop` (empty strings and repeats ignored). */
export function compileStops(stop: readonly string[]): CompiledStops {
  const stops = [...new Set(stop.filter((s) => s.length > 0))];
  const next: Map<number, number>[] = [new Map()];
  const depthList = [0];
  const terminal: number[] = [-1];
  for (const [index, s] of stops.entries()) {
    let node = 0;
    for (let i = 0; i < s.length; i++) {
      const c = s.charCodeAt(i);
      let child = next[node]?.get(c);
      if (child === undefined) {
        child = next.length;
        next.push(new Map());
        depthList.push(i + 1);
        terminal.push(-1);
        next[node]?.set(c, child);
      }
      node = child;
    }
    terminal[node] = index;
  }
  const size = next.length;
  const fail = new Int32Array(size);
  const depth = Int32Array.from(depthList);
  const out = Int32Array.from(terminal);
  // Breadth first, so a node's failure target is finished before the node itself.
  const queue: number[] = [];
  for (const child of next[0]?.values() ?? []) queue.push(child);
  for (let head = 0; head < queue.length; head++) {
    const node = queue[head] as number;
    // The longest stop string ending here is this node's own, else its failure target's.
    if (out[node] === -1) out[node] = out[fail[node] as number] as number;
    for (const [c, child] of next[node] ?? []) {
      let f = fail[node] as number;
      let target = next[f]?.get(c);
      while (target === undefined && f !== 0) {
        f = fail[f] as number;
        target = next[f]?.get(c);
      }
      fail[child] = target !== undefined && target !== child ? target : 0;
      queue.push(child);
    }
  }
  return { stops, next, fail, depth, out };
}

export interface StopMatcherOptions {
  /** Stop strings (empty strings are ignored), or their compiled automaton. */
  stop: readonly string[] | CompiledStops;
  /** Emit the matched stop string itself (`include_stop_str_in_output`). @default false */
  includeStopStr?: boolean;
}

export interface StopMatch {
  /** Text safe to emit now. */
  text: string;
  /** The stop string that matched; the stream is over. */
  matched?: string;
}

export interface StopMatcher {
  push(text: string): StopMatch;
  /** The held-back text, at the end of the stream (nothing after a match). */
  flush(): string;
  /** True once a stop string has matched. */
  readonly stopped: boolean;
}

export function createStopMatcher(options: StopMatcherOptions): StopMatcher {
  const automaton = Array.isArray(options.stop)
    ? compileStops(options.stop as readonly string[])
    : options.stop as CompiledStops;
  const { stops, next, fail, depth, out } = automaton;
  let state = 0;
  let held = '';
  let stopped = false;

  return {
    get stopped() {
      return stopped;
    },
    push(text) {
      if (stopped) return { text: '' };
      if (stops.length === 0) return { text };
      for (let i = 0; i < text.length; i++) {
        const c = text.charCodeAt(i);
        let to = next[state]?.get(c);
        while (to === undefined && state !== 0) {
          state = fail[state] as number;
          to = next[state]?.get(c);
        }
        state = to ?? 0;
        const found = out[state] as number;
        if (found < 0) continue;
        // The first stop string to complete wins; of those completing here, the longest (the
        // one that starts earliest), as a token-by-token stream would see it.
        const matched = stops[found] as string;
        const buffer = held + text.slice(0, i + 1);
        stopped = true;
        held = '';
        const visible = buffer.slice(0, buffer.length - matched.length) +
          (options.includeStopStr ? matched : '');
        return { text: visible, matched };
      }
      const buffer = held + text;
      const keep = depth[state] as number;
      held = buffer.slice(buffer.length - keep);
      return { text: buffer.slice(0, buffer.length - keep) };
    },
    flush() {
      const out = stopped ? '' : held;
      held = '';
      return out;
    },
  };
}
