/**
 * Simple fonts' byte -> text tables: WinAnsi (what the standard 14 fonts use, a superset of
 * ASCII; `windows-1252` in the Encoding standard) and the Unicode text of common glyph names, for
 * `/Differences` arrays (Adobe Glyph List names, plus `uniXXXX` and `uXXXX`).
 */

/** 0x80-0x9F of WinAnsi (written out: Node 20's `windows-1252` decoder is plain Latin-1). */
const WIN_ANSI_80 = '\u20ac\ufffd\u201a\u0192\u201e\u2026\u2020\u2021\u02c6\u2030\u0160\u2039' +
  '\u0152\ufffd\u017d\ufffd\ufffd\u2018\u2019\u201c\u201d\u2022\u2013\u2014\u02dc\u2122\u0161' +
  '\u203a\u0153\ufffd\u017e\u0178';

/** WinAnsi: byte -> text (`\uFFFF` for the five unassigned codes). */
export const BASE = Array.from(
  { length: 256 },
  (_, i) => {
    if (i < 0x80 || i > 0x9f) return String.fromCharCode(i);
    const c = WIN_ANSI_80[i - 0x80]!;
    return c === '\ufffd' ? '\uffff' : c;
  },
);

/** WinAnsi text of `bytes`. */
export const winAnsi = (bytes: Uint8Array): string => {
  let out = '';
  for (const b of bytes) out += BASE[b] === '\uffff' ? '' : BASE[b];
  return out;
};

/** Common glyph names of `/Differences` arrays; `uniXXXX`, `uXXXX` and one-letter names too. */
const GLYPHS: Record<string, string> = {
  space: ' ',
  exclam: '!',
  quotedbl: '"',
  numbersign: '#',
  dollar: '$',
  percent: '%',
  ampersand: '&',
  quotesingle: "'",
  quoteright: '\u2019',
  quoteleft: '\u2018',
  parenleft: '(',
  parenright: ')',
  asterisk: '*',
  plus: '+',
  comma: ',',
  hyphen: '-',
  minus: '\u2212',
  period: '.',
  slash: '/',
  zero: '0',
  one: '1',
  two: '2',
  three: '3',
  four: '4',
  five: '5',
  six: '6',
  seven: '7',
  eight: '8',
  nine: '9',
  colon: ':',
  semicolon: ';',
  less: '<',
  equal: '=',
  greater: '>',
  question: '?',
  at: '@',
  bracketleft: '[',
  backslash: '\\',
  bracketright: ']',
  underscore: '_',
  braceleft: '{',
  bar: '|',
  braceright: '}',
  asciitilde: '~',
  quotedblleft: '\u201c',
  quotedblright: '\u201d',
  endash: '\u2013',
  emdash: '\u2014',
  bullet: '\u2022',
  ellipsis: '\u2026',
  fi: 'fi',
  fl: 'fl',
  ff: 'ff',
  ffi: 'ffi',
  ffl: 'ffl',
  dotlessi: '\u0131',
  degree: '\u00b0',
  copyright: '\u00a9',
  registered: '\u00ae',
  trademark: '\u2122',
  section: '\u00a7',
  paragraph: '\u00b6',
  dagger: '\u2020',
  daggerdbl: '\u2021',
  Euro: '\u20ac',
  nbspace: '\u00a0',
};

export function glyphText(name: string): string | undefined {
  if (name.length === 1) return name;
  if (GLYPHS[name] !== undefined) return GLYPHS[name];
  const uni = /^uni([0-9A-F]{4})$/.exec(name) ?? /^u([0-9A-F]{4,6})$/.exec(name);
  return uni ? String.fromCodePoint(parseInt(uni[1]!, 16)) : undefined;
}
