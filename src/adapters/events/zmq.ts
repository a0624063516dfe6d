/**
 * The ZMQ event plane (runtime reference §4.3, direct mode): every subject a handle publishes on
 * gets its own PUB socket, advertised in discovery as an `EventChannel` under
 * `v1/event_channels/...`; subscribers watch that bucket and connect a SUB to every publisher
 * whose subject matches one of their patterns (NATS wildcards, as on the other planes).
 *
 * A message is 4 frames `[topic, publisher_id u64 BE, sequence u64 BE, frame]`, where `frame` is a
 * 5-byte header (version 1, u32 BE length) and the msgpack envelope `{publisher_id, sequence,
 * published_at, topic, payload: bin(msgpack payload), published_at_ns}`. Dynamo's header layout
 * was not verified; a frame without this header is read as a bare msgpack envelope.
 *
 * Publishing never blocks: a subscriber at the high-water mark loses events (gap detection and
 * recovery above the plane handle that). Like any PUB/SUB, events published before a subscriber
 * connects are not seen by it; `firstSubscriberWaitMs` lets a new channel wait for one.
 */
import { decodeMsgpack, encodeMsgpack } from './msgpack.ts';
import type { KvStore, KvWatchEvent } from '../../core/discovery/types.ts';
import type { EventEnvelope, EventPlane } from '../../core/events/types.ts';
import type { Network } from '../../core/net.ts';
import {
  decodeEventChannel,
  encodeEventChannelValue,
  EVENT_CHANNELS_BUCKET,
  type EventChannel,
  eventChannelKey,
  parseSubject,
  subjectOf,
} from './zmtp/event-channels.ts';
import { createZmqPublisher, createZmqSubscriber, type ZmqPublisher } from './zmtp/socket.ts';
import { type EventPlaneHandleOptions, randomPublisherId, subjectMatches } from './mem.ts';

const encoder = new TextEncoder();
const decoder = new TextDecoder();

export const FRAME_VERSION = 1;

export interface ZmqEventPlaneOptions extends EventPlaneHandleOptions {
  /** Discovery: where channels are advertised and found. The caller closes it. */
  store: KvStore;
  network: Network;
  /** Interface the PUB sockets bind (`DYN_EVENT_PLANE_HOST`). @default '127.0.0.1' */
  host?: string;
  /** Host written in the advertised endpoint. @default host */
  advertiseHost?: string;
  /** Events queued per subscriber before new ones are dropped. @default 100_000 */
  highWaterMark?: number;
  /**
   * On the first publish to a subject, wait up to this long for a subscriber to connect before
   * sending (tests; a worker that must not lose its first events). @default 0
   */
  firstSubscriberWaitMs?: number;
  /** @default 100 */
  reconnectMinMs?: number;
  /** @default 5000 */
  reconnectMaxMs?: number;
}

export interface ZmqEventPlane extends EventPlane {
  /** Binds and advertises `subject` now, so subscribers can connect before the first event. */
  advertise(subject: string): Promise<string>;
  /**
   * Resolves once this handle's subscriptions know every advertised channel and are connected to
   * each matching one. @default timeoutMs 10000
   */
  ready(timeoutMs?: number): Promise<void>;
  /** Events dropped at the high-water mark, over all of this handle's channels. */
  readonly dropped: number;
}

/** The 4 frames of one event. */
export function encodeEventFrames(envelope: {
  topic: string;
  publisherId: bigint;
  sequence: bigint;
  publishedAt: bigint;
  payload: unknown;
}): Uint8Array[] {
  const body = encodeMsgpack({
    publisher_id: envelope.publisherId,
    sequence: envelope.sequence,
    published_at: envelope.publishedAt,
    topic: envelope.topic,
    payload: encodeMsgpack(envelope.payload),
    published_at_ns: envelope.publishedAt * 1_000_000n,
  });
  const frame = new Uint8Array(5 + body.length);
  frame[0] = FRAME_VERSION;
  new DataView(frame.buffer).setUint32(1, body.length, false);
  frame.set(body, 5);
  const id = new Uint8Array(8);
  new DataView(id.buffer).setBigUint64(0, envelope.publisherId, false);
  const seq = new Uint8Array(8);
  new DataView(seq.buffer).setBigUint64(0, envelope.sequence, false);
  return [encoder.encode(envelope.topic), id, seq, frame];
}

const num = (v: unknown): number => (typeof v === 'bigint' ? Number(v) : Number(v ?? 0));

