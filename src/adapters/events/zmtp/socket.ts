/**
 * ZMQ PUB and SUB sockets over the `Network` port (ZMTP 3.1, NULL mechanism), so they run on
 * Node, Bun and Deno without the native addon, and talk to libzmq peers.
 *
 * - PUB binds, accepts any number of SUB (or XSUB) peers, filters by their topic prefixes and
 *   never blocks: a peer whose queue is at the high-water mark loses the message (`dropped`).
 * - SUB connects to any number of PUB endpoints, sends its subscriptions to each, reconnects with
 *   exponential backoff, and hands every complete multipart message to `onMessage`.
 */
import type { Connection, Listener, Network } from '../../../core/net.ts';
import {
  concat,
  decodeCommand,
  decodeMetadata,
  decodeSubscription,
  encodeCommand,
  encodeGreeting,
  encodeMessage,
  encodeReady,
  encodeSubscription,
  type Frame,
  parseTcpEndpoint,
  ZmtpError,
  ZmtpReader,
} from './zmtp.ts';

const encoder = new TextEncoder();

/** Bytes as a Map key (one char per byte). */
const keyOf = (bytes: Uint8Array): string => {
  let out = '';
  for (let i = 0; i < bytes.length; i++) out += String.fromCharCode(bytes[i]!);
  return out;
};

const startsWith = (data: Uint8Array, prefix: Uint8Array): boolean => {
  if (prefix.length > data.length) return false;
  for (let i = 0; i < prefix.length; i++) if (data[i] !== prefix[i]) return false;
  return true;
};

const toBytes = (value: Uint8Array | string): Uint8Array =>
  typeof value === 'string' ? encoder.encode(value) : value;

/**
 * Reads a connection: greeting, then frames, handing each to `onFrame`. Resolves when the
 * connection ends; rejects on a protocol error (the caller closes the connection).
 */
async function pump(
  connection: Connection,
  reader: ZmtpReader,
  onGreeting: () => void,
  onFrame: (frame: Frame) => void,
): Promise<void> {
  const stream = connection.readable.getReader();
  try {
    for (;;) {
      const { value, done } = await stream.read();
      if (done) return;
      reader.push(value);
      if (!reader.greeting) {
        if (!reader.readGreeting()) continue;
        onGreeting();
      }
      for (let frame = reader.next(); frame; frame = reader.next()) onFrame(frame);
    }
  } finally {
    stream.releaseLock();
  }
}

/** Handles the commands both sides may get after READY: PING gets a PONG, others are ignored. */
function answerCommand(connection: Connection, body: Uint8Array): void {
  const command = decodeCommand(body);
  if (command.name === 'PING') {
    // PING: TTL (2 bytes) then context, echoed in PONG.
    connection.write(encodeCommand('PONG', command.data.subarray(2))).catch(() => {});
  }
}

/* ------------------------------------------------------------------------------------------ */
/* PUB                                                                                         */
/* ------------------------------------------------------------------------------------------ */

export interface ZmqPublisherOptions {
  network: Network;
  /** Interface to bind. @default '127.0.0.1' */
  host?: string;
  /** @default 0 (a free port) */
  port?: number;
  /** Messages queued per subscriber before new ones are dropped for it. @default 100_000 */
  highWaterMark?: number;
  /** Told about peers that break the protocol (they are disconnected). @default ignore */
  onError?: (error: unknown) => void;
}

export interface ZmqPublisher {
  /** `tcp://host:port` subscribers connect to. */
  readonly endpoint: string;
  readonly port: number;
  /** Messages dropped because a subscriber was at the high-water mark. */
  readonly dropped: number;
  /** Queues a multipart message for every subscriber whose prefix matches `frames[0]`. */
  send(frames: readonly Uint8Array[]): void;
  /** Subscribers (handshake done) with a subscription matching `topic`. */
  subscribers(topic: Uint8Array | string): number;
  /** Resolves true once a subscriber matches `topic`, false after `timeoutMs`. */
  waitForSubscriber(topic: Uint8Array | string, timeoutMs: number): Promise<boolean>;
  /** Resolves once every queued message has been handed to the OS. */
  flush(): Promise<void>;
  /** Stops listening and closes every subscriber connection (queued messages are flushed first). */
  close(): Promise<void>;
}

