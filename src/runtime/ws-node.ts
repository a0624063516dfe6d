/**
 * WebSocket server side on Node (RFC 6455), for the `upgrade` event of a `node:http(s)` server:
 * the handshake, client frames (masked; text, binary, continuation, ping, pong, close; 7-, 16-
 * and 64-bit lengths) and server frames. Node 20 has no server WebSocket and the project has no
 * `ws` dependency; Bun and Deno use their own (`serve-bun.ts`, `serve-deno.ts`).
 */
import { createHash } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import type { WebSocketOptions, WsPeer, WsSession } from './serve-types.ts';

const GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';
const DEFAULT_MAX_MESSAGE = 16 * 1024 * 1024;

const OP_CONTINUATION = 0x0;
const OP_TEXT = 0x1;
const OP_BINARY = 0x2;
const OP_CLOSE = 0x8;
const OP_PING = 0x9;
const OP_PONG = 0xa;

/** `Sec-WebSocket-Accept` for a client's `Sec-WebSocket-Key`. */
export function acceptKey(key: string): string {
  return createHash('sha1').update(key + GUID).digest('base64');
}

/** One server frame (never masked). */
export function encodeFrame(opcode: number, payload: Uint8Array): Buffer {
  const length = payload.length;
  const head = length < 126 ? 2 : length < 65536 ? 4 : 10;
  const frame = Buffer.allocUnsafe(head + length);
  frame[0] = 0x80 | opcode;
  if (length < 126) {
    frame[1] = length;
  } else if (length < 65536) {
    frame[1] = 126;
    frame.writeUInt16BE(length, 2);
  } else {
    frame[1] = 127;
    frame.writeBigUInt64BE(BigInt(length), 2);
  }
  frame.set(payload, head);
  return frame;
}

function closePayload(code: number, reason: string): Buffer {
  const text = Buffer.from(reason.slice(0, 120));
  const payload = Buffer.allocUnsafe(2 + text.length);
  payload.writeUInt16BE(code, 0);
  text.copy(payload, 2);
  return payload;
}

export interface FrameHandlers {
  frame(fin: boolean, opcode: number, payload: Buffer): void;
  /** A protocol error: the connection must close with this code. */
  error(code: number, reason: string): void;
}

/** Splits a client's byte stream into frames, unmasking their payloads. */
export function createFrameReader(handlers: FrameHandlers, maxFrameBytes: number) {
  let buffered: Buffer = Buffer.alloc(0);
  let failed = false;
  return (chunk: Buffer) => {
    if (failed) return;
    buffered = buffered.length === 0 ? chunk : Buffer.concat([buffered, chunk]);
    for (;;) {
      if (buffered.length < 2) return;
      const b0 = buffered[0]!;
      const b1 = buffered[1]!;
      const masked = (b1 & 0x80) !== 0;
      let length = b1 & 0x7f;
      let offset = 2;
      if (length === 126) {
        if (buffered.length < 4) return;
        length = buffered.readUInt16BE(2);
        offset = 4;
      } else if (length === 127) {
        if (buffered.length < 10) return;
        const big = buffered.readBigUInt64BE(2);
        if (big > BigInt(maxFrameBytes)) {
          failed = true;
          handlers.error(1009, 'message too big');
          return;
        }
        length = Number(big);
        offset = 10;
      }
      if (!masked) {
        failed = true;
        handlers.error(1002, 'client frames must be masked');
        return;
      }
      if (length > maxFrameBytes) {
        failed = true;
        handlers.error(1009, 'message too big');
        return;
      }
      if (buffered.length < offset + 4 + length) return;
      const mask = buffered.subarray(offset, offset + 4);
      const payload = Buffer.from(buffered.subarray(offset + 4, offset + 4 + length));
      for (let i = 0; i < payload.length; i++) payload[i]! ^= mask[i & 3]!;
      buffered = buffered.subarray(offset + 4 + length);
      handlers.frame((b0 & 0x80) !== 0, b0 & 0x0f, payload);
      if (failed) return;
    }
  };
}

/** The upgrade request as a fetch `Request` (URL and headers; no body), for `accept()`. */
function requestOf(req: IncomingMessage, tls: boolean): Request {
  const headers = new Headers();
  for (const [name, value] of Object.entries(req.headers)) {
    if (value === undefined) continue;
    for (const v of Array.isArray(value) ? value : [value]) headers.append(name, v);
  }
  const host = req.headers.host ?? 'localhost';
  return new Request(`${tls ? 'https' : 'http'}://${host}${req.url ?? '/'}`, {
    method: req.method ?? 'GET',
    headers,
  });
}

