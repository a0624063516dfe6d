/** Small text helpers shared by the output parsers (private to this folder). */

/** Length of the longest end of `text` that is a proper prefix of one of `markers`. */
export function partialLength(text: string, markers: readonly string[]): number {
  let best = 0;
  for (const marker of markers) {
    const first = marker.charCodeAt(0);
    // The earliest start that can still be a proper prefix is the longest candidate.
    for (let i = Math.max(0, text.length - marker.length + 1); i < text.length; i++) {
      const n = text.length - i;
      if (n <= best) break;
      if (text.charCodeAt(i) !== first) continue;
      let j = 1;
      while (j < n && text.charCodeAt(i + j) === marker.charCodeAt(j)) j++;
      if (j === n) {
        best = n;
        break;
      }
    }
  }
  return best;
}

/** The earliest occurrence of any of `markers` in `text` (the longest on a tie). */
export function findFirst(
  text: string,
  markers: readonly string[],
): { at: number; marker: string } | undefined {
  let found: { at: number; marker: string } | undefined;
  for (const marker of markers) {
    if (marker === '') continue;
    const at = text.indexOf(marker);
    if (at < 0) continue;
    if (!found || at < found.at || (at === found.at && marker.length > found.marker.length)) {
      found = { at, marker };
    }
  }
  return found;
}

const WS = /\s/;
export const isSpace = (ch: string | undefined): boolean => ch !== undefined && WS.test(ch);

/**
 * Tracks nesting of one JSON value as its text arrives, honouring strings and escapes: `feed`
 * each new piece; `end` is the position after the value's last character (-1 while open).
 * Positions count from `from`, the position of the first character fed. Only the new piece is
 * read, never the text so far (indexing a string grown by `+=` would copy it every time).
 */
export function createJsonScanner(from = 0) {
  let base = from;
  let depth = 0;
  let inString = false;
  let escaped = false;
  let started = false;
  let end = -1;
  return {
    get end() {
      return end;
    },
    /** `onClose(position, depth after it)` for every closing bracket. Returns `end`. */
    feed(piece: string, onClose?: (position: number, depth: number) => void): number {
      if (end >= 0) return end;
      for (let i = 0; i < piece.length; i++) {
        const ch = piece.charCodeAt(i);
        if (inString) {
          if (escaped) escaped = false;
          else if (ch === 92 /* \ */) escaped = true;
          else if (ch === 34 /* " */) {
            inString = false;
            if (depth === 0) end = base + i + 1;
          }
        } else if (ch === 34) {
          inString = true;
          started = true;
        } else if (ch === 123 /* { */ || ch === 91 /* [ */) {
          depth++;
          started = true;
        } else if (ch === 125 /* } */ || ch === 93 /* ] */) {
          depth--;
          onClose?.(base + i, depth);
          if (depth <= 0) end = base + i + 1;
        } else if (ch > 32) {
          // A bare scalar (number, true, null) starts; at depth 0 a delimiter ends it.
          if (!started) started = true;
          else if (depth === 0 && (ch === 44 /* , */ || ch === 59 /* ; */)) end = base + i;
        } else if (started && depth === 0) {
          end = base + i;
        }
        if (end >= 0) break;
      }
      base += piece.length;
      return end;
    },
  };
}
