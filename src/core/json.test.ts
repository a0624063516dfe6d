import assert from 'node:assert/strict';
import { test } from 'node:test';
import { jsonText, parseExactJson } from './json.ts';

test('jsonText() is JSON.stringify, and exact JSON when a bigint is inside', () => {
  assert.equal(jsonText({ a: 1, b: undefined, c: 'x' }), '{"a":1,"c":"x"}');
  assert.equal(
    jsonText({ nvext: { worker_id: { decode_worker_id: 5141444950165349785n } } }),
    '{"nvext":{"worker_id":{"decode_worker_id":5141444950165349785}}}',
  );
});

test('parseExactJson() keeps integers past 2^53 exact and everything else as JSON.parse', () => {
  const text = '{"worker_id": 5141444950165349785, "hashes": [18446744073709551615, ' +
    '-9223372036854775808, 9007199254740991, 1234567890123456, 42, -7, 1.5, ' +
    '12345678901234567890.5, 1e400, 2E+3], "s": "12345678901234567890", "t": [true, false, null]}';
  assert.deepEqual(parseExactJson(text), {
    worker_id: 5141444950165349785n,
    hashes: [
      18446744073709551615n,
      -9223372036854775808n,
      9007199254740991, // the largest safe integer stays a number
      1234567890123456,
      42,
      -7,
      1.5,
      12345678901234567890.5, // not an integer: a number, as JSON.parse gives
      Infinity,
      2000,
    ],
    s: '12345678901234567890', // digits in a string are a string
    t: [true, false, null],
  });
  assert.deepEqual(parseExactJson('[]'), []);
  assert.equal(parseExactJson('  99999999999999999999  '), 99999999999999999999n);
});

test('parseExactJson(): strings that could forge the marker, odd keys, and errors', () => {
  // An escaped NUL in a string takes the exact parser; the result is the same.
  assert.deepEqual(parseExactJson('{"a": "\\u0000#123", "b": 18446744073709551615}'), {
    a: '\u0000#123',
    b: 18446744073709551615n,
  });
  assert.deepEqual(parseExactJson('{"q": "say \\"12345678901234567890\\"", "n": 1}'), {
    q: 'say "12345678901234567890"',
    n: 1,
  });
  const proto = parseExactJson('{"__proto__": {"x": 18446744073709551615}}') as object;
  assert.equal(Object.getPrototypeOf(proto), Object.prototype, 'the prototype is not set');
  assert.deepEqual(Object.keys(proto), ['__proto__']);
  for (const bad of ['[1 2]', '{"a": 18446744073709551615', '', '[1,]', 'nul']) {
    assert.throws(
      () => parseExactJson(bad),
      (e: unknown) => e instanceof SyntaxError && /Invalid JSON/.test(e.message),
      bad,
    );
  }
});
