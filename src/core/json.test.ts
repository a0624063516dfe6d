import assert from 'node:assert/strict';
import { test } from 'node:test';
import { jsonText } from './json.ts';

test('jsonText() is JSON.stringify, and exact JSON when a bigint is inside', () => {
  assert.equal(jsonText({ a: 1, b: undefined, c: 'x' }), '{"a":1,"c":"x"}');
  assert.equal(
    jsonText({ nvext: { worker_id: { decode_worker_id: 5141444950165349785n } } }),
    '{"nvext":{"worker_id":{"decode_worker_id":5141444950165349785}}}',
  );
});