interface PubPeer {
  connection: Connection;
  ready: boolean;
  /** Prefix (as a key) -> [prefix, count]: ZMQ subscriptions are a multiset. */
  subscriptions: Map<string, { prefix: Uint8Array; count: number }>;
  queue: Uint8Array[];
  writing: Promise<void> | undefined;
}

/** Largest batch of queued messages written in one call. */
const WRITE_BATCH_BYTES = 1 << 20;

export async function createZmqPublisher(options: ZmqPublisherOptions): Promise<ZmqPublisher> {
  const host = options.host ?? '127.0.0.1';
  const highWaterMark = options.highWaterMark ?? 100_000;
  const onError = options.onError ?? (() => {});
  const peers = new Set<PubPeer>();
  const waiters = new Set<() => void>();
  let dropped = 0;
  let closed = false;

  const wake = () => {
    for (const waiter of [...waiters]) waiter();
  };
  const matches = (peer: PubPeer, topic: Uint8Array) => {
    if (!peer.ready) return false;
    for (const { prefix } of peer.subscriptions.values()) {
      if (startsWith(topic, prefix)) return true;
    }
    return false;
  };

  const drain = (peer: PubPeer) => {
    if (peer.writing) return;
    peer.writing = (async () => {
      try {
        while (peer.queue.length > 0) {
          let size = 0;
          let count = 0;
          while (count < peer.queue.length && (count === 0 || size < WRITE_BATCH_BYTES)) {
            size += peer.queue[count]!.length;
            count++;
          }
          const batch = concat(peer.queue.splice(0, count));
          await peer.connection.write(batch);
        }
      } catch {
        peer.queue.length = 0;
        peer.connection.close();
      } finally {
        peer.writing = undefined;
      }
    })();
  };

  const accept = (connection: Connection) => {
    if (closed) return connection.close();
    const peer: PubPeer = {
      connection,
      ready: false,
      subscriptions: new Map(),
      queue: [],
      writing: undefined,
    };
    peers.add(peer);
    const reader = new ZmtpReader({ maxFrameSize: 1 << 20 });
    connection.write(concat([encodeGreeting(), encodeReady({ 'Socket-Type': 'PUB' })]))
      .catch(() => connection.close());
    const onFrame = (frame: Frame) => {
      if (!peer.ready) {
        if (!frame.command) throw new ZmtpError('Expected READY from the subscriber');
        const command = decodeCommand(frame.body);
        if (command.name !== 'READY') throw new ZmtpError(`Unexpected ${command.name} command`);
        const type = decodeMetadata(command.data).get('socket-type');
        if (type !== 'SUB' && type !== 'XSUB') {
          throw new ZmtpError(`A PUB socket cannot talk to a ${type ?? 'typeless'} socket`);
        }
        peer.ready = true;
        return wake();
      }
      const change = decodeSubscription(frame);
      if (!change) {
        if (frame.command) answerCommand(connection, frame.body);
        return;
      }
      const key = keyOf(change.prefix);
      const entry = peer.subscriptions.get(key);
      if (change.subscribe) {
        if (entry) entry.count++;
        else peer.subscriptions.set(key, { prefix: change.prefix.slice(), count: 1 });
        wake();
      } else if (entry && --entry.count === 0) peer.subscriptions.delete(key);
    };
    pump(connection, reader, () => {}, onFrame)
      .catch((error) => onError(error))
      .finally(() => {
        peers.delete(peer);
        connection.close();
      });
  };

  const listener: Listener = await options.network.listen(host, options.port ?? 0, accept);
  const endpointHost = host.includes(':') ? `[${host}]` : host;

  return {
    endpoint: `tcp://${endpointHost}:${listener.port}`,
    port: listener.port,
    get dropped() {
      return dropped;
    },
    send(frames) {
      if (closed) throw new Error('The ZMQ publisher is closed');
      const topic = frames[0] ?? new Uint8Array(0);
      let wire: Uint8Array | undefined;
      for (const peer of peers) {
        if (!matches(peer, topic)) continue;
        if (peer.queue.length >= highWaterMark) {
          dropped++;
          continue;
        }
        wire ??= encodeMessage(frames);
        peer.queue.push(wire);
        drain(peer);
      }
    },
    subscribers(topic) {
      const bytes = toBytes(topic);
      let n = 0;
      for (const peer of peers) if (matches(peer, bytes)) n++;
      return n;
    },
    waitForSubscriber(topic, timeoutMs) {
      const bytes = toBytes(topic);
      const found = () => [...peers].some((peer) => matches(peer, bytes));
      if (found()) return Promise.resolve(true);
      return new Promise<boolean>((resolve) => {
        const finish = (value: boolean) => {
          clearTimeout(timer);
          waiters.delete(check);
          resolve(value);
        };
        const check = () => {
          if (closed) finish(false);
          else if (found()) finish(true);
        };
        const timer = setTimeout(() => finish(false), timeoutMs);
        waiters.add(check);
      });
    },
    async flush() {
      await Promise.all([...peers].map((peer) => peer.writing));
    },
    async close() {
      if (closed) return;
      closed = true;
      wake();
      await listener.close();
      await Promise.all([...peers].map((peer) => peer.writing));
      for (const peer of [...peers]) peer.connection.close();
      await Promise.all([...peers].map((peer) => peer.connection.closed));
    },
  };
}

