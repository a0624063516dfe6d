/**
 * KServe v2 (Open Inference Protocol) messages as plain objects, and the pure translation between
 * them and the OpenAI completions pipeline: `text_input` (BYTES) and an optional `streaming`
 * (BOOL) in, `text_output` and `finish_reason` (BYTES) out. Field names follow
 * `proto/grpc_predict_v2.proto` as `@grpc/proto-loader` hands them over (`keepCase`, int64 as
 * numbers, enums as names, defaults filled, `oneofs` naming the set member).
 */
import { BadRequestError, OverloadedError, toApiError } from '../../errors.ts';
import { type CompletionRequest, CompletionRequestSchema } from '../openai/schemas.ts';
import { issuesToValidationError } from '../openai/validate.ts';

export interface InferParameter {
  bool_param?: boolean;
  int64_param?: number;
  string_param?: string;
  double_param?: number;
  uint64_param?: number;
  /** Which member of the oneof is set. */
  parameter_choice?: string;
}

export interface InferTensorContents {
  bool_contents?: boolean[];
  int_contents?: number[];
  int64_contents?: number[];
  uint_contents?: number[];
  uint64_contents?: number[];
  fp32_contents?: number[];
  fp64_contents?: number[];
  bytes_contents?: Uint8Array[];
}

export interface InferInputTensor {
  name: string;
  datatype: string;
  shape: number[];
  parameters?: Record<string, InferParameter>;
  contents?: InferTensorContents | null;
}

export interface ModelInferRequest {
  model_name: string;
  model_version?: string;
  id?: string;
  parameters?: Record<string, InferParameter>;
  inputs?: InferInputTensor[];
  outputs?: Array<{ name: string }>;
  raw_input_contents?: Uint8Array[];
}

export interface InferOutputTensor {
  name: string;
  datatype: string;
  shape: number[];
  contents: InferTensorContents;
}

export interface ModelInferResponse {
  model_name: string;
  model_version: string;
  id: string;
  outputs: InferOutputTensor[];
}

export interface ModelStreamInferResponse {
  error_message: string;
  infer_response: ModelInferResponse | null;
}

export interface TensorMetadata {
  name: string;
  datatype: string;
  shape: number[];
}

export interface ModelMetadataResponse {
  name: string;
  versions: string[];
  platform: string;
  inputs: TensorMetadata[];
  outputs: TensorMetadata[];
}

export interface ModelConfig {
  name: string;
  platform: string;
  backend: string;
  max_batch_size: number;
  input: Array<{ name: string; data_type: string; dims: number[]; optional?: boolean }>;
  output: Array<{ name: string; data_type: string; dims: number[] }>;
  model_transaction_policy: { decoupled: boolean };
}

/** The only model version Switchboard serves, as Dynamo reports it. */
export const MODEL_VERSION = '1';
export const PLATFORM = 'dynamo';

export const TEXT_INPUT = 'text_input';
export const STREAMING_INPUTS = ['streaming', 'stream'] as const;
export const TEXT_OUTPUT = 'text_output';
export const FINISH_REASON = 'finish_reason';

/**
 * Request parameters (`ModelInferRequest.parameters`) that become completion fields. Others are
 * ignored: KServe and Triton clients send their own (`priority`, `timeout`, `sequence_id`, ...).
 */
export const SAMPLING_PARAMETERS = [
  'max_tokens',
  'min_tokens',
  'temperature',
  'top_p',
  'top_k',
  'min_p',
  'seed',
  'stop',
  'ignore_eos',
  'frequency_penalty',
  'presence_penalty',
  'repetition_penalty',
] as const;

/** What a text model's metadata says about its tensors (Dynamo's shapes). */
export function textModelMetadata(name: string): ModelMetadataResponse {
  return {
    name,
    versions: [MODEL_VERSION],
    platform: PLATFORM,
    inputs: [
      { name: TEXT_INPUT, datatype: 'BYTES', shape: [1] },
      { name: 'streaming', datatype: 'BOOL', shape: [1] },
    ],
    outputs: [
      { name: TEXT_OUTPUT, datatype: 'BYTES', shape: [-1] },
      { name: FINISH_REASON, datatype: 'BYTES', shape: [-1] },
    ],
  };
}

