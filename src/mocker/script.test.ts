import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { PreprocessedRequest } from '../core/plane/worker.ts';
import {
  markedAnswer,
  MockerGuidedDecodingError,
  parseScript,
  sampleJson,
  scriptedAnswer,
} from './script.ts';

const request = (guided?: Record<string, unknown>): PreprocessedRequest =>
  ({
    model: 'm',
    token_ids: [1, 2],
    stop_conditions: {},
    sampling_options: guided ? { guided_decoding: guided } : {},
    output_options: {},
    eos_token_ids: [],
  }) as unknown as PreprocessedRequest;

describe('parseScript()', () => {
  test('the first matching rule answers, with $N groups; outputs lists advance per match', () => {
    const script = parseScript(JSON.stringify({
      rules: [
        { match: 'city (\\w+)', output: 'call $1' },
        { match: 'again', outputs: ['one', 'two'] },
      ],
    }));
    assert.equal(script.answer('the city Oslo and again'), 'call Oslo');
    assert.equal(script.answer('again'), 'one');
    assert.equal(script.answer('again'), 'two');
    assert.equal(script.answer('again'), 'two');
    assert.equal(script.answer('nothing'), undefined);
  });

  test('bad files say what is wrong', () => {
    assert.throws(() => parseScript('{', 'f.json'), /f\.json is not JSON/);
    assert.throws(
      () => parseScript('{"rules": [{"match": "(", "output": ""}]}'),
      /rules\.0\.match/,
    );
    assert.throws(() => parseScript('{"rules": [{"match": "a"}]}'), /exactly one of "output"/);
    assert.throws(() => parseScript('{"rulez": []}'), /rulez|rules/);
  });
});

describe('scripted answers', () => {
  test('the last [[say]] part of the prompt', () => {
    assert.equal(markedAnswer('a [[say]]one[[/say]] b [[say]]two[[/say]]'), 'two');
    assert.equal(markedAnswer('no marks'), undefined);
  });

  test('sampleJson() satisfies simple schemas', () => {
    assert.deepEqual(
      sampleJson({
        type: 'object',
        properties: {
          s: { type: 'string' },
          e: { enum: ['b', 'c'] },
          n: { type: ['null', 'integer'], minimum: 5 },
          a: { type: 'array', items: { const: 1 }, minItems: 2 },
          o: { anyOf: [{ type: 'boolean' }, { type: 'string' }] },
        },
      }),
      { s: 'text', e: 'b', n: 5, a: [1, 1], o: true },
    );
  });

  test('guided json and choice are honoured; regex, grammar and structural tags refused', () => {
    const decode = () => 'prompt';
    assert.equal(
      scriptedAnswer(
        request({ json: { type: 'object', properties: { x: { type: 'number' } } } }),
        decode,
        {},
      ),
      '{"x":1}',
    );
    assert.equal(scriptedAnswer(request({ choice: ['a', 'b'] }), decode, {}), 'a');
    for (const kind of ['regex', 'grammar', 'structural_tag']) {
      assert.throws(
        () => scriptedAnswer(request({ [kind]: 'x' }), decode, {}),
        (e: unknown) => e instanceof MockerGuidedDecodingError && e.message.includes(kind),
      );
    }
    assert.equal(scriptedAnswer(request(), decode, {}), undefined);
    assert.equal(
      scriptedAnswer(request({ json: {} }), () => '[[say]]{"mine": 1}[[/say]]', {
        echoMarked: true,
      }),
      '{"mine": 1}',
    );
  });
});
