/**
 * ZMTP 3.1 wire codec (rfc.zeromq.org/spec/37), NULL mechanism only: the 64-byte greeting, frames
 * (short and long, MORE and COMMAND flags), the READY command with its metadata, and the PUB/SUB
 * subscription messages. Pure bytes in, bytes out; sockets live in `socket.ts`.
 */

export const FLAG_MORE = 0x01;
export const FLAG_LONG = 0x02;
export const FLAG_COMMAND = 0x04;

export const GREETING_SIZE = 64;

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** A protocol violation by the peer; the connection is dropped. */
export class ZmtpError extends Error {
  constructor(message: string, options: { cause?: unknown } = {}) {
    super(message, options);
    this.name = 'ZmtpError';
  }
}

/** Our greeting: signature, version 3.1, mechanism NULL, as-server 0, filler. */
export function encodeGreeting(): Uint8Array {
  const bytes = new Uint8Array(GREETING_SIZE);
  bytes[0] = 0xff;
  bytes[9] = 0x7f;
  bytes[10] = 3;
  bytes[11] = 1;
  bytes.set(encoder.encode('NULL'), 12);
  return bytes;
}

export interface Greeting {
  major: number;
  minor: number;
  mechanism: string;
}

/** Reads a peer's 64-byte greeting; throws `ZmtpError` on a bad signature or version < 3. */
export function decodeGreeting(bytes: Uint8Array): Greeting {
  if (bytes.length < GREETING_SIZE) throw new ZmtpError('Short ZMTP greeting');
  if (bytes[0] !== 0xff || bytes[9] !== 0x7f) throw new ZmtpError('Bad ZMTP signature');
  const major = bytes[10]!;
  const minor = bytes[11]!;
  if (major < 3) throw new ZmtpError(`Unsupported ZMTP version ${major}.${minor}`);
  let end = 12;
  while (end < 32 && bytes[end] !== 0) end++;
  const mechanism = decoder.decode(bytes.subarray(12, end));
  if (mechanism !== 'NULL') throw new ZmtpError(`Unsupported ZMTP mechanism "${mechanism}"`);
  return { major, minor, mechanism };
}

/** One frame's header plus body, written into `out` at `at`; returns the new offset. */
function writeFrame(out: Uint8Array, at: number, flags: number, body: Uint8Array): number {
  if (body.length > 255) {
    out[at] = flags | FLAG_LONG;
    new DataView(out.buffer, out.byteOffset).setBigUint64(at + 1, BigInt(body.length), false);
    at += 9;
  } else {
    out[at] = flags;
    out[at + 1] = body.length;
    at += 2;
  }
  out.set(body, at);
  return at + body.length;
}

const frameSize = (body: Uint8Array) => body.length + (body.length > 255 ? 9 : 2);

/** A multipart message as wire bytes: every frame but the last carries MORE. */
export function encodeMessage(frames: readonly Uint8Array[]): Uint8Array {
  let size = 0;
  for (const frame of frames) size += frameSize(frame);
  const out = new Uint8Array(size);
  let at = 0;
  frames.forEach((frame, i) => {
    at = writeFrame(out, at, i < frames.length - 1 ? FLAG_MORE : 0, frame);
  });
  return out;
}

/** A command frame: `name` (≤255 bytes) then `data`. */
export function encodeCommand(name: string, data: Uint8Array = new Uint8Array(0)): Uint8Array {
  const nameBytes = encoder.encode(name);
  const body = new Uint8Array(1 + nameBytes.length + data.length);
  body[0] = nameBytes.length;
  body.set(nameBytes, 1);
  body.set(data, 1 + nameBytes.length);
  const out = new Uint8Array(frameSize(body));
  writeFrame(out, 0, FLAG_COMMAND, body);
  return out;
}

/** READY with metadata properties (`Socket-Type`, `Identity`, ...). */
export function encodeReady(properties: Record<string, string>): Uint8Array {
  const parts: Uint8Array[] = [];
  for (const [name, value] of Object.entries(properties)) {
    const n = encoder.encode(name);
    const v = encoder.encode(value);
    const part = new Uint8Array(1 + n.length + 4 + v.length);
    part[0] = n.length;
    part.set(n, 1);
    new DataView(part.buffer).setUint32(1 + n.length, v.length, false);
    part.set(v, 5 + n.length);
    parts.push(part);
  }
  return encodeCommand('READY', concat(parts));
}

export interface Command {
  name: string;
  data: Uint8Array;
}

export function decodeCommand(body: Uint8Array): Command {
  const length = body[0];
  if (length === undefined || body.length < 1 + length) throw new ZmtpError('Bad ZMTP command');
  return { name: decoder.decode(body.subarray(1, 1 + length)), data: body.subarray(1 + length) };
}

/** Metadata of a READY command; property names compare case-insensitively (lower-cased here). */
export function decodeMetadata(data: Uint8Array): Map<string, string> {
  const out = new Map<string, string>();
  const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
  let at = 0;
  while (at < data.length) {
    const n = data[at]!;
    if (at + 1 + n + 4 > data.length) throw new ZmtpError('Bad ZMTP metadata');
    const name = decoder.decode(data.subarray(at + 1, at + 1 + n)).toLowerCase();
    const v = view.getUint32(at + 1 + n, false);
    const start = at + 5 + n;
    if (start + v > data.length) throw new ZmtpError('Bad ZMTP metadata');
    out.set(name, decoder.decode(data.subarray(start, start + v)));
    at = start + v;
  }
  return out;
}

