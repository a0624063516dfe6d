import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  BadRequestError,
  CancelledError,
  ModelNotFoundError,
  OverloadedError,
  ServiceUnavailableError,
} from '../../errors.ts';
import {
  GrpcCode,
  grpcStatusOf,
  type InferInputTensor,
  inferResponse,
  toCompletionRequest,
} from './protocol.ts';

const utf8 = (text: string) => new TextEncoder().encode(text);
const text = (value: string, shape = [1]): InferInputTensor => ({
  name: 'text_input',
  datatype: 'BYTES',
  shape,
  contents: { bytes_contents: [utf8(value)] },
});
const flag = (name: string, on: boolean): InferInputTensor => ({
  name,
  datatype: 'BOOL',
  shape: [1],
  contents: { bool_contents: [on] },
});
const rejects = (inputs: InferInputTensor[], message: RegExp, extra = {}) =>
  assert.throws(
    () => toCompletionRequest({ model_name: 'm', inputs, ...extra }),
    (e: unknown) => e instanceof BadRequestError && message.test(e.message),
  );

describe('toCompletionRequest()', () => {
  test('text_input becomes the prompt; streaming or stream sets stream', () => {
    const plain = toCompletionRequest({ model_name: 'm', id: 'x', inputs: [text('hello')] });
    assert.deepEqual(plain.completion, { model: 'm', prompt: 'hello', stream: false });
    assert.equal(plain.stream, false);
    assert.equal(plain.id, 'x');
    for (const name of ['streaming', 'stream']) {
      const on = toCompletionRequest({
        model_name: 'm',
        inputs: [text('hi', [1, 1]), flag(name, true)],
      });
      assert.equal(on.stream, true, name);
      assert.equal(on.completion.stream, true, name);
    }
  });

  test('sampling parameters pass on; other parameters are ignored', () => {
    const { completion } = toCompletionRequest({
      model_name: 'm',
      inputs: [text('hi')],
      parameters: {
        max_tokens: { int64_param: 12, parameter_choice: 'int64_param' },
        temperature: { double_param: 0.5, parameter_choice: 'double_param' },
        stop: { string_param: 'END', parameter_choice: 'string_param' },
        ignore_eos: { bool_param: true, parameter_choice: 'bool_param' },
        priority: { int64_param: 3, parameter_choice: 'int64_param' },
      },
    });
    assert.equal(completion.max_tokens, 12);
    assert.equal(completion.temperature, 0.5);
    assert.equal(completion.stop, 'END');
    assert.equal(completion.ignore_eos, true);
    assert.equal((completion as Record<string, unknown>).priority, undefined);
  });

  test('an out-of-range parameter is a validation error naming it', () => {
    rejects([text('hi')], /max_tokens/, {
      parameters: { max_tokens: { int64_param: -1, parameter_choice: 'int64_param' } },
    });
  });

  test('raw_input_contents: a length-prefixed BYTES element and a BOOL byte', () => {
    const prompt = utf8('raw prompt');
    const raw = new Uint8Array(4 + prompt.length + 3); // trailing bytes past the element are ignored
    new DataView(raw.buffer).setUint32(0, prompt.length, true);
    raw.set(prompt, 4);
    const parsed = toCompletionRequest({
      model_name: 'm',
      inputs: [
        { name: 'text_input', datatype: 'BYTES', shape: [1] },
        { name: 'streaming', datatype: 'BOOL', shape: [1] },
      ],
      raw_input_contents: [raw, new Uint8Array([1])],
    });
    assert.equal(parsed.completion.prompt, 'raw prompt');
    assert.equal(parsed.stream, true);
  });

  test('refuses unknown inputs, wrong datatypes and shapes, and a missing text_input', () => {
    rejects(
      [text('hi'), { name: 'image', datatype: 'BYTES', shape: [1] }],
      /"image" is not supported/,
    );
    rejects([{ ...text('hi'), datatype: 'FP32' }], /must be BYTES/);
    rejects([text('hi', [2])], /must have shape \[1\]/);
    rejects([text('hi'), { ...flag('streaming', true), datatype: 'BYTES' }], /must be BOOL/);
    rejects([], /Missing required input "text_input"/);
    rejects([{ name: 'text_input', datatype: 'BYTES', shape: [1], contents: {} }], /one element/);
    rejects([text('hi'), flag('stream', true)], /one entry for every input/, {
      raw_input_contents: [new Uint8Array([0, 0, 0, 0])],
    });
    rejects([{ name: 'text_input', datatype: 'BYTES', shape: [1] }], /4-byte length/, {
      raw_input_contents: [new Uint8Array([1])],
    });
  });
});

describe('inferResponse()', () => {
  test('text_output and finish_reason hold one BYTES element per choice', () => {
    const response = inferResponse('m', 'id-1', [
      { text: 'a', finishReason: 'stop' },
      { text: 'b', finishReason: null },
    ]);
    assert.equal(response.model_version, '1');
    assert.equal(response.id, 'id-1');
    const decode = (i: number) =>
      response.outputs[i]?.contents.bytes_contents?.map((b) => new TextDecoder().decode(b));
    assert.deepEqual(response.outputs.map((o) => [o.name, o.datatype, o.shape]), [
      ['text_output', 'BYTES', [2]],
      ['finish_reason', 'BYTES', [2]],
    ]);
    assert.deepEqual(decode(0), ['a', 'b']);
    assert.deepEqual(decode(1), ['stop', '']);
  });
});

describe('grpcStatusOf()', () => {
  test('maps the error hierarchy onto gRPC codes; internals stay hidden', () => {
    assert.deepEqual(grpcStatusOf(new ModelNotFoundError('x')), {
      code: GrpcCode.NOT_FOUND,
      message: 'Model "x" not found',
    });
    assert.equal(grpcStatusOf(new BadRequestError('bad')).code, GrpcCode.INVALID_ARGUMENT);
    assert.equal(grpcStatusOf(new ServiceUnavailableError('none')).code, GrpcCode.UNAVAILABLE);
    assert.equal(grpcStatusOf(new OverloadedError(503)).code, GrpcCode.RESOURCE_EXHAUSTED);
    assert.equal(grpcStatusOf(new CancelledError('gone')).code, GrpcCode.CANCELLED);
    assert.deepEqual(grpcStatusOf(new Error('secret path /etc')), {
      code: GrpcCode.INTERNAL,
      message: 'Internal server error',
    });
  });
});
