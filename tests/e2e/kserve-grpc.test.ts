/**
 * The KServe v2 gRPC frontend end to end: a real `@grpc/grpc-js` client, built from the same
 * `proto/grpc_predict_v2.proto`, against an in-process stack started with
 * `--kserve-grpc-server` and a simulated worker. Health, model metadata and configuration, unary
 * and streamed inference, errors with their gRPC status, and metrics on the metrics port.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import { loadKserveDefinition } from '../../src/adapters/kserve-server.ts';
import { currentRuntime } from '../helpers/process.ts';
import { metricValue, MODEL, type Stack, startStack } from '../helpers/stack.ts';
import { waitFor } from '../helpers/wait.ts';

interface Tensor {
  name: string;
  datatype: string;
  shape: number[];
  contents: { bytes_contents: Uint8Array[]; bool_contents: boolean[] } | null;
}
interface InferResponse {
  model_name: string;
  model_version: string;
  id: string;
  outputs: Tensor[];
}
interface StreamResponse {
  error_message: string;
  infer_response: InferResponse | null;
}
type Param = { int64_param?: number; double_param?: number; string_param?: string };
interface InferRequest {
  model_name: string;
  id?: string;
  inputs: Array<{
    name: string;
    datatype: string;
    shape: number[];
    contents?: { bytes_contents?: Uint8Array[]; bool_contents?: boolean[] };
  }>;
  parameters?: Record<string, Param>;
  raw_input_contents?: Uint8Array[];
}
type Callback<T> = (error: grpc.ServiceError | null, value: T) => void;
type Unary = (request: unknown, callback: Callback<unknown>) => void;

/** Every mocker token is a space and 3 to 9 lower-case letters. */
const WORDS = /^( [a-z]{3,9})*$/;
const words = (text: string) => text.split(' ').length - 1;
const utf8 = (text: string) => new TextEncoder().encode(text);
const decode = (bytes: Uint8Array) => new TextDecoder().decode(bytes);

function textInput(text: string) {
  return {
    name: 'text_input',
    datatype: 'BYTES',
    shape: [1],
    contents: { bytes_contents: [utf8(text)] },
  };
}
function streaming(on: boolean) {
  return { name: 'streaming', datatype: 'BOOL', shape: [1], contents: { bool_contents: [on] } };
}
/** `text_output` and `finish_reason` of a response, first element each. */
function outputsOf(response: InferResponse): { text: string; finish: string } {
  const get = (name: string) => {
    const tensor = response.outputs.find((o) => o.name === name);
    assert.ok(tensor, `no "${name}" output`);
    assert.equal(tensor.datatype, 'BYTES');
    assert.deepEqual(tensor.shape, [1]);
    return decode(tensor.contents?.bytes_contents[0] ?? new Uint8Array());
  };
  return { text: get('text_output'), finish: get('finish_reason') };
}

