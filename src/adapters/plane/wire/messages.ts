/**
 * The JSON messages inside TwoPart frames, as Dynamo spells them (`pipeline/network.rs`,
 * `tcp/client.rs`): the request's `RequestControlMessage` header, the call-home handshake, the
 * response prologue, `NetworkStreamWrapper` items and the control frames (`stop`, `kill`,
 * `sentinel`). Payloads are always JSON; `payload_codec` is never set.
 */
import { PlaneError } from '../../../core/plane/errors.ts';
import { decodeTwoPart, encodeTwoPart, type TwoPartMessage } from './two-part.ts';

export interface ConnectionInfo {
  /** `tcp_server` for Dynamo's call-home; `http_stream` / `nats_stream` for Switchboard's variants. */
  transport: string;
  /** A JSON string whose shape depends on `transport`. */
  info: string;
}

export interface RequestControlMessage {
  id: string;
  request_type: 'single_in';
  response_type: 'many_out';
  connection_info?: ConnectionInfo;
}

/** `connection_info.info` of the `tcp_server` transport (`TcpStreamConnectionInfo`). */
export interface TcpStreamConnectionInfo {
  /** `host:port` of the frontend's call-home listener. */
  address: string;
  /** Unique per request: how the frontend matches the incoming connection to the request. */
  subject: string;
  /** The request id. */
  context: string;
  stream_type: 'response';
}

export type ControlAction = 'stop' | 'kill' | 'sentinel';

export type ResponseFrame =
  | { kind: 'handshake'; subject: string; streamType: string }
  | { kind: 'prologue'; error: string | null }
  | { kind: 'item'; data: unknown }
  | { kind: 'complete' }
  | { kind: 'control'; action: ControlAction };

const encoder = new TextEncoder();
const decoder = new TextDecoder();

const json = (value: unknown): Uint8Array => encoder.encode(JSON.stringify(value ?? null));

function parseJson(bytes: Uint8Array, what: string): unknown {
  try {
    return JSON.parse(decoder.decode(bytes));
  } catch (cause) {
    throw new PlaneError('protocol', `Decode error: ${what} is not valid JSON`, { cause });
  }
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** A request as one TwoPart message: the control message as header, the JSON body as body. */
export function encodeRequest(
  control: RequestControlMessage,
  body: unknown,
): Uint8Array<ArrayBuffer> {
  return encodeTwoPart({ header: json(control), body: json(body) });
}

export interface DecodedRequest {
  control: RequestControlMessage;
  body: unknown;
}

/** Parses a request; throws `PlaneError` of kind `protocol` ("Decode error: ...") when malformed. */
export function decodeRequest(
  bytes: Uint8Array,
  options: { maxSize?: number } = {},
): DecodedRequest {
  let message: TwoPartMessage;
  try {
    message = decodeTwoPart(bytes, options);
  } catch (error) {
    if (error instanceof PlaneError) {
      throw new PlaneError('protocol', `Decode error: ${error.message}`, { cause: error });
    }
    throw error;
  }
  if (message.header.length === 0 || message.body.length === 0) {
    throw new PlaneError('protocol', 'Decode error: the request needs both a header and a body');
  }
  const control = parseJson(message.header, 'the control message');
  if (!isObject(control) || typeof control.id !== 'string' || control.id === '') {
    throw new PlaneError('protocol', 'Decode error: the control message has no "id"');
  }
  const info = control.connection_info;
  if (
    info !== undefined && info !== null &&
    (!isObject(info) || typeof info.transport !== 'string' || typeof info.info !== 'string')
  ) {
    throw new PlaneError('protocol', 'Decode error: "connection_info" is malformed');
  }
  return {
    control: control as unknown as RequestControlMessage,
    body: parseJson(message.body, 'the request body'),
  };
}

/** Parses `connection_info.info`; throws "Decode error: ..." when it is not a JSON object. */
export function parseConnectionInfo(info: ConnectionInfo): Record<string, unknown> {
  let value: unknown;
  try {
    value = JSON.parse(info.info);
  } catch (cause) {
    throw new PlaneError('protocol', 'Decode error: "connection_info.info" is not valid JSON', {
      cause,
    });
  }
  if (!isObject(value)) {
    throw new PlaneError('protocol', 'Decode error: "connection_info.info" is not an object');
  }
  return value;
}

/** The first frame on a call-home stream: header-only `{"subject","stream_type":"response"}`. */
export function encodeHandshake(subject: string): Uint8Array<ArrayBuffer> {
  return encodeTwoPart({ header: json({ subject, stream_type: 'response' }) });
}

/** Header-only `{"error":null}`, or the message of the handler's failure before its first item. */
export function encodePrologue(error: string | null): Uint8Array<ArrayBuffer> {
  return encodeTwoPart({ header: json({ error }) });
}

/** Data-only `{"data":<item>,"complete_final":false}`. */
export function encodeItem(data: unknown): Uint8Array<ArrayBuffer> {
  return encodeTwoPart({ body: json({ data: data ?? null, complete_final: false }) });
}

/** Data-only `{"complete_final":true}`: the stream ended normally. */
export function encodeComplete(): Uint8Array<ArrayBuffer> {
  return encodeTwoPart({ body: json({ complete_final: true }) });
}

/** Header-only JSON string: `"stop"` / `"kill"` (frontend to worker), `"sentinel"` (worker). */
export function encodeControl(action: ControlAction): Uint8Array<ArrayBuffer> {
  return encodeTwoPart({ header: json(action) });
}

/** The item a handler's mid-stream failure becomes: Dynamo's `Annotated` error event. */
export function errorItem(message: string): { event: 'error'; comment: string[] } {
  return { event: 'error', comment: [message] };
}

/** Classifies one frame of a response stream; throws `PlaneError` of kind `protocol`. */
export function parseResponseFrame(message: TwoPartMessage): ResponseFrame {
  if (message.body.length > 0) {
    const wrapper = parseJson(message.body, 'a response item');
    if (!isObject(wrapper)) {
      throw new PlaneError('protocol', 'Decode error: a response item is not an object');
    }
    if (wrapper.complete_final === true) return { kind: 'complete' };
    if (!('data' in wrapper)) {
      throw new PlaneError('protocol', 'Decode error: a response item has no "data"');
    }
    return { kind: 'item', data: wrapper.data };
  }
  const header = parseJson(message.header, 'a response header');
  if (header === 'stop' || header === 'kill' || header === 'sentinel') {
    return { kind: 'control', action: header };
  }
  if (isObject(header)) {
    if (typeof header.subject === 'string') {
      return {
        kind: 'handshake',
        subject: header.subject,
        streamType: String(header.stream_type),
      };
    }
    if ('error' in header) {
      const error = header.error;
      return {
        kind: 'prologue',
        error: error === null || error === undefined
          ? null
          : typeof error === 'string'
          ? error
          : JSON.stringify(error),
      };
    }
  }
  throw new PlaneError('protocol', 'Decode error: unknown response frame');
}
