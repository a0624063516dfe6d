/**
 * User stop strings over a stream of text deltas (reference §9.5). Text that could be the start
 * of a stop string is held back (the "jail") until the next delta shows whether it is one, so a
 * stop string split across deltas is still found and never partly shown. A matched stop string
 * is hidden unless `includeStopStr`; after a match nothing more is emitted.
 */

export interface StopMatcherOptions {
  /** Stop strings; empty strings are ignored. */
  stop: readonly string[];
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
  const stops = [...new Set(options.stop.filter((s) => s.length > 0))];
  const longest = stops.reduce((max, s) => Math.max(max, s.length), 0);
  let held = '';
  let stopped = false;

  /** Length of the longest suffix of `text` that is a proper prefix of some stop string. */
  const jailLength = (text: string): number => {
    for (let k = Math.min(longest - 1, text.length); k > 0; k--) {
      const tail = text.slice(text.length - k);
      if (stops.some((s) => s.startsWith(tail))) return k;
    }
    return 0;
  };

  return {
    get stopped() {
      return stopped;
    },
    push(text) {
      if (stopped) return { text: '' };
      if (stops.length === 0) return { text };
      const buffer = held + text;
      let at = -1;
      let end = Infinity;
      let matched: string | undefined;
      for (const stop of stops) {
        const i = buffer.indexOf(stop);
        if (i < 0) continue;
        // The match that completes first wins (what a token-by-token stream would see first);
        // of two that complete together, the one that starts earlier.
        const e = i + stop.length;
        if (e < end || (e === end && i < at)) [at, end, matched] = [i, e, stop];
      }
      if (matched !== undefined) {
        stopped = true;
        held = '';
        const visible = buffer.slice(0, at) + (options.includeStopStr ? matched : '');
        return { text: visible, matched };
      }
      const keep = jailLength(buffer);
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