describe(`KServe gRPC on ${currentRuntime()}`, () => {
  let stack: Stack;
  let client: grpc.Client;
  const call = <T>(method: string, request: unknown) =>
    new Promise<T>((resolve, reject) => {
      const fn = (client as unknown as Record<string, Unary>)[method] as Unary;
      fn.call(client, request, (error, value) => error ? reject(error) : resolve(value as T));
    });
  const failure = async (method: string, request: unknown): Promise<grpc.ServiceError> => {
    try {
      await call(method, request);
    } catch (error) {
      return error as grpc.ServiceError;
    }
    assert.fail(`${method} succeeded`);
  };
  /** Opens a ModelStreamInfer call and sends `requests`; resolves with every response once the
   * server has answered `expected` of them, then half-closes. */
  const stream = (requests: InferRequest[], done: (got: StreamResponse[]) => boolean) =>
    new Promise<StreamResponse[]>((resolve, reject) => {
      const method = (client as unknown as Record<
        string,
        () => grpc.ClientDuplexStream<
          InferRequest,
          StreamResponse
        >
      >).ModelStreamInfer as () => grpc.ClientDuplexStream<InferRequest, StreamResponse>;
      const duplex = method.call(client);
      const got: StreamResponse[] = [];
      duplex.on('data', (response: StreamResponse) => {
        got.push(response);
        if (done(got)) duplex.end();
      });
      duplex.on('end', () => resolve(got));
      duplex.on('error', reject);
      for (const request of requests) duplex.write(request);
    });

  before(async () => {
    stack = await startStack({
      frontendArgs: ['--kserve-grpc-server', '--kserve-grpc-port', '0', '--grpc-metrics-port', '0'],
    });
    const kserve = stack.frontend.kserve;
    assert.ok(kserve, 'the KServe server started');
    const Client = grpc.makeGenericClientConstructor(
      loadKserveDefinition(),
      'GRPCInferenceService',
    );
    client = new Client(`127.0.0.1:${kserve.port}`, grpc.credentials.createInsecure());
  });
  after(async () => {
    client?.close();
    await stack?.close();
  });

  test('ServerLive and ServerReady say true', async () => {
    assert.deepEqual(await call('ServerLive', {}), { live: true });
    assert.deepEqual(await call('ServerReady', {}), { ready: true });
  });

  test('ModelReady is true for a served model and false for an unknown one', async () => {
    assert.deepEqual(await call('ModelReady', { name: MODEL }), { ready: true });
    assert.deepEqual(await call('ModelReady', { name: MODEL, version: '1' }), { ready: true });
    assert.deepEqual(await call('ModelReady', { name: 'no-such-model' }), { ready: false });
    assert.deepEqual(await call('ModelReady', { name: MODEL, version: '7' }), { ready: false });
  });

  test('ModelMetadata describes the text tensors', async () => {
    const meta = await call<Record<string, unknown>>('ModelMetadata', { name: MODEL });
    assert.deepEqual(meta, {
      name: MODEL,
      versions: ['1'],
      platform: 'dynamo',
      inputs: [
        { name: 'text_input', datatype: 'BYTES', shape: [1] },
        { name: 'streaming', datatype: 'BOOL', shape: [1] },
      ],
      outputs: [
        { name: 'text_output', datatype: 'BYTES', shape: [-1] },
        { name: 'finish_reason', datatype: 'BYTES', shape: [-1] },
      ],
    });
  });

  test('ModelConfig gives the Triton configuration: streaming optional, decoupled', async () => {
    const { config } = await call<{ config: Record<string, unknown> }>('ModelConfig', {
      name: MODEL,
    });
    assert.equal(config.name, MODEL);
    assert.equal(config.platform, 'dynamo');
    assert.equal(config.backend, 'dynamo');
    assert.deepEqual(config.input, [
      { name: 'text_input', data_type: 'TYPE_STRING', dims: [1], optional: false },
      { name: 'streaming', data_type: 'TYPE_BOOL', dims: [1], optional: true },
    ]);
    assert.deepEqual(config.output, [
      { name: 'text_output', data_type: 'TYPE_STRING', dims: [-1] },
      { name: 'finish_reason', data_type: 'TYPE_STRING', dims: [-1] },
    ]);
    assert.deepEqual(config.model_transaction_policy, { decoupled: true });
  });

  test('ModelMetadata and ModelConfig of an unknown model are NOT_FOUND', async () => {
    for (const method of ['ModelMetadata', 'ModelConfig']) {
      const error = await failure(method, { name: 'no-such-model' });
      assert.equal(error.code, grpc.status.NOT_FOUND, method);
      assert.equal(error.details, 'Model "no-such-model" not found');
    }
  });

  test('ModelInfer generates text, honours max_tokens and echoes the id', async () => {
    const response = await call<InferResponse>('ModelInfer', {
      model_name: MODEL,
      id: 'req-1',
      inputs: [textInput('Once upon a time')],
      parameters: { max_tokens: { int64_param: 6 } },
    });
    assert.equal(response.model_name, MODEL);
    assert.equal(response.model_version, '1');
    assert.equal(response.id, 'req-1');
    const { text, finish } = outputsOf(response);
    assert.match(text, WORDS);
    assert.equal(words(text), 6);
    assert.equal(finish, 'length');
  });

  test('ModelInfer reads raw_input_contents (length-prefixed BYTES, one BOOL byte)', async () => {
    const prompt = utf8('Hello there');
    const raw = new Uint8Array(4 + prompt.length);
    new DataView(raw.buffer).setUint32(0, prompt.length, true);
    raw.set(prompt, 4);
    const response = await call<InferResponse>('ModelInfer', {
      model_name: MODEL,
      inputs: [
        { name: 'text_input', datatype: 'BYTES', shape: [1, 1] },
        { name: 'streaming', datatype: 'BOOL', shape: [1] },
      ],
      raw_input_contents: [raw, new Uint8Array([0])],
      parameters: { max_tokens: { int64_param: 3 } },
    });
    assert.equal(words(outputsOf(response).text), 3);
  });

  test('ModelInfer errors carry the right gRPC status', async () => {
    const unknown = await failure('ModelInfer', {
      model_name: 'no-such-model',
      inputs: [textInput('hi')],
    });
    assert.equal(unknown.code, grpc.status.NOT_FOUND);
    assert.equal(unknown.details, 'Model "no-such-model" not found');

    const streamed = await failure('ModelInfer', {
      model_name: MODEL,
      inputs: [textInput('hi'), streaming(true)],
    });
    assert.equal(streamed.code, grpc.status.INVALID_ARGUMENT);
    assert.match(streamed.details, /Streaming is not supported/);

    const badInput = await failure('ModelInfer', {
      model_name: MODEL,
      inputs: [textInput('hi'), { name: 'image', datatype: 'BYTES', shape: [1] }],
    });
    assert.equal(badInput.code, grpc.status.INVALID_ARGUMENT);
    assert.match(badInput.details, /Input "image" is not supported/);

    const missing = await failure('ModelInfer', { model_name: MODEL, inputs: [] });
    assert.equal(missing.code, grpc.status.INVALID_ARGUMENT);
    assert.match(missing.details, /Missing required input "text_input"/);

    const badParam = await failure('ModelInfer', {
      model_name: MODEL,
      inputs: [textInput('hi')],
      parameters: { temperature: { double_param: 9 } },
    });
    assert.equal(badParam.code, grpc.status.INVALID_ARGUMENT);
    assert.match(badParam.details, /temperature/);
  });

  test('ModelStreamInfer streams one response per delta for a streaming request', async () => {
    const got = await stream(
      [{
        model_name: MODEL,
        id: 'stream-1',
        inputs: [textInput('Tell me a story'), streaming(true)],
        parameters: { max_tokens: { int64_param: 8 } },
      }],
      (g) =>
        g.some((r) => r.error_message || (r.infer_response && outputsOf(r.infer_response).finish)),
    );
    assert.ok(got.length >= 2, `expected several responses, got ${got.length}`);
    assert.ok(got.every((r) => r.error_message === '' && r.infer_response));
    const parts = got.map((r) => outputsOf(r.infer_response as InferResponse));
    assert.ok(got.every((r) => r.infer_response?.id === 'stream-1'));
    const text = parts.map((p) => p.text).join('');
    assert.match(text, WORDS);
    assert.equal(words(text), 8);
    assert.equal(parts[parts.length - 1]?.finish, 'length');
    assert.ok(parts.slice(0, -1).every((p) => p.finish === ''));
  });

  test('one ModelStreamInfer call answers requests in order; a bad one gets error_message', async () => {
    const got = await stream([
      {
        model_name: MODEL,
        id: 'a',
        inputs: [textInput('first')],
        parameters: { max_tokens: { int64_param: 2 } },
      },
      { model_name: 'no-such-model', id: 'b', inputs: [textInput('second')] },
      {
        model_name: MODEL,
        id: 'c',
        inputs: [textInput('third')],
        parameters: { max_tokens: { int64_param: 3 } },
      },
    ], (g) => g.length === 3);
    assert.equal(got.length, 3);
    assert.equal(got[0]?.infer_response?.id, 'a');
    assert.equal(words(outputsOf(got[0]?.infer_response as InferResponse).text), 2);
    assert.equal(got[1]?.error_message, 'Model "no-such-model" not found');
    assert.equal(got[1]?.infer_response, null);
    assert.equal(got[2]?.infer_response?.id, 'c');
    assert.equal(words(outputsOf(got[2]?.infer_response as InferResponse).text), 3);
  });

  test('a cancelled ModelStreamInfer call frees the worker', async () => {
    const method = (client as unknown as Record<
      string,
      () => grpc.ClientDuplexStream<
        InferRequest,
        StreamResponse
      >
    >).ModelStreamInfer as () => grpc.ClientDuplexStream<InferRequest, StreamResponse>;
    const duplex = method.call(client);
    const first = new Promise<StreamResponse>((resolve) => duplex.once('data', resolve));
    duplex.on('error', () => {}); // CANCELLED, as asked
    duplex.write({
      model_name: MODEL,
      inputs: [textInput('A very long story'), streaming(true)],
      parameters: { max_tokens: { int64_param: 2000 }, ignore_eos: { bool_param: true } } as never,
    });
    const response = await first;
    assert.equal(response.error_message, '');
    assert.equal(outputsOf(response.infer_response as InferResponse).finish, '');
    assert.ok(stack.workers.some((w) => w.activeRequests() > 0), 'the request is running');
    duplex.cancel();
    await waitFor(() => stack.workers.every((w) => w.activeRequests() === 0), {
      timeoutMs: 10_000,
      what: 'the worker to drop the cancelled request',
    });
  });

  test('the metrics port serves /metrics from the frontend registry', async () => {
    const port = stack.frontend.kserve?.metricsPort;
    const res = await fetch(`http://127.0.0.1:${port}/metrics`);
    assert.equal(res.status, 200);
    const text = await res.text();
    const served = metricValue(text, 'dynamo_frontend_requests_total', {
      model: MODEL,
      endpoint: 'completions',
    });
    assert.ok(served >= 4, `requests_total ${served}`);
    assert.equal((await fetch(`http://127.0.0.1:${port}/nope`)).status, 404);
  });
});

