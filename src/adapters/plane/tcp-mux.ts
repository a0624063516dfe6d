/**
 * The TCP response mux (`tcp_response_mux_v1`): response streams of many requests share a few
 * persistent worker -> frontend connections instead of one new connection each (the classic
 * call-home). Both sides batch: every frame queued in one event-loop turn goes out in one write.
 *
 * Flow control is per stream and counts payload bytes: a worker may have up to `MUX_WINDOW`
 * bytes unacknowledged; the frontend returns credits (WindowUpdate) as its consumer reads, once
 * half a window was read. A worker whose stream has no credit left, or whose connection has more
 * than `MUX_HIGH_WATER` bytes not yet taken by the OS, holds the handler (its `send` waits), so a
 * slow frontend never makes the worker buffer without bound.
 */
import type { Connection, Network } from '../../core/net.ts';
import { type Deferred, deferred } from './wire/async.ts';
import { concatBytes } from './wire/frame-reader.ts';
import type { ControlAction } from './wire/messages.ts';
import type { ResponseEncoding } from './wire/response-stream.ts';
import { encodeTwoPart, type TwoPartMessage } from './wire/two-part.ts';
import {
  encodeMuxFrame,
  encodeMuxTextFrame,
  encodeU32,
  encodeU64,
  MUX_HEADER_SIZE,
  MUX_VERSION,
  type MuxFrame,
  type MuxHandshake,
  MuxKind,
  NIL_STREAM,
  readU32,
} from './tcp-mux-frames.ts';
import { textEncoder } from './_shared.ts';

/** Per-stream window, in payload bytes. */
export const MUX_WINDOW = 256 * 1024;
/** Bytes a connection may hold unwritten before its streams wait. */
export const MUX_HIGH_WATER = 1024 * 1024;

const EMPTY = new Uint8Array(0);
const RESOLVED = Promise.resolve();
const schedule: (fn: () => void) => void = typeof globalThis.setImmediate === 'function'
  ? (fn) => void globalThis.setImmediate(fn)
  : (fn) => void setTimeout(fn, 0);

/**
 * Queues frames and writes all those queued in one event-loop turn as one `write()`. `backlog`
 * counts bytes queued or handed to `write()` and not yet taken by the OS.
 */
export class BatchedWriter {
  #parts: Uint8Array[] = [];
  #queued = 0;
  #writing = 0;
  #scheduled = false;
  #drained: Array<() => void> = [];
  closed = false;

  readonly connection: Connection;

