/**
 * The in-process event plane: one `MemEventBus` per process (or per test) and one `EventPlane`
 * handle per publisher on it, each with its own publisher id and sequence. Events go through JSON,
 * as on NATS, and are delivered asynchronously in publish order. Subjects match as on NATS: `*`
 * is one token, a trailing `>` one or more.
 */
import { parseExactJson, stringifyExactJson } from '../../core/json.ts';
import type { EventEnvelope, EventPlane } from '../../core/events/types.ts';

/** NATS subject matching: `*` matches one token, a final `>` one or more. */
export function subjectMatches(pattern: string, subject: string): boolean {
  if (pattern === subject) return true;
  const want = pattern.split('.');
  const have = subject.split('.');
  for (let i = 0; i < want.length; i++) {
    const token = want[i];
    if (token === '>' && i === want.length - 1) return have.length > i;
    if (i >= have.length || (token !== '*' && token !== have[i])) return false;
  }
  return want.length === have.length;
}

/** A random u64 as lower-case hex, as Dynamo names publishers and instances. */
export function randomPublisherId(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(8));
  const hex = [...bytes].map((b) => b.toString(16).padStart(2, '0')).join('').replace(/^0+/, '');
  return hex || '0';
}

/** The last subject token: `namespace.dynamo.component.backend.kv-events` -> `kv-events`. */
export function topicOf(subject: string): string {
  return subject.slice(subject.lastIndexOf('.') + 1);
}

export interface EventPlaneHandleOptions {
  /** This publisher's id, lower-case hex of a u64. @default a random one */
  publisherId?: string;
  /** Clock for `published_at`, in ms. @default () => Date.now() */
  now?: () => number;
  /** Receives errors thrown by `onEvent` callbacks and undecodable messages. @default console.error */
  onError?: (error: unknown) => void;
}

export interface MemEventBus {
  /** A new publisher/subscriber handle on this bus. */
  plane(options?: EventPlaneHandleOptions): EventPlane;
}

interface Subscriber {
  pattern: string;
  onEvent?: (event: EventEnvelope) => void;
  /** `subscribeRaw`: the wire text, undecoded. */
  onRaw?: (message: string) => void;
  onError: (error: unknown) => void;
}

export function createMemEventBus(): MemEventBus {
  const subscribers = new Set<Subscriber>();

  function deliver(subject: string, wire: string): void {
    for (const subscriber of subscribers) {
      if (!subjectMatches(subscriber.pattern, subject)) continue;
      const event = subscriber.onEvent ? parseExactJson(wire) as EventEnvelope : undefined;
      queueMicrotask(() => {
        if (!subscribers.has(subscriber)) return;
        try {
          if (subscriber.onRaw) subscriber.onRaw(wire);
          else subscriber.onEvent?.(event as EventEnvelope);
        } catch (error) {
          subscriber.onError(error);
        }
      });
    }
  }

  return {
    plane(options: EventPlaneHandleOptions = {}): EventPlane {
      const publisherId = options.publisherId ?? randomPublisherId();
      const now = options.now ?? (() => Date.now());
      const onError = options.onError ?? ((error: unknown) => console.error(error));
      const mine = new Set<Subscriber>();
      let sequence = 0;
      let closed = false;
      const add = (subscriber: Subscriber) => {
        if (closed) throw new Error('The event plane is closed');
        subscribers.add(subscriber);
        mine.add(subscriber);
        return () => {
          subscribers.delete(subscriber);
          mine.delete(subscriber);
        };
      };
      return {
        publish(subject, payload) {
          if (closed) return Promise.reject(new Error('The event plane is closed'));
          const envelope: EventEnvelope = {
            topic: topicOf(subject),
            publisher_id: publisherId,
            sequence: sequence++,
            published_at: now(),
            payload,
          };
          try {
            deliver(subject, stringifyExactJson(envelope));
          } catch (error) {
            return Promise.reject(error);
          }
          return Promise.resolve();
        },
        subscribeRaw(subject, onRaw) {
          return add({ pattern: subject, onRaw, onError });
        },
        subscribe(subject, onEvent) {
          return add({ pattern: subject, onEvent, onError });
        },
        close() {
          closed = true;
          for (const subscriber of mine) subscribers.delete(subscriber);
          mine.clear();
          return Promise.resolve();
        },
      };
    },
  };
}