/** Reads the 4 frames into an `EventEnvelope`; throws on anything else. */
export function decodeEventFrames(frames: readonly Uint8Array[]): EventEnvelope {
  if (frames.length !== 4 || frames[1]!.length !== 8 || frames[2]!.length !== 8) {
    throw new Error(`Not a ZMQ event: ${frames.length} frames`);
  }
  const frame = frames[3]!;
  const view = new DataView(frame.buffer, frame.byteOffset, frame.byteLength);
  const body = frame.length >= 5 && frame[0] === FRAME_VERSION &&
      view.getUint32(1, false) === frame.length - 5
    ? frame.subarray(5)
    : frame;
  const envelope = decodeMsgpack(body) as Record<string, unknown>;
  if (typeof envelope !== 'object' || envelope === null) throw new Error('Bad event envelope');
  const payload = envelope.payload instanceof Uint8Array
    ? decodeMsgpack(envelope.payload)
    : envelope.payload;
  const idFrame = frames[1]!;
  const publisherId = new DataView(idFrame.buffer, idFrame.byteOffset, 8).getBigUint64(0, false);
  return {
    topic: typeof envelope.topic === 'string' ? envelope.topic : decoder.decode(frames[0]),
    publisher_id: publisherId.toString(16),
    sequence: num(envelope.sequence),
    published_at: num(envelope.published_at),
    payload,
  };
}

interface Outgoing {
  publisher: Promise<ZmqPublisher>;
  topic: string;
  /** Resolves when events may be sent (advertised, and a subscriber waited for). */
  open: Promise<ZmqPublisher>;
  key: string;
}

interface Handler {
  pattern: string;
  onEvent: (event: EventEnvelope) => void;
}