function refuse(socket: Duplex, status: string, message: string) {
  const body = JSON.stringify({ error: { message, type: 'invalid_request_error', code: null } });
  socket.end(
    `HTTP/1.1 ${status}\r\nContent-Type: application/json\r\nContent-Length: ${
      Buffer.byteLength(body)
    }\r\nConnection: close\r\n\r\n${body}`,
  );
}

/**
 * The `upgrade` listener of a Node server. Returns it with a set of open peers, so the server's
 * shutdown can close them.
 */
export function createUpgradeHandler(options: WebSocketOptions, tls: boolean) {
  const maxMessage = options.maxMessageBytes ?? DEFAULT_MAX_MESSAGE;
  const open = new Set<WsPeer>();

  function upgrade(req: IncomingMessage, socket: Duplex, head: Buffer) {
    const key = req.headers['sec-websocket-key'];
    const isWebSocket = String(req.headers.upgrade ?? '').toLowerCase() === 'websocket';
    const start = isWebSocket ? options.accept(requestOf(req, tls)) : undefined;
    if (!start) {
      refuse(socket, '404 Not Found', `No WebSocket endpoint at ${req.url ?? '/'}`);
      return;
    }
    if (typeof key !== 'string' || key === '' || req.headers['sec-websocket-version'] !== '13') {
      refuse(socket, '400 Bad Request', 'Invalid WebSocket handshake (version 13 required)');
      return;
    }
    socket.write(
      'HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n' +
        `Sec-WebSocket-Accept: ${acceptKey(key)}\r\n\r\n`,
    );
    (socket as { setNoDelay?: (on: boolean) => void }).setNoDelay?.(true);

    let closed = false;
    // Set once `start()` returned; the socket's callbacks run after that.
    const state: { session?: WsSession } = {};
    const finish = () => {
      if (closed) return;
      closed = true;
      open.delete(peer);
      state.session?.closed();
    };
    const closeWith = (payload: Buffer) => {
      if (closed) return;
      if (!socket.destroyed) socket.end(encodeFrame(OP_CLOSE, payload));
      finish();
    };
    const peer: WsPeer = {
      send(text) {
        if (closed || socket.destroyed) return;
        socket.write(encodeFrame(OP_TEXT, Buffer.from(text)));
      },
      close: (code = 1000, reason = '') => closeWith(closePayload(code, reason)),
    };
    open.add(peer);

    let fragments: Buffer[] = [];
    let fragmentBytes = 0;
    let fragmentOpcode = 0;
    const read = createFrameReader({
      frame(fin, opcode, payload) {
        if (opcode === OP_PING) {
          if (!socket.destroyed) socket.write(encodeFrame(OP_PONG, payload));
          return;
        }
        if (opcode === OP_PONG) return;
        if (opcode === OP_CLOSE) {
          // Echo the peer's code (RFC 6455 §5.5.1); a close without one is answered without one.
          closeWith(
            payload.length >= 2 ? closePayload(payload.readUInt16BE(0), '') : Buffer.alloc(0),
          );
          return;
        }
        if (opcode === OP_TEXT || opcode === OP_BINARY) {
          fragments = [payload];
          fragmentBytes = payload.length;
          fragmentOpcode = opcode;
        } else if (opcode === OP_CONTINUATION && fragments.length > 0) {
          fragments.push(payload);
          fragmentBytes += payload.length;
        } else {
          peer.close(1002, 'unexpected frame');
          return;
        }
        if (fragmentBytes > maxMessage) {
          peer.close(1009, 'message too big');
          return;
        }
        if (!fin) return;
        const message = Buffer.concat(fragments);
        fragments = [];
        fragmentBytes = 0;
        if (fragmentOpcode === OP_BINARY) {
          peer.close(1003, 'binary messages are not accepted');
          return;
        }
        state.session?.message(message.toString('utf8'));
      },
      error(code, reason) {
        peer.close(code, reason);
      },
    }, maxMessage);
    socket.on('data', (chunk: Buffer) => read(chunk));
    socket.on('close', finish);
    socket.on('error', finish);
    state.session = start(peer);
    if (head.length > 0) read(head);
  }

  return { upgrade, open };
}