/** Triton's model configuration of a text model: `streaming` is optional, outputs vary in length. */
export function textModelConfig(name: string): ModelConfig {
  return {
    name,
    platform: PLATFORM,
    backend: PLATFORM,
    max_batch_size: 0,
    input: [
      { name: TEXT_INPUT, data_type: 'TYPE_STRING', dims: [1] },
      { name: 'streaming', data_type: 'TYPE_BOOL', dims: [1], optional: true },
    ],
    output: [
      { name: TEXT_OUTPUT, data_type: 'TYPE_STRING', dims: [-1] },
      { name: FINISH_REASON, data_type: 'TYPE_STRING', dims: [-1] },
    ],
    model_transaction_policy: { decoupled: true },
  };
}

const invalid = (message: string) => new BadRequestError(message);

const sameShape = (shape: readonly number[], want: readonly number[]) =>
  shape.length === want.length && shape.every((d, i) => Number(d) === want[i]);

/** A raw BYTES element: a 4-byte little-endian length, then the bytes. */
function rawBytesElement(raw: Uint8Array, name: string): Uint8Array {
  if (raw.length < 4) {
    throw invalid(
      `Raw contents of "${name}" must start with a 4-byte length (got ${raw.length} bytes)`,
    );
  }
  const length = new DataView(raw.buffer, raw.byteOffset, raw.byteLength).getUint32(0, true);
  if (4 + length > raw.length) {
    throw invalid(`Raw contents of "${name}" are shorter than their length prefix (${length})`);
  }
  return raw.subarray(4, 4 + length);
}

function parameterValue(param: InferParameter): unknown {
  const choice = param.parameter_choice;
  if (choice) return (param as Record<string, unknown>)[choice];
  return param.string_param ?? param.int64_param ?? param.double_param ?? param.bool_param ??
    param.uint64_param;
}

/** The parsed request: an OpenAI completions body, and whether the client asked for a stream. */
export interface KserveTextRequest {
  completion: CompletionRequest;
  stream: boolean;
  /** The request's `id`, echoed in every response ('' when none was given). */
  id: string;
}

/**
 * A `ModelInferRequest` for a text model as a completions request. Throws `BadRequestError`
 * (gRPC INVALID_ARGUMENT) for an unknown input, a wrong datatype or shape, or a missing prompt.
 */
export function toCompletionRequest(request: ModelInferRequest): KserveTextRequest {
  const inputs = request.inputs ?? [];
  const raw = request.raw_input_contents ?? [];
  if (raw.length > 0 && raw.length !== inputs.length) {
    throw invalid('"raw_input_contents" must hold one entry for every input');
  }
  let text: string | undefined;
  let stream = false;
  inputs.forEach((input, index) => {
    const contents = input.contents ?? undefined;
    const shape = (input.shape ?? []).map(Number);
    if (input.name === TEXT_INPUT) {
      if (input.datatype !== 'BYTES') {
        throw invalid(`Input "${TEXT_INPUT}" must be BYTES (got "${input.datatype}")`);
      }
      if (!sameShape(shape, [1]) && !sameShape(shape, [1, 1])) {
        throw invalid(`Input "${TEXT_INPUT}" must have shape [1] (got [${shape.join(', ')}])`);
      }
      const bytes = raw.length > 0
        ? rawBytesElement(raw[index] as Uint8Array, TEXT_INPUT)
        : contents?.bytes_contents?.[0];
      if (bytes === undefined) throw invalid(`Input "${TEXT_INPUT}" must hold one element`);
      text = new TextDecoder().decode(bytes);
    } else if ((STREAMING_INPUTS as readonly string[]).includes(input.name)) {
      if (input.datatype !== 'BOOL') {
        throw invalid(`Input "${input.name}" must be BOOL (got "${input.datatype}")`);
      }
      if (!sameShape(shape, [1])) {
        throw invalid(`Input "${input.name}" must have shape [1] (got [${shape.join(', ')}])`);
      }
      const value = raw.length > 0
        ? (raw[index] as Uint8Array).length > 0 ? (raw[index] as Uint8Array)[0] !== 0 : undefined
        : contents?.bool_contents?.[0];
      if (value === undefined) throw invalid(`Input "${input.name}" must hold one element`);
      stream = value;
    } else {
      throw invalid(
        `Input "${input.name}" is not supported; the inputs are "${TEXT_INPUT}" and "streaming"`,
      );
    }
  });
  if (text === undefined) throw invalid(`Missing required input "${TEXT_INPUT}"`);

  const body: Record<string, unknown> = { model: request.model_name, prompt: text, stream };
  for (const [key, param] of Object.entries(request.parameters ?? {})) {
    if ((SAMPLING_PARAMETERS as readonly string[]).includes(key)) body[key] = parameterValue(param);
  }
  const parsed = CompletionRequestSchema.safeParse(body);
  if (!parsed.success) throw issuesToValidationError(parsed.error.issues, body);
  return { completion: parsed.data, stream, id: request.id ?? '' };
}

