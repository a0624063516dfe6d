import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { ModelCard } from '../discovery/model-card.ts';
import { BadRequestError } from '../errors.ts';
import {
  checkGuidedSupport,
  GuidedDecodingUnsupportedError,
  planGuidedDecoding,
} from './guided.ts';

const tool = (name: string, parameters?: unknown) => ({
  type: 'function',
  function: { name, ...(parameters ? { parameters } : {}) },
});
const card = (kinds?: string[]): ModelCard =>
  ({
    display_name: 'm',
    kv_cache_block_size: 16,
    model_type: 'Chat',
    model_input: 'Tokens',
    runtime_config: kinds ? { runtime_data: { guided_decoding: kinds } } : {},
  }) as ModelCard;

describe('planGuidedDecoding()', () => {
  test('response_format json_object and json_schema become guided json', () => {
    assert.deepEqual(planGuidedDecoding({ response_format: { type: 'json_object' } }).guided, {
      json: { type: 'object' },
    });
    const schema = { type: 'object', properties: { a: { type: 'string' } } };
    const plan = planGuidedDecoding({
      response_format: { type: 'json_schema', json_schema: { schema } },
    });
    assert.deepEqual(plan.guided, { json: schema });
    assert.equal(plan.source, 'response_format');
    assert.equal(planGuidedDecoding({ response_format: { type: 'text' } }).guided, undefined);
  });

  test('guided_* extensions pass through (a JSON-text schema is parsed), with the backend', () => {
    assert.deepEqual(
      planGuidedDecoding({ guided_json: '{"type":"object"}', guided_decoding_backend: 'xgrammar' })
        .guided,
      { json: { type: 'object' }, backend: 'xgrammar' },
    );
    assert.deepEqual(planGuidedDecoding({ guided_regex: 'a+' }).guided, { regex: 'a+' });
    assert.throws(() => planGuidedDecoding({ guided_json: '{' }), BadRequestError);
  });

  test('tool_choice: auto/none parse or not; required and named constrain with a schema', () => {
    const tools = [tool('a', { type: 'object', properties: { x: {} } }), tool('b')];
    assert.deepEqual(planGuidedDecoding({ tools }).tools, { kind: 'auto' });
    assert.deepEqual(planGuidedDecoding({ tools, tool_choice: 'none' }).tools, { kind: 'off' });
    assert.deepEqual(planGuidedDecoding({ tool_choice: 'required' }).tools, { kind: 'off' });
    const required = planGuidedDecoding({
      tools,
      tool_choice: 'required',
      parallel_tool_calls: false,
    });
    assert.deepEqual(required.tools, { kind: 'required' });
    const schema = required.guided?.json as {
      minItems: number;
      maxItems: number;
      items: { anyOf: unknown[] };
    };
    assert.equal(schema.minItems, 1);
    assert.equal(schema.maxItems, 1);
    assert.equal(schema.items.anyOf.length, 2);
    const named = planGuidedDecoding({
      tools,
      tool_choice: { type: 'function', function: { name: 'a' } },
    });
    assert.deepEqual(named.tools, { kind: 'named', name: 'a' });
    assert.deepEqual(named.guided, { json: { type: 'object', properties: { x: {} } } });
  });

  test('two constraints at once are a 400', () => {
    assert.throws(
      () =>
        planGuidedDecoding({
          tools: [tool('a')],
          tool_choice: 'required',
          response_format: { type: 'json_object' },
        }),
      /Only one guided-decoding constraint can be set; received: response_format, tool_choice/,
    );
  });
});

describe('checkGuidedSupport()', () => {
  test('a card listing kinds refuses the others; a card without the list is trusted', () => {
    const regex = planGuidedDecoding({ guided_regex: 'a' });
    checkGuidedSupport(card(), regex);
    checkGuidedSupport(card(['regex']), regex);
    assert.throws(
      () => checkGuidedSupport(card(['json']), regex),
      (e: unknown) =>
        e instanceof GuidedDecodingUnsupportedError && e.status === 400 &&
        e.param === 'guided_regex' && /support: json/.test(e.message),
    );
    assert.throws(
      () =>
        checkGuidedSupport(
          card([]),
          planGuidedDecoding({ response_format: { type: 'json_object' } }),
        ),
      /cannot honour response_format.*they support none/,
    );
    checkGuidedSupport(card([]), planGuidedDecoding({}));
  });
});