/**
 * A subscription change as SUB sends it: the ZMTP 3.0 message form (`0x01|0x00` + prefix),
 * which every libzmq version accepts.
 */
export function encodeSubscription(prefix: Uint8Array, subscribe: boolean): Uint8Array {
  const body = new Uint8Array(prefix.length + 1);
  body[0] = subscribe ? 1 : 0;
  body.set(prefix, 1);
  return encodeMessage([body]);
}

/** A subscription change from either form: message (`0x01` prefix) or 3.1 command. */
export function decodeSubscription(
  frame: { command: boolean; body: Uint8Array },
): { subscribe: boolean; prefix: Uint8Array } | undefined {
  if (frame.command) {
    const command = decodeCommand(frame.body);
    if (command.name === 'SUBSCRIBE') return { subscribe: true, prefix: command.data };
    if (command.name === 'CANCEL') return { subscribe: false, prefix: command.data };
    return undefined;
  }
  const kind = frame.body[0];
  if (kind === 1 || kind === 0) return { subscribe: kind === 1, prefix: frame.body.subarray(1) };
  return undefined;
}

export function concat(parts: readonly Uint8Array[]): Uint8Array {
  if (parts.length === 1) return parts[0]!;
  let size = 0;
  for (const p of parts) size += p.length;
  const out = new Uint8Array(size);
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

export interface Frame {
  more: boolean;
  command: boolean;
  body: Uint8Array;
}

/**
 * Incremental reader: feed it chunks as they arrive; it yields the greeting once, then frames.
 * Frames larger than `maxFrameSize` are a protocol error (a guard against garbage lengths).
 */
export class ZmtpReader {
  #chunks: Uint8Array[] = [];
  #buffered = 0;
  #greeting: Greeting | undefined;
  readonly #maxFrameSize: number;

  constructor(options: { maxFrameSize?: number } = {}) {
    this.#maxFrameSize = options.maxFrameSize ?? 256 * 1024 * 1024;
  }

  get greeting(): Greeting | undefined {
    return this.#greeting;
  }

  push(chunk: Uint8Array): void {
    if (chunk.length === 0) return;
    this.#chunks.push(chunk);
    this.#buffered += chunk.length;
  }

  #peek(size: number): Uint8Array {
    if (this.#chunks[0]!.length < size) {
      const joined = concat(this.#chunks);
      this.#chunks = [joined];
    }
    return this.#chunks[0]!.subarray(0, size);
  }

  #take(size: number): Uint8Array {
    const out = this.#peek(size);
    const first = this.#chunks[0]!;
    if (first.length === size) this.#chunks.shift();
    else this.#chunks[0] = first.subarray(size);
    this.#buffered -= size;
    return out;
  }

  /** Reads the greeting when it is complete; true once read. */
  readGreeting(): boolean {
    if (this.#greeting) return true;
    if (this.#buffered < GREETING_SIZE) return false;
    // A peer speaking ZMTP 1.0/2.0 would differ by byte 10; decodeGreeting rejects it.
    this.#greeting = decodeGreeting(this.#take(GREETING_SIZE).slice());
    return true;
  }

  /** The next complete frame, or undefined when more bytes are needed. */
  next(): Frame | undefined {
    if (this.#buffered < 2) return undefined;
    const head = this.#peek(2);
    const flags = head[0]!;
    if (flags & ~0x07) throw new ZmtpError(`Bad ZMTP frame flags ${flags}`);
    let size: number;
    let headerSize: number;
    if (flags & FLAG_LONG) {
      if (this.#buffered < 9) return undefined;
      const header = this.#peek(9);
      const long = new DataView(header.buffer, header.byteOffset, 9).getBigUint64(1, false);
      if (long > BigInt(this.#maxFrameSize)) throw new ZmtpError('ZMTP frame too large');
      size = Number(long);
      headerSize = 9;
    } else {
      size = head[1]!;
      headerSize = 2;
    }
    if (this.#buffered < headerSize + size) return undefined;
    this.#take(headerSize);
    // Copy: the body must outlive the chunk it came from being reused or sliced further.
    const body = size === 0 ? new Uint8Array(0) : this.#take(size).slice();
    return {
      more: (flags & FLAG_MORE) !== 0,
      command: (flags & FLAG_COMMAND) !== 0,
      body,
    };
  }
}

/** `tcp://host:port` → parts; `*` and `0.0.0.0` stay as given. */
export function parseTcpEndpoint(endpoint: string): { host: string; port: number } {
  const match = /^tcp:\/\/(\[[^\]]+\]|[^:/]+):(\d+)$/.exec(endpoint);
  if (!match) throw new ZmtpError(`Invalid ZMQ endpoint "${endpoint}": expected tcp://host:port`);
  const host = match[1]!.startsWith('[') ? match[1]!.slice(1, -1) : match[1]!;
  return { host, port: Number(match[2]) };
}
