/**
 * The event-plane contract: mem and nats run these same tests through `EventPlane` only (plus a
 * `settle()` hook that waits until subscriptions are live, which NATS needs and mem does not).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { EventEnvelope, EventPlane } from '../../src/core/events/types.ts';
import { waitFor } from '../helpers/wait.ts';
import { parseExactJson } from '../../src/core/json.ts';

export interface EventPlaneFixture {
  /** A new handle (its own publisher id); the fixture closes it. */
  plane(options?: { publisherId?: string; now?: () => number }): EventPlane;
  /** Resolves once `plane`'s earlier subscriptions receive what is published from now on. */
  settle(plane: EventPlane): Promise<void>;
  close(): Promise<void>;
}

const WAIT_MS = 10_000;

/** Collects events and lets a test wait (bounded) until `count` have arrived. */
function inbox() {
  const events: EventEnvelope[] = [];
  return {
    events,
    onEvent: (event: EventEnvelope) => void events.push(event),
    until: (count: number): Promise<EventEnvelope[]> =>
      waitFor(() => (events.length >= count ? events : undefined), {
        timeoutMs: WAIT_MS,
        what: `${count} events`,
      }),
  };
}

/** A subject no other test (or concurrently running test file) uses. */
function subject(topic = 'kv-events'): string {
  return `namespace.t${crypto.randomUUID().slice(0, 8)}.component.backend.${topic}`;
}

export function eventPlaneContract(name: string, factory: () => Promise<EventPlaneFixture>): void {
  async function withBus(body: (fixture: EventPlaneFixture) => Promise<void>): Promise<void> {
    const fixture = await factory();
    try {
      await body(fixture);
    } finally {
      await fixture.close();
    }
  }

  test(`${name}: a subscriber receives the envelope {topic, publisher_id, sequence, published_at, payload}`, () =>
    withBus(async (fixture) => {
      const to = subject();
      const publisher = fixture.plane({ publisherId: '694d98147d54be25', now: () => 1_700_000 });
      const subscriber = fixture.plane();
      const received = inbox();
      subscriber.subscribe(to, received.onEvent);
      await fixture.settle(subscriber);
      const payload = {
        event_id: 1,
        data: { stored: { blocks: [{ block_hash: 42 }] } },
        note: 'ü 世界',
      };
      await publisher.publish(to, payload);
      const [event] = await received.until(1);
      assert.deepEqual(event, {
        topic: 'kv-events',
        publisher_id: '694d98147d54be25',
        sequence: 0,
        published_at: 1_700_000,
        payload,
      });
    }));

  test(`${name}: events from one publisher arrive in order with consecutive sequences`, () =>
    withBus(async (fixture) => {
      const to = subject('kv_metrics');
      const publisher = fixture.plane();
      const subscriber = fixture.plane();
      const received = inbox();
      subscriber.subscribe(to, received.onEvent);
      await fixture.settle(subscriber);
      await Promise.all(Array.from({ length: 100 }, (_, i) => publisher.publish(to, { i })));
      const events = await received.until(100);
      assert.deepEqual(
        events.map((e) => e.payload),
        Array.from({ length: 100 }, (_, i) => ({ i })),
      );
      assert.deepEqual(events.map((e) => e.sequence), Array.from({ length: 100 }, (_, i) => i));
      assert.match(events[0]!.publisher_id, /^[0-9a-f]{1,16}$/);
    }));

  test(`${name}: each publisher has its own id and sequence`, () =>
    withBus(async (fixture) => {
      const to = subject();
      const [a, b] = [fixture.plane(), fixture.plane()];
      const subscriber = fixture.plane();
      const received = inbox();
      subscriber.subscribe(to, received.onEvent);
      await fixture.settle(subscriber);
      await a.publish(to, 'a0');
      await b.publish(to, 'b0');
      await a.publish(to, 'a1');
      const events = await received.until(3);
      const byPublisher = new Map<string, number[]>();
      for (const e of events) {
        byPublisher.set(e.publisher_id, [...byPublisher.get(e.publisher_id) ?? [], e.sequence]);
      }
      assert.equal(byPublisher.size, 2);
      assert.deepEqual([...byPublisher.values()].sort((x, y) => y.length - x.length), [[0, 1], [
        0,
      ]]);
    }));

  test(`${name}: subjects are isolated, and wildcards match as on NATS`, () =>
    withBus(async (fixture) => {
      const ns = `t${crypto.randomUUID().slice(0, 8)}`;
      const kv = `namespace.${ns}.component.backend.kv-events`;
      const metrics = `namespace.${ns}.kv_metrics`;
      const publisher = fixture.plane();
      const subscriber = fixture.plane();
      const [onlyKv, star, tail] = [inbox(), inbox(), inbox()];
      subscriber.subscribe(kv, onlyKv.onEvent);
      subscriber.subscribe(`namespace.${ns}.component.*.kv-events`, star.onEvent);
      subscriber.subscribe(`namespace.${ns}.>`, tail.onEvent);
      await fixture.settle(subscriber);
      await publisher.publish(metrics, 'load');
      await publisher.publish(kv, 'stored');
      assert.deepEqual((await tail.until(2)).map((e) => e.payload), ['load', 'stored']);
      assert.deepEqual((await star.until(1)).map((e) => e.payload), ['stored']);
      assert.deepEqual((await onlyKv.until(1)).map((e) => e.payload), ['stored']);
      assert.equal((await tail.until(2))[0]!.topic, 'kv_metrics');
    }));

  test(`${name}: unsubscribing stops delivery`, () =>
    withBus(async (fixture) => {
      const to = subject();
      const publisher = fixture.plane();
      const subscriber = fixture.plane();
      const [gone, stays] = [inbox(), inbox()];
      const unsubscribe = subscriber.subscribe(to, gone.onEvent);
      subscriber.subscribe(to, stays.onEvent);
      await fixture.settle(subscriber);
      await publisher.publish(to, 1);
      await gone.until(1);
      unsubscribe();
      await fixture.settle(subscriber);
      await publisher.publish(to, 2);
      // The still-subscribed handler saw event 2, so the other one would have seen it by now.
      await stays.until(2);
      assert.deepEqual(gone.events.map((e) => e.payload), [1]);
    }));

  test(`${name}: a closed handle refuses to publish`, () =>
    withBus(async (fixture) => {
      const plane = fixture.plane();
      await plane.close();
      await assert.rejects(plane.publish(subject(), 1), /closed/);
    }));

  test(`${name}: subscribeRaw, where offered, hands over the envelope's exact JSON undecoded`, () =>
    withBus(async (fixture) => {
      const to = subject();
      const publisher = fixture.plane({ publisherId: '694d98147d54be25' });
      const subscriber = fixture.plane();
      if (!subscriber.subscribeRaw) return; // a plane whose wire form is not JSON
      const raw: Array<Uint8Array | string> = [];
      subscriber.subscribeRaw(to, (message) => raw.push(message));
      await fixture.settle(subscriber);
      const big = 18_446_744_073_709_551_557n;
      await publisher.publish(to, { worker_id: big, event: { event_id: 3 } });
      const [message] = await waitFor(() => (raw.length > 0 ? raw : undefined), {
        timeoutMs: WAIT_MS,
        what: 'a raw message',
      });
      const text = typeof message === 'string' ? message : new TextDecoder().decode(message);
      const envelope = parseExactJson(text) as EventEnvelope;
      assert.equal(envelope.publisher_id, '694d98147d54be25');
      assert.deepEqual(envelope.payload, { worker_id: big, event: { event_id: 3 } });
    }));
}