describe(`KServe gRPC shutdown on ${currentRuntime()}`, () => {
  test('a drain ends an idle ModelStreamInfer call with OK instead of waiting it out', async () => {
    const stack = await startStack({
      frontendArgs: ['--kserve-grpc-server', '--kserve-grpc-port', '0', '--grpc-metrics-port', '0'],
      env: { DYN_HTTP_GRACEFUL_SHUTDOWN_TIMEOUT_SECS: '20' },
    });
    const Client = grpc.makeGenericClientConstructor(
      loadKserveDefinition(),
      'GRPCInferenceService',
    );
    const client = new Client(
      `127.0.0.1:${stack.frontend.kserve?.port}`,
      grpc.credentials.createInsecure(),
    );
    try {
      const method = (client as unknown as Record<
        string,
        () => grpc.ClientDuplexStream<
          InferRequest,
          StreamResponse
        >
      >).ModelStreamInfer as () => grpc.ClientDuplexStream<InferRequest, StreamResponse>;
      const duplex = method.call(client);
      const answered = new Promise<StreamResponse>((resolve) => duplex.once('data', resolve));
      const status = new Promise<grpc.StatusObject>((resolve) => duplex.on('status', resolve));
      duplex.on('error', () => {});
      duplex.write({
        model_name: MODEL,
        inputs: [textInput('hi')],
        parameters: { max_tokens: { int64_param: 2 } },
      });
      assert.equal((await answered).error_message, '');
      // The stream is open and idle now.
      await stack.close();
      // Waited out, the drain would have hit its 20 s timeout and force-closed the call.
      assert.deepEqual(
        stack.logs.filter((l) => /drain timeout reached/.test(String(l.msg))),
        [],
      );
      assert.equal((await status).code, grpc.status.OK);
    } finally {
      client.close();
      await stack.close();
    }
  });
});
