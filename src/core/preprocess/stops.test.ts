import assert from 'node:assert/strict';
import { test } from 'node:test';
import { compileStops, createStopMatcher } from './stops.ts';

/** Every push's text, then the flush, and the match (if any). */
function run(chunks: string[], stop: string[], includeStopStr?: boolean) {
  const matcher = createStopMatcher({ stop, includeStopStr });
  const out: string[] = [];
  let matched: string | undefined;
  for (const chunk of chunks) {
    const r = matcher.push(chunk);
    out.push(r.text);
    matched ??= r.matched;
  }
  out.push(matcher.flush());
  return { out, text: out.join(''), matched, stopped: matcher.stopped };
}

test('a stop string is hidden by default and ends the stream', () => {
  const r = run(['Hello END and more', ' after'], ['END']);
  assert.equal(r.text, 'Hello ');
  assert.equal(r.matched, 'END');
  assert.equal(r.stopped, true);
  assert.deepEqual(r.out, ['Hello ', '', '']);
});

test('includeStopStr keeps the matched stop string', () => {
  assert.equal(run(['Hello END and more'], ['END'], true).text, 'Hello END');
});

test('a stop string split across chunks is found and never partly shown', () => {
  const r = run(['Hello E', 'N', 'D!'], ['END']);
  assert.deepEqual(r.out, ['Hello ', '', '', '']);
  assert.equal(r.matched, 'END');
  const one = run(['a', '<', '/', 's', '>', 'b'], ['</s>'], true);
  assert.equal(one.text, 'a</s>');
});

test('held text that turns out not to be a stop string is released', () => {
  const r = run(['Hello E', 'Nx', ' world'], ['END']);
  assert.deepEqual(r.out, ['Hello ', 'ENx', ' world', '']);
  assert.equal(r.text, 'Hello ENx world');
  assert.equal(r.matched, undefined);
});

test('flush() releases held text when the stream ends without a match', () => {
  const r = run(['Hello EN'], ['END']);
  assert.deepEqual(r.out, ['Hello ', 'EN']);
  assert.equal(r.stopped, false);
});

test('of several stop strings the one that completes first wins', () => {
  assert.deepEqual(
    [run(['xx abc yy'], ['abc', 'b']).matched, run(['xx abc yy'], ['c', 'abc']).matched],
    ['b', 'abc'],
  );
  assert.equal(run(['one two three'], ['three', 'two']).text, 'one ');
});

test('unicode stop strings match across chunk boundaries', () => {
  const r = run(['答案是', '：4。', '🚀', '!'], ['。🚀']);
  assert.equal(r.text, '答案是：4');
  assert.equal(r.matched, '。🚀');
});

test('no stop strings (or only empty ones) pass text straight through', () => {
  assert.deepEqual(run(['a', 'b'], []).out, ['a', 'b', '']);
  assert.deepEqual(run(['a', 'b'], ['']).out, ['a', 'b', '']);
});

/** The rescanning matcher this automaton replaced, kept as the reference it must agree with. */
function naive(chunks: string[], stop: string[], includeStopStr: boolean) {
  const stops = [...new Set(stop.filter((s) => s.length > 0))];
  const longest = stops.reduce((max, s) => Math.max(max, s.length), 0);
  let held = '';
  const out: string[] = [];
  for (const text of chunks) {
    const buffer = held + text;
    let at = -1;
    let end = Infinity;
    let matched: string | undefined;
    for (const s of stops) {
      const i = buffer.indexOf(s);
      if (i < 0) continue;
      const e = i + s.length;
      if (e < end || (e === end && i < at)) [at, end, matched] = [i, e, s];
    }
    if (matched !== undefined) {
      out.push(buffer.slice(0, at) + (includeStopStr ? matched : ''));
      return { out, matched };
    }
    let keep = 0;
    for (let k = Math.min(longest - 1, buffer.length); k > 0; k--) {
      if (stops.some((s) => s.startsWith(buffer.slice(buffer.length - k)))) {
        keep = k;
        break;
      }
    }
    held = buffer.slice(buffer.length - keep);
    out.push(buffer.slice(0, buffer.length - keep));
  }
  out.push(held);
  return { out, matched: undefined };
}

test('the automaton agrees with the rescanning matcher on random streams', () => {
  let seed = 42;
  const random = (n: number) => {
    seed = (seed * 1103515245 + 12345) % 2147483648;
    return seed % n;
  };
  const word = (max: number) =>
    Array.from({ length: 1 + random(max) }, () => 'abc'[random(3)]).join('');
  for (let round = 0; round < 2000; round++) {
    const stop = Array.from({ length: 1 + random(4) }, () => word(4));
    const chunks = Array.from({ length: 1 + random(6) }, () => word(5));
    const include = random(2) === 1;
    const got = run(chunks, stop, include);
    const want = naive(chunks, stop, include);
    // After a match the matcher answers '' to every later push and flush; the reference stops.
    const gotOut = want.matched === undefined ? got.out : got.out.slice(0, want.out.length);
    assert.deepEqual(
      { out: gotOut, matched: got.matched },
      { out: want.out, matched: want.matched },
      JSON.stringify({ chunks, stop, include }),
    );
  }
});

test('compileStops() is shared: matchers over one automaton keep separate state', () => {
  const stops = compileStops(['END', 'STOP']);
  const a = createStopMatcher({ stop: stops });
  const b = createStopMatcher({ stop: stops });
  assert.deepEqual(a.push('xx EN'), { text: 'xx ' });
  assert.deepEqual(b.push('yy ST'), { text: 'yy ' });
  assert.deepEqual(a.push('D zz'), { text: '', matched: 'END' });
  assert.deepEqual(b.push('OP'), { text: '', matched: 'STOP' });
});

test('32 stop strings of 1024 characters against 200k characters: each character read once', () => {
  // The old matcher rescanned every suffix against every stop string (minutes here).
  const stop = Array.from(
    { length: 32 },
    (_, i) => `${'a'.repeat(1023)}${String.fromCharCode(0x4e00 + i)}`,
  );
  const matcher = createStopMatcher({ stop });
  let emitted = 0;
  for (let i = 0; i < 200; i++) emitted += matcher.push('a'.repeat(1000)).text.length;
  assert.equal(emitted, 200_000 - 1023);
  assert.deepEqual(matcher.push('\u4e00'), { text: '', matched: stop[0] });
});
