import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { stringifyExactJson as stringifyJson } from '../../json.ts';
import type { RouterEvent } from './events.ts';

describe('stringifyJson()', () => {
  test('writes u64 BigInts as exact decimal numbers', () => {
    const event: RouterEvent = {
      worker_id: 7n,
      event: {
        event_id: 3,
        data: {
          stored: {
            parent_hash: null,
            blocks: [{ block_hash: 18446744073709551615n, tokens_hash: 14643705804678351452n }],
          },
        },
        dp_rank: 0,
      },
    };
    assert.equal(
      stringifyJson(event),
      '{"worker_id":7,"event":{"event_id":3,"data":{"stored":{"parent_hash":null,"blocks":' +
        '[{"block_hash":18446744073709551615,"tokens_hash":14643705804678351452}]}},"dp_rank":0}}',
    );
  });

  test('matches JSON.stringify for plain values', () => {
    const value = {
      s: 'a"b\n',
      n: 1.5,
      t: true,
      z: null,
      u: undefined,
      a: [1, undefined, 'x'],
      nan: Number.NaN,
      nested: { removed: { block_hashes: [] } },
      cleared: 'cleared',
    };
    assert.equal(stringifyJson(value), JSON.stringify(value));
  });
});