  constructor(connection: Connection) {
    this.connection = connection;
    connection.closed.then(() => this.#close());
  }

  get backlog(): number {
    return this.#queued + this.#writing;
  }

  /** Queues `bytes`; false when the connection is closed. */
  enqueue(bytes: Uint8Array): boolean {
    if (this.closed) return false;
    this.#parts.push(bytes);
    this.#queued += bytes.length;
    if (!this.#scheduled) {
      this.#scheduled = true;
      schedule(this.#flush);
    }
    return true;
  }

  /** Resolves once the backlog is under `MUX_HIGH_WATER` (or the connection closed). */
  drained(): Promise<void> {
    if (this.closed || this.backlog < MUX_HIGH_WATER) return RESOLVED;
    return new Promise((resolve) => this.#drained.push(resolve));
  }

  /** Writes what is queued now rather than at the end of the turn; resolves once written. */
  flush(): Promise<void> {
    if (this.closed || this.#parts.length === 0) return RESOLVED;
    const bytes = concatBytes(this.#parts);
    this.#parts = [];
    this.#queued = 0;
    this.#writing += bytes.length;
    return this.connection.write(bytes).then(
      () => {
        this.#writing -= bytes.length;
        if (this.backlog < MUX_HIGH_WATER) this.#wake();
      },
      () => this.connection.close(),
    );
  }

  #flush = () => {
    this.#scheduled = false;
    void this.flush();
  };

  #wake(): void {
    for (const resolve of this.#drained.splice(0)) resolve();
  }

  #close(): void {
    this.closed = true;
    this.#parts = [];
    this.#queued = 0;
    this.#wake();
  }
}

/* ------------------------------------------------------------------------------------------ */
/* Frontend side                                                                               */
/* ------------------------------------------------------------------------------------------ */

const COMPLETE: TwoPartMessage = {
  header: EMPTY,
  body: textEncoder.encode('{"complete_final":true}'),
};

/** One response stream the frontend waits for: its frames, as TwoPart messages. */
export class MuxInbound implements AsyncIterator<TwoPartMessage> {
  /** Resolves when the worker opened the stream (its first frame). */
  readonly opened: Deferred<void> = deferred<void>();
  writer: BatchedWriter | undefined;
  isOpen = false;
  #queue: TwoPartMessage[] = [];
  #waiter: Deferred<IteratorResult<TwoPartMessage>> | undefined;
  #ended = false;
  #error: unknown;
  #consumed = 0;

  readonly key: string;
  private readonly forget: (key: string) => void;

  constructor(key: string, forget: (key: string) => void) {
    this.key = key;
    this.forget = forget;
    this.opened.promise.catch(() => {});
  }

  push(message: TwoPartMessage): void {
    if (this.#ended) return;
    const waiter = this.#waiter;
    if (waiter) {
      this.#waiter = undefined;
      this.#credit(message);
      waiter.resolve({ done: false, value: message });
    } else this.#queue.push(message);
  }

  /** No more frames: `error` fails the reader (disconnected), none ends it. */
  end(error?: unknown): void {
    if (this.#ended) return;
    this.#ended = true;
    this.#error = error;
    if (!this.isOpen) this.opened.reject(error ?? new Error('Stream ended before it opened'));
    const waiter = this.#waiter;
    this.#waiter = undefined;
    if (waiter) {
      if (error === undefined) waiter.resolve({ done: true, value: undefined });
      else waiter.reject(error);
    }
  }

  next(): Promise<IteratorResult<TwoPartMessage>> {
    const message = this.#queue.shift();
    if (message) {
      this.#credit(message);
      return Promise.resolve({ done: false, value: message });
    }
    if (this.#ended) {
      return this.#error === undefined
        ? Promise.resolve({ done: true, value: undefined })
        : Promise.reject(this.#error);
    }
    this.#waiter = deferred();
    return this.#waiter.promise;
  }

  /** Tells the worker to stop or kill the stream (if it opened), then forgets it. */
  cancel(how: 'stop' | 'kill'): void {
    this.writer?.enqueue(encodeMuxFrame(how === 'stop' ? MuxKind.Stop : MuxKind.Kill, this.key));
    this.release();
  }

  release(): void {
    this.forget(this.key);
    this.end();
  }

  /** Returns credits once half a window was read. */
  #credit(message: TwoPartMessage): void {
    this.#consumed += message.header.length + message.body.length;
    if (this.#consumed >= MUX_WINDOW / 2) {
      this.writer?.enqueue(
        encodeMuxFrame(MuxKind.WindowUpdate, this.key, encodeU32(this.#consumed)),
      );
      this.#consumed = 0;
    }
  }
}

/** The frontend's half: streams waiting for frames, and the connections workers opened. */
export function createMuxFrontend(serverId: string) {
  const streams = new Map<string, MuxInbound>();
  const forget = (key: string) => streams.delete(key);

  return {
    serverId,
    /** Registers a stream before its request is sent. */
    register(key: string): MuxInbound {
      const stream = new MuxInbound(key, forget);
      streams.set(key, stream);
      return stream;
    },

    /**
     * Serves one worker connection whose handshake was read; `frames` now yields mux batches.
     * Every stream that received frames on it fails as disconnected when it ends.
     */
    async adopt(
      connection: Connection,
      handshake: MuxHandshake,
      frames: AsyncIterator<MuxFrame[]>,
      disconnected: () => unknown,
    ): Promise<void> {
      if (handshake.version !== MUX_VERSION || handshake.frontend_server_id !== serverId) {
        connection.close();
        return;
      }
      const writer = new BatchedWriter(connection);
      writer.enqueue(encodeMuxFrame(MuxKind.ConnectionAck, NIL_STREAM, encodeU64(MUX_WINDOW)));
      try {
        while (true) {
          const batch = await frames.next();
          if (batch.done) break;
          for (const frame of batch.value) {
            const stream = streams.get(frame.stream);
            if (!stream) {
              // Given up before it opened (timeout, abort): the worker should stop.
              if (frame.kind === MuxKind.Prologue) {
                writer.enqueue(encodeMuxFrame(MuxKind.Kill, frame.stream));
              }
              continue;
            }
            stream.writer ??= writer;
            switch (frame.kind) {
              case MuxKind.Prologue:
                if (frame.payload.length === 0) {
                  stream.isOpen = true;
                  stream.opened.resolve();
                } else stream.push({ header: frame.payload, body: EMPTY });
                break;
              case MuxKind.Data:
                stream.push({ header: EMPTY, body: frame.payload });
                break;
              case MuxKind.End:
                stream.push(COMPLETE);
                break;
              case MuxKind.Reset:
                forget(stream.key);
                stream.end(disconnected());
                break;
            }
          }
        }
      } catch {
        // A broken connection fails its streams below.
      }
      connection.close();
      // Only streams still registered: finished ones were forgotten.
      for (const stream of [...streams.values()]) {
        if (stream.writer !== writer) continue;
        forget(stream.key);
        stream.end(disconnected());
      }
    },

    /** Fails every stream still waiting or reading with `error` (the client is closing). */
    close(error: unknown): void {
      for (const stream of [...streams.values()]) stream.end(error);
      streams.clear();
    },
  };
}

/* ------------------------------------------------------------------------------------------ */
/* Worker side                                                                                 */
/* ------------------------------------------------------------------------------------------ */

/** One stream a worker writes. */
export class MuxOutbound {
  credit = MUX_WINDOW;
  #waiter: (() => void) | undefined;
  /** Set when the frontend stopped, killed or reset the stream. */
  cancelledBy: ControlAction | 'reset' | undefined;

  readonly key: string;
  readonly link: MuxLink;
  readonly controller: AbortController;

  constructor(key: string, link: MuxLink, controller: AbortController) {
    this.key = key;
    this.link = link;
    this.controller = controller;
  }

  /** The frames of this stream, for `pumpResponses`. */
  readonly encoding: ResponseEncoding = {
    prologue: (error) => encodeMuxTextFrame(MuxKind.Prologue, this.key, JSON.stringify({ error })),
    item: (data) =>
      encodeMuxTextFrame(
        MuxKind.Data,
        this.key,
        `{"data":${JSON.stringify(data ?? null) ?? 'null'},"complete_final":false}`,
      ),
    complete: () => encodeMuxFrame(MuxKind.End, this.key),
  };

  /** Queues one frame; waits while the stream has no credit or the connection is backed up. */
  send = (frame: Uint8Array): Promise<void> | undefined => {
    if (!this.link.writer.enqueue(frame)) {
      return Promise.reject(new Error('Connection to the frontend was lost'));
    }
    this.credit -= frame.length - MUX_HEADER_SIZE;
    if (this.credit > 0 && this.link.writer.backlog < MUX_HIGH_WATER) return undefined;
    return this.#wait();
  };

  async #wait(): Promise<void> {
    while (this.credit <= 0 && !this.link.writer.closed && !this.controller.signal.aborted) {
      await new Promise<void>((resolve) => (this.#waiter = resolve));
    }
    await this.link.writer.drained();
    if (this.link.writer.closed) throw new Error('Connection to the frontend was lost');
  }

  grant(credits: number): void {
    this.credit += credits;
    this.wake();
  }

  wake(): void {
    const waiter = this.#waiter;
    this.#waiter = undefined;
    waiter?.();
  }
}

/** One persistent worker -> frontend connection and the streams it carries. */
export interface MuxLink {
  writer: BatchedWriter;
  streams: Map<string, MuxOutbound>;
}

export interface MuxPoolOptions {
  network: Network;
  /** Opens a connection (with the caller's connect timeout). */
  connect(host: string, port: number): Promise<Connection>;
  /** Connections per frontend. @default 4 */
  connections?: number;
  /** Called for each frame batch decoder; the worker reads frontend frames with it. */
  readFrames(connection: Connection): AsyncIterable<MuxFrame[]>;
  /** What a stream's handler signal aborts with when the frontend ends it. */
  cancelled(message: string): unknown;
}

/** The worker's half: up to `connections` links per frontend, opened on demand. */
export function createMuxPool(options: MuxPoolOptions) {
  const size = options.connections ?? 4;
  const pools = new Map<string, Array<Promise<MuxLink>>>();
  const live = new Set<MuxLink>();

  async function open(
    key: string,
    host: string,
    port: number,
    serverId: string,
  ): Promise<MuxLink> {
    const connection = await options.connect(host, port);
    const writer = new BatchedWriter(connection);
    const link: MuxLink = { writer, streams: new Map() };
    live.add(link);
    const handshake: MuxHandshake = {
      kind: 'response_mux',
      version: MUX_VERSION,
      frontend_server_id: serverId,
      connection_id: crypto.randomUUID(),
    };
    writer.enqueue(encodeTwoPart({ header: textEncoder.encode(JSON.stringify(handshake)) }));
    void (async () => {
      try {
        for await (const batch of options.readFrames(connection)) {
          for (const frame of batch) onFrame(link, frame);
        }
      } catch {
        // A reset or garbage ends the connection like a close.
      }
      connection.close();
      live.delete(link);
      const list = pools.get(key);
      const index = list?.findIndex((p) => linkOf.get(p) === link) ?? -1;
      if (list && index >= 0) list.splice(index, 1);
      // A frontend that went away for good leaves no empty pool behind.
      if (list?.length === 0 && pools.get(key) === list) pools.delete(key);
      // The frontend went away: every stream on this connection is killed.
      for (const stream of link.streams.values()) {
        stream.controller.abort(
          options.cancelled('Request cancelled by the frontend (connection closed)'),
        );
        stream.wake();
      }
    })();
    return link;
  }

  const linkOf = new WeakMap<Promise<MuxLink>, MuxLink>();

  function onFrame(link: MuxLink, frame: MuxFrame): void {
    const stream = link.streams.get(frame.stream);
    if (!stream) return;
    switch (frame.kind) {
      case MuxKind.WindowUpdate:
        stream.grant(readU32(frame.payload));
        break;
      case MuxKind.Stop:
      case MuxKind.Kill:
      case MuxKind.Reset: {
        const how = frame.kind === MuxKind.Stop
          ? 'stop'
          : frame.kind === MuxKind.Kill
          ? 'kill'
          : 'reset';
        stream.cancelledBy = how;
        stream.controller.abort(options.cancelled(`Request cancelled by the frontend (${how})`));
        stream.wake();
        break;
      }
    }
  }

  /** The link to carry one more stream to the frontend at `host:port`. */
  function acquire(host: string, port: number, serverId: string): Promise<MuxLink> {
    const key = `${host}:${port}|${serverId}`;
    let list = pools.get(key);
    if (!list) pools.set(key, list = []);
    // Reuse an idle open link, else open another while under the limit, else the least busy.
    let best: Promise<MuxLink> | undefined;
    let bestLoad = Infinity;
    for (const pending of list) {
      const link = linkOf.get(pending);
      const load = link ? link.streams.size : 1;
      if (load < bestLoad) {
        best = pending;
        bestLoad = load;
      }
    }
    if (best && (bestLoad === 0 || list.length >= size)) return best;
    const created = open(key, host, port, serverId);
    created.then((link) => linkOf.set(created, link), () => {
      const index = list.indexOf(created);
      if (index >= 0) list.splice(index, 1);
      if (list.length === 0 && pools.get(key) === list) pools.delete(key);
    });
    list.push(created);
    return created;
  }

  return {
    acquire,
    /** Writes what the links still hold (a drained stream's last frames), then closes them. */
    async close(): Promise<void> {
      const links = [...live];
      pools.clear();
      await Promise.allSettled(links.map((link) => link.writer.flush()));
      for (const link of links) link.writer.connection.close();
    },
  };
}