/* ------------------------------------------------------------------------------------------ */
/* SUB                                                                                         */
/* ------------------------------------------------------------------------------------------ */

export interface ZmqSubscriberOptions {
  network: Network;
  /** Every complete message whose first frame matches a subscription, with its source endpoint. */
  onMessage: (frames: Uint8Array[], endpoint: string) => void;
  /** First reconnect delay; doubles per failure up to `reconnectMaxMs`. @default 100 */
  reconnectMinMs?: number;
  /** @default 5000 */
  reconnectMaxMs?: number;
  /** Told about connection failures and protocol errors (the socket reconnects). @default ignore */
  onError?: (error: unknown, endpoint: string) => void;
}

export interface ZmqSubscriber {
  /** Connects (and keeps reconnecting) to a PUB at `tcp://host:port`; idempotent. */
  connect(endpoint: string): void;
  /** Stops connecting to `endpoint` and closes its connection. */
  disconnect(endpoint: string): void;
  /** Adds a topic prefix ('' = everything); subscriptions are counted, as in libzmq. */
  subscribe(prefix: Uint8Array | string): void;
  unsubscribe(prefix: Uint8Array | string): void;
  /** Whether `endpoint` is connected, handshaken, and has our subscriptions. */
  isReady(endpoint: string): boolean;
  /**
   * Resolves once every connected-to endpoint is ready; rejects after `timeoutMs` naming the
   * ones that are not. @default timeoutMs 10000
   */
  ready(timeoutMs?: number): Promise<void>;
  close(): Promise<void>;
}

interface SubLink {
  endpoint: string;
  connection: Connection | undefined;
  /** The connection once handshaken: later subscription changes go to it. */
  live: Connection | undefined;
  ready: boolean;
  failures: number;
  timer: ReturnType<typeof setTimeout> | undefined;
  wanted: boolean;
}