const encoder = new TextEncoder();

/** One response: `text_output` and `finish_reason` with one element per choice. */
export function inferResponse(
  model: string,
  id: string,
  choices: ReadonlyArray<{ text: string; finishReason: string | null }>,
): ModelInferResponse {
  const bytes = (values: string[]): InferOutputTensor['contents'] => ({
    bytes_contents: values.map((v) => encoder.encode(v)),
  });
  return {
    model_name: model,
    model_version: MODEL_VERSION,
    id,
    outputs: [
      {
        name: TEXT_OUTPUT,
        datatype: 'BYTES',
        shape: [choices.length],
        contents: bytes(choices.map((c) => c.text)),
      },
      {
        name: FINISH_REASON,
        datatype: 'BYTES',
        shape: [choices.length],
        contents: bytes(choices.map((c) => c.finishReason ?? '')),
      },
    ],
  };
}

/** gRPC status codes (grpc/doc/statuscodes.md): protocol data, not a library's. */
export const GrpcCode = {
  OK: 0,
  CANCELLED: 1,
  UNKNOWN: 2,
  INVALID_ARGUMENT: 3,
  DEADLINE_EXCEEDED: 4,
  NOT_FOUND: 5,
  PERMISSION_DENIED: 7,
  RESOURCE_EXHAUSTED: 8,
  UNIMPLEMENTED: 12,
  INTERNAL: 13,
  UNAVAILABLE: 14,
  UNAUTHENTICATED: 16,
} as const;

/** The gRPC status for an error of the one hierarchy; internals never reach the message. */
export function grpcStatusOf(error: unknown): { code: number; message: string } {
  const api = toApiError(error);
  const status = api.status;
  const code = api instanceof OverloadedError
    ? GrpcCode.RESOURCE_EXHAUSTED
    : status === 400 || status === 405 || status === 415 || status === 422
    ? GrpcCode.INVALID_ARGUMENT
    : status === 401
    ? GrpcCode.UNAUTHENTICATED
    : status === 403
    ? GrpcCode.PERMISSION_DENIED
    : status === 404
    ? GrpcCode.NOT_FOUND
    : status === 413 || status === 429 || status === 529
    ? GrpcCode.RESOURCE_EXHAUSTED
    : status === 499
    ? GrpcCode.CANCELLED
    : status === 501
    ? GrpcCode.UNIMPLEMENTED
    : status === 503
    ? GrpcCode.UNAVAILABLE
    : status === 504
    ? GrpcCode.DEADLINE_EXCEEDED
    : status >= 400 && status < 500
    ? GrpcCode.INVALID_ARGUMENT
    : GrpcCode.INTERNAL;
  return { code, message: api.message };
}
