/** Small text helpers shared by the output parsers (private to this folder). */

/** Length of the longest end of `text` that is a proper prefix of one of `markers`. */
export function partialLength(text: string, markers: readonly string[]): number {
  let best = 0;
  for (const marker of markers) {
    for (let n = Math.min(marker.length - 1, text.length); n > best; n--) {
      if (text.startsWith(marker.slice(0, n), text.length - n)) {
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
 * Tracks nesting of one JSON value as its text arrives: where it ends (`end`, the index after
 * its last character, -1 while open), honouring strings and escapes. Feed it by `scan(text)`
 * with the whole text so far; it resumes where it stopped.
 */
export function createJsonScanner(from = 0) {
  let at = from;
  let depth = 0;
  let inString = false;
  let escaped = false;
  let started = false;
  let end = -1;
  /** Called with (index, depth after the character) for every closing bracket. */
  return {
    get end() {
      return end;
    },
    get depth() {
      return depth;
    },
    scan(text: string, onClose?: (index: number, depth: number) => void): number {
      while (end < 0 && at < text.length) {
        const ch = text[at]!;
        if (inString) {
          if (escaped) escaped = false;
          else if (ch === '\\') escaped = true;
          else if (ch === '"') {
            inString = false;
            if (depth === 0) end = at + 1;
          }
        } else if (ch === '"') {
          inString = true;
          started = true;
        } else if (ch === '{' || ch === '[') {
          depth++;
          started = true;
        } else if (ch === '}' || ch === ']') {
          depth--;
          onClose?.(at, depth);
          if (depth <= 0) end = at + 1;
        } else if (!started && !isSpace(ch)) {
          // A bare scalar (number, true, null): ends at a delimiter.
          started = true;
        } else if (started && depth === 0 && (ch === ',' || ch === ';' || isSpace(ch))) {
          end = at;
          break;
        }
        at++;
      }
      return end;
    },
  };
}