export function createZmqEventPlane(options: ZmqEventPlaneOptions): ZmqEventPlane {
  const { store, network } = options;
  const host = options.host ?? '127.0.0.1';
  const advertiseHost = options.advertiseHost ?? host;
  const publisherIdHex = options.publisherId ?? randomPublisherId();
  const publisherId = BigInt(`0x${publisherIdHex}`);
  const now = options.now ?? (() => Date.now());
  const onError = options.onError ?? ((error: unknown) => console.error(error));
  const waitMs = options.firstSubscriberWaitMs ?? 0;

  const outgoing = new Map<string, Outgoing>();
  /** Publishers that finished binding, by subject. */
  const settled = new Map<string, ZmqPublisher>();
  const handlers = new Set<Handler>();
  /** Discovered channels by key, and which of them we are connected to. */
  const channels = new Map<string, EventChannel & { subject: string }>();
  const connected = new Map<string, string>(); // key -> endpoint
  const endpointSubject = new Map<string, string>();
  const endpointUsers = new Map<string, number>();
  const watchAbort = new AbortController();
  let watching: Promise<void> | undefined;
  let snapshotSeen: Promise<void> | undefined;
  let sequence = 0n;
  let closed = false;

  const sub = createZmqSubscriber({
    network,
    reconnectMinMs: options.reconnectMinMs,
    reconnectMaxMs: options.reconnectMaxMs,
    onError: () => {}, // reconnects on its own; a publisher going away is routine
    onMessage(frames, endpoint) {
      const subject = endpointSubject.get(endpoint);
      if (subject === undefined) return;
      let event: EventEnvelope;
      try {
        event = decodeEventFrames(frames);
      } catch (error) {
        return onError(error);
      }
      for (const handler of [...handlers]) {
        if (!handlers.has(handler) || !subjectMatches(handler.pattern, subject)) continue;
        try {
          handler.onEvent(event);
        } catch (error) {
          onError(error);
        }
      }
    },
  });

  const interested = (subject: string) =>
    [...handlers].some((h) => subjectMatches(h.pattern, subject));

  const connectChannel = (key: string) => {
    const channel = channels.get(key);
    if (!channel || connected.has(key) || !interested(channel.subject)) return;
    connected.set(key, channel.endpoint);
    endpointSubject.set(channel.endpoint, channel.subject);
    const users = endpointUsers.get(channel.endpoint) ?? 0;
    endpointUsers.set(channel.endpoint, users + 1);
    sub.subscribe(channel.topic);
    if (users === 0) sub.connect(channel.endpoint);
  };

  const dropChannel = (key: string) => {
    const channel = channels.get(key);
    channels.delete(key);
    const endpoint = connected.get(key);
    if (endpoint === undefined || !channel) return;
    connected.delete(key);
    sub.unsubscribe(channel.topic);
    const users = (endpointUsers.get(endpoint) ?? 1) - 1;
    if (users > 0) endpointUsers.set(endpoint, users);
    else {
      endpointUsers.delete(endpoint);
      endpointSubject.delete(endpoint);
      sub.disconnect(endpoint);
    }
  };

  const upsert = (key: string, value: string) => {
    const channel = decodeEventChannel(key, value);
    if (!channel) return;
    const known = channels.get(key);
    if (known && known.endpoint === channel.endpoint) return;
    if (known) dropChannel(key);
    channels.set(key, { ...channel, subject: subjectOf(channel.scope, channel.topic) });
    connectChannel(key);
  };

  const apply = (event: KvWatchEvent) => {
    switch (event.kind) {
      case 'snapshot': {
        const present = new Set(event.entries.map((e) => e.key));
        for (const key of [...channels.keys()]) if (!present.has(key)) dropChannel(key);
        for (const entry of event.entries) upsert(entry.key, entry.value);
        break;
      }
      case 'put':
        upsert(event.key, event.value);
        break;
      case 'delete':
        dropChannel(event.key);
        break;
    }
  };

  const startWatch = () => {
    if (watching) return;
    let seen!: () => void;
    snapshotSeen = new Promise<void>((resolve) => (seen = resolve));
    watching = (async () => {
      try {
        for await (const event of store.watch(EVENT_CHANNELS_BUCKET, watchAbort.signal)) {
          apply(event);
          if (event.kind === 'snapshot') seen();
        }
      } catch (error) {
        if (!closed) onError(error);
      } finally {
        seen();
      }
    })();
  };

  const open = (subject: string): Outgoing => {
    let entry = outgoing.get(subject);
    if (entry) return entry;
    const { scope, topic } = parseSubject(subject);
    const key = eventChannelKey({ scope, topic, publisherId: publisherIdHex });
    const publisher = createZmqPublisher({
      network,
      host,
      highWaterMark: options.highWaterMark,
    });
    const opened = publisher.then(async (pub) => {
      const endpoint = `tcp://${
        advertiseHost.includes(':') ? `[${advertiseHost}]` : advertiseHost
      }:${pub.port}`;
      await store.put(
        key,
        encodeEventChannelValue({ scope, topic, publisherId: publisherIdHex, endpoint }),
      );
      if (waitMs > 0) await pub.waitForSubscriber(topic, waitMs);
      return pub;
    });
    entry = { publisher, topic, open: opened, key };
    outgoing.set(subject, entry);
    opened.catch(() => {});
    return entry;
  };

  return {
    get dropped() {
      let total = 0;
      // Only publishers that finished binding count; the others have dropped nothing.
      for (const pub of settled.values()) total += pub.dropped;
      return total;
    },

    publish(subject, payload) {
      if (closed) return Promise.reject(new Error('The event plane is closed'));
      let entry: Outgoing;
      try {
        entry = open(subject);
      } catch (error) {
        return Promise.reject(error);
      }
      const frames = encodeEventFrames({
        topic: entry.topic,
        publisherId,
        sequence: sequence++,
        publishedAt: BigInt(Math.round(now())),
        payload,
      });
      return entry.open.then((pub) => {
        settled.set(subject, pub);
        if (!closed) pub.send(frames);
      });
    },

    async advertise(subject) {
      if (closed) throw new Error('The event plane is closed');
      const entry = open(subject);
      await entry.open;
      return entry.key;
    },

    subscribe(subject, onEvent) {
      if (closed) throw new Error('The event plane is closed');
      const handler: Handler = { pattern: subject, onEvent };
      handlers.add(handler);
      startWatch();
      for (const key of channels.keys()) connectChannel(key);
      return () => void handlers.delete(handler);
    },

    async ready(timeoutMs = 10_000) {
      if (snapshotSeen) await snapshotSeen;
      await sub.ready(timeoutMs);
    },

    async close() {
      if (closed) return;
      closed = true;
      handlers.clear();
      watchAbort.abort();
      await watching;
      await sub.close();
      await Promise.all([...outgoing.values()].map(async (entry) => {
        const pub = await entry.publisher.catch(() => undefined);
        // Closing first wakes a wait for the first subscriber.
        await pub?.close();
        await entry.open.catch(() => {});
        await store.delete(entry.key).catch(() => {});
      }));
      outgoing.clear();
    },
  };
}
