import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createStopMatcher } from './stops.ts';

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
