/**
 * The NATS event plane (reference §4.3): core pub/sub (TCP or WebSocket, `nats-connect.ts`), one JSON `EventEnvelope`
 * `{topic, publisher_id, sequence, published_at, payload}` per message on the subject itself
 * (`namespace.{ns}.component.{c}.kv-events`, `namespace.{ns}.kv_metrics`). Wildcard subscriptions
 * work as NATS defines them.
 */
import { parseExactJson, stringifyExactJson } from '../../core/json.ts';
import type { NatsConnection, Subscription } from '@nats-io/nats-core';
import type { EventEnvelope, EventPlane } from '../../core/events/types.ts';
import { type NatsConnectionOptions, natsConnector } from '../plane/nats.ts';
import { type EventPlaneHandleOptions, randomPublisherId, topicOf } from './mem.ts';

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** Events held while NATS is down; later ones are dropped (the KV router recovers gaps). */
const MAX_HELD = 10_000;

export interface NatsEventPlaneOptions extends NatsConnectionOptions, EventPlaneHandleOptions {}

export interface NatsEventPlane extends EventPlane {
  /** Resolves once every earlier `subscribe()` and `publish()` has reached the server. */
  flush(): Promise<void>;
}

function isEnvelope(value: unknown): value is EventEnvelope {
  const v = value as Partial<EventEnvelope> | null;
  return typeof v === 'object' && v !== null && typeof v.topic === 'string' &&
    typeof v.publisher_id === 'string' && typeof v.sequence === 'number' &&
    typeof v.published_at === 'number' && 'payload' in v;
}

export function createNatsEventPlane(options: NatsEventPlaneOptions = {}): NatsEventPlane {
  const connector = natsConnector(options);
  const publisherId = options.publisherId ?? randomPublisherId();
  const now = options.now ?? (() => Date.now());
  const onError = options.onError ?? ((error: unknown) => console.error(error));
  const subscriptions = new Set<{ cancel(): void }>();
  const pending = new Set<Promise<unknown>>();
  // The client discards what is published while it is disconnected: hold events until it is back,
  // in order, then send them.
  const held: { subject: string; bytes: Uint8Array }[] = [];
  let droppedWhileDown = 0;
  const sendHeld = (nc: NatsConnection) => {
    for (const { subject, bytes } of held.splice(0)) nc.publish(subject, bytes);
    if (droppedWhileDown > 0) {
      onError(new Error(`NATS was down: dropped ${droppedWhileDown} events past ${MAX_HELD} held`));
    }
    droppedWhileDown = 0;
  };
  connector.onReconnect(() => {
    connector.get().then(sendHeld).catch(onError);
  });
  let sequence = 0;
  let closed = false;
  let used = false;
  const connection = () => {
    used = true;
    return connector.get();
  };

  /** Tracks work that must reach the server before `flush()` resolves. */
  const track = <T>(work: Promise<T>): Promise<T> => {
    pending.add(work);
    const untrack = () => pending.delete(work);
    work.then(untrack, untrack);
    return work;
  };

  /** Subscribes `onData` to `subject`'s message bytes; errors it throws go to `onError`. */
  const listen = (subject: string, onData: (data: Uint8Array) => void): () => void => {
    if (closed) throw new Error('The event plane is closed');
    let subscription: Subscription | undefined;
    let cancelled = false;
    const handle = {
      cancel() {
        cancelled = true;
        subscription?.unsubscribe();
        subscriptions.delete(handle);
      },
    };
    subscriptions.add(handle);
    track(
      connection().then((nc: NatsConnection) => {
        if (cancelled) return;
        subscription = nc.subscribe(subject, {
          callback: (error, message) => {
            if (error) return onError(error);
            try {
              onData(message.data);
            } catch (e) {
              onError(e);
            }
          },
        });
      }),
    ).catch(onError);
    return () => handle.cancel();
  };

  return {
    publish(subject, payload) {
      if (closed) return Promise.reject(new Error('The event plane is closed'));
      // The sequence is taken now, so events leave in the order publish() was called.
      const envelope: EventEnvelope = {
        topic: topicOf(subject),
        publisher_id: publisherId,
        sequence: sequence++,
        published_at: now(),
        payload,
      };
      const bytes = encoder.encode(stringifyExactJson(envelope));
      return track(
        connection().then((nc) => {
          if (!connector.isDown()) return nc.publish(subject, bytes);
          if (held.length < MAX_HELD) held.push({ subject, bytes });
          else droppedWhileDown++;
        }),
      );
    },

    subscribe(subject, onEvent) {
      return listen(subject, (data) => {
        const event: unknown = parseExactJson(decoder.decode(data));
        if (!isEnvelope(event)) throw new Error(`Not an event envelope on "${subject}"`);
        onEvent(event);
      });
    },

    subscribeRaw(subject, onMessage) {
      return listen(subject, onMessage);
    },

    async flush() {
      await Promise.allSettled([...pending]);
      const nc = await connection();
      await nc.flush();
    },

    async close() {
      if (closed) return;
      closed = true;
      for (const subscription of [...subscriptions]) subscription.cancel();
      await Promise.allSettled([...pending]);
      // Let published events reach the server before the connection goes.
      if (used) await connector.get().then((nc) => nc.flush()).catch(() => {});
      await connector.close();
    },
  };
}
