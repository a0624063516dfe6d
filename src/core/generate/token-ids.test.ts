import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ValidationError } from '../errors.ts';
import { checkTokenIds } from './token-ids.ts';

const refuses = (fn: () => void, param: string, message: RegExp) =>
  assert.throws(fn, (error: unknown) => {
    assert.ok(error instanceof ValidationError);
    assert.equal(error.status, 400);
    assert.equal(error.param, param);
    assert.match(error.message, message);
    return true;
  });

test('checkTokenIds() refuses ids beyond the vocabulary in every field that carries them', () => {
  refuses(
    () => checkTokenIds({}, 100, [[1, 2, 100]]),
    'prompt[2]',
    /token id 100 is out of the vocabulary \(0 to 99\)/,
  );
  refuses(() => checkTokenIds({}, 100, [[1], [5, 1e9]]), 'prompt[1][1]', /token id 1000000000/);
  refuses(() => checkTokenIds({ stop_token_ids: [3, 100] }, 100), 'stop_token_ids[1]', /100/);
  refuses(() => checkTokenIds({ allowed_token_ids: [200] }, 100), 'allowed_token_ids[0]', /200/);
  refuses(
    () => checkTokenIds({ bad_words_token_ids: [[1], [2, 300]] }, 100),
    'bad_words_token_ids[1][1]',
    /300/,
  );
  refuses(() => checkTokenIds({ nvext: { token_data: [100] } }, 100), 'nvext.token_data[0]', /100/);
  checkTokenIds({ stop_token_ids: [99], logit_bias: { '99': 1 } }, 100, ['text', [0, 99]]);
});

test('checkTokenIds() refuses logit_bias keys that are not token ids of the vocabulary', () => {
  refuses(
    () => checkTokenIds({ logit_bias: { abc: 1 } }, 100),
    'logit_bias',
    /key "abc" is not a token id/,
  );
  refuses(() => checkTokenIds({ logit_bias: { '-1': 1 } }, 100), 'logit_bias', /not a token id/);
  refuses(() => checkTokenIds({ logit_bias: { '150': 1 } }, 100), 'logit_bias.150', /150/);
});