export function createZmqSubscriber(options: ZmqSubscriberOptions): ZmqSubscriber {
  const minDelay = options.reconnectMinMs ?? 100;
  const maxDelay = options.reconnectMaxMs ?? 5000;
  const onError = options.onError ?? (() => {});
  const links = new Map<string, SubLink>();
  const subscriptions = new Map<string, { prefix: Uint8Array; count: number }>();
  const waiters = new Set<() => void>();
  let closed = false;

  const wake = () => {
    for (const waiter of [...waiters]) waiter();
  };
  const wanted = (topic: Uint8Array) => {
    for (const { prefix } of subscriptions.values()) if (startsWith(topic, prefix)) return true;
    return false;
  };
  const sendToAll = (bytes: Uint8Array) => {
    for (const link of links.values()) {
      const live = link.live;
      live?.write(bytes).catch(() => live.close());
    }
  };

  const schedule = (link: SubLink) => {
    if (closed || !link.wanted || link.timer) return;
    const delay = Math.min(maxDelay, minDelay * 2 ** Math.min(link.failures, 16));
    link.failures++;
    link.timer = setTimeout(() => {
      link.timer = undefined;
      open(link);
    }, delay);
  };

  const open = (link: SubLink) => {
    if (closed || !link.wanted) return;
    let target: { host: string; port: number };
    try {
      target = parseTcpEndpoint(link.endpoint);
    } catch (error) {
      onError(error, link.endpoint);
      return;
    }
    const host = target.host === '*' || target.host === '0.0.0.0' ? '127.0.0.1' : target.host;
    options.network.connect(host, target.port).then((connection) => {
      if (closed || !link.wanted) return connection.close();
      link.connection = connection;
      const reader = new ZmtpReader();
      let handshaken = false;
      let parts: Uint8Array[] = [];
      connection.write(concat([encodeGreeting(), encodeReady({ 'Socket-Type': 'SUB' })]))
        .catch(() => connection.close());
      const onFrame = (frame: Frame) => {
        if (!handshaken) {
          if (!frame.command) throw new ZmtpError('Expected READY from the publisher');
          const command = decodeCommand(frame.body);
          if (command.name !== 'READY') throw new ZmtpError(`Unexpected ${command.name} command`);
          const type = decodeMetadata(command.data).get('socket-type');
          if (type !== 'PUB' && type !== 'XPUB') {
            throw new ZmtpError(`A SUB socket cannot talk to a ${type ?? 'typeless'} socket`);
          }
          handshaken = true;
          link.live = connection;
          const subs = [...subscriptions.values()].map((s) => encodeSubscription(s.prefix, true));
          const sent = subs.length > 0 ? connection.write(concat(subs)) : Promise.resolve();
          sent.then(() => {
            if (link.connection !== connection) return;
            link.ready = true;
            link.failures = 0;
            wake();
          }, () => connection.close());
          return;
        }
        if (frame.command) return answerCommand(connection, frame.body);
        parts.push(frame.body);
        if (frame.more) return;
        const message = parts;
        parts = [];
        if (!wanted(message[0]!)) return;
        try {
          options.onMessage(message, link.endpoint);
        } catch (error) {
          onError(error, link.endpoint);
        }
      };
      pump(connection, reader, () => {}, onFrame)
        .catch((error) => onError(error, link.endpoint))
        .finally(() => {
          connection.close();
          if (link.connection === connection) {
            link.connection = undefined;
            link.live = undefined;
            link.ready = false;
            wake();
            schedule(link);
          }
        });
    }, (error) => {
      onError(error, link.endpoint);
      schedule(link);
    });
  };

  return {
    connect(endpoint) {
      if (closed) throw new Error('The ZMQ subscriber is closed');
      if (links.has(endpoint)) return;
      const link: SubLink = {
        endpoint,
        connection: undefined,
        live: undefined,
        ready: false,
        failures: 0,
        timer: undefined,
        wanted: true,
      };
      links.set(endpoint, link);
      open(link);
    },
    disconnect(endpoint) {
      const link = links.get(endpoint);
      if (!link) return;
      links.delete(endpoint);
      link.wanted = false;
      link.ready = false;
      clearTimeout(link.timer);
      link.connection?.close();
      wake();
    },
    subscribe(prefix) {
      const bytes = toBytes(prefix);
      const key = keyOf(bytes);
      const entry = subscriptions.get(key);
      if (entry) entry.count++;
      else subscriptions.set(key, { prefix: bytes.slice(), count: 1 });
      sendToAll(encodeSubscription(bytes, true));
    },
    unsubscribe(prefix) {
      const bytes = toBytes(prefix);
      const key = keyOf(bytes);
      const entry = subscriptions.get(key);
      if (!entry) return;
      if (--entry.count === 0) subscriptions.delete(key);
      sendToAll(encodeSubscription(bytes, false));
    },
    isReady(endpoint) {
      return links.get(endpoint)?.ready ?? false;
    },
    ready(timeoutMs = 10_000) {
      const pending = () => [...links.values()].filter((l) => !l.ready).map((l) => l.endpoint);
      if (pending().length === 0) return Promise.resolve();
      return new Promise<void>((resolve, reject) => {
        const finish = (error?: Error) => {
          clearTimeout(timer);
          waiters.delete(check);
          if (error) reject(error);
          else resolve();
        };
        const check = () => {
          if (closed) finish(new Error('The ZMQ subscriber is closed'));
          else if (pending().length === 0) finish();
        };
        const timer = setTimeout(
          () => finish(new Error(`ZMQ endpoints not ready: ${pending().join(', ')}`)),
          timeoutMs,
        );
        waiters.add(check);
      });
    },
    async close() {
      if (closed) return;
      closed = true;
      wake();
      const open = [...links.values()];
      for (const link of open) {
        link.wanted = false;
        clearTimeout(link.timer);
        link.connection?.close();
      }
      links.clear();
      await Promise.all(open.map((link) => link.connection?.closed));
    },
  };
}
