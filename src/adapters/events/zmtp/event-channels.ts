/**
 * Event-channel discovery records (runtime reference §1.1, §1.2, §4.3): a ZMQ event publisher
 * advertises its PUB socket under
 * `v1/event_channels/namespace/{ns}[/component/{c}[/endpoint/{e}]]/topic/{topic}/{publisher_id:x}`
 * with the value `{"type":"EventChannel","scope":{...},"topic":..,"instance_id":<u64>,
 * "transport":{"kind":"Zmq","config":{"endpoint":"tcp://host:port"}}}`. Path segments are
 * percent-encoded (everything but `[A-Za-z0-9_-]`). Subjects are the NATS form of the same scope:
 * `namespace.{ns}[.component.{c}[.endpoint.{e}]].{topic}`.
 */
import { parseExactJson, stringifyExactJson } from '../../../core/json.ts';

export const EVENT_CHANNELS_BUCKET = 'v1/event_channels';

export type EventScope =
  | { kind: 'namespace'; namespace: string }
  | { kind: 'component'; namespace: string; component: string }
  | { kind: 'endpoint'; namespace: string; component: string; endpoint: string };

export interface EventChannel {
  scope: EventScope;
  topic: string;
  /** Lower-case hex u64. */
  publisherId: string;
  /** `tcp://host:port`. */
  endpoint: string;
}

/** Dynamo's `encode_event_segment`: every byte but `[A-Za-z0-9_-]` as `%XX` (upper hex). */
export function encodeEventSegment(segment: string): string {
  let out = '';
  for (const byte of new TextEncoder().encode(segment)) {
    const c = String.fromCharCode(byte);
    out += /[A-Za-z0-9_-]/.test(c) ? c : `%${byte.toString(16).toUpperCase().padStart(2, '0')}`;
  }
  return out;
}

/** `namespace.{ns}[.component.{c}[.endpoint.{e}]].{topic}` → scope and topic. */
export function parseSubject(subject: string): { scope: EventScope; topic: string } {
  const t = subject.split('.');
  const bad = () => new Error(`Invalid event subject "${subject}"`);
  if (t[0] !== 'namespace' || t.some((x) => x === '' || x === '*' || x === '>')) throw bad();
  if (t.length === 3) return { scope: { kind: 'namespace', namespace: t[1]! }, topic: t[2]! };
  if (t.length === 5 && t[2] === 'component') {
    return { scope: { kind: 'component', namespace: t[1]!, component: t[3]! }, topic: t[4]! };
  }
  if (t.length === 7 && t[2] === 'component' && t[4] === 'endpoint') {
    return {
      scope: { kind: 'endpoint', namespace: t[1]!, component: t[3]!, endpoint: t[5]! },
      topic: t[6]!,
    };
  }
  throw bad();
}

export function subjectOf(scope: EventScope, topic: string): string {
  const parts = ['namespace', scope.namespace];
  if (scope.kind !== 'namespace') parts.push('component', scope.component);
  if (scope.kind === 'endpoint') parts.push('endpoint', scope.endpoint);
  return [...parts, topic].join('.');
}

export function eventChannelKey(channel: Omit<EventChannel, 'endpoint'>): string {
  const { scope } = channel;
  const parts = [EVENT_CHANNELS_BUCKET, 'namespace', encodeEventSegment(scope.namespace)];
  if (scope.kind !== 'namespace') parts.push('component', encodeEventSegment(scope.component));
  if (scope.kind === 'endpoint') parts.push('endpoint', encodeEventSegment(scope.endpoint));
  parts.push('topic', encodeEventSegment(channel.topic), channel.publisherId);
  return parts.join('/');
}

export function encodeEventChannelValue(channel: EventChannel): string {
  return stringifyExactJson({
    type: 'EventChannel',
    scope: channel.scope,
    topic: channel.topic,
    instance_id: BigInt(`0x${channel.publisherId}`),
    transport: { kind: 'Zmq', config: { endpoint: channel.endpoint } },
  });
}

const decodeSegment = (s: string) => decodeURIComponent(s);

/**
 * Reads an entry; the scope, topic and publisher id come from the key, the endpoint from the
 * value. Undefined for malformed entries or other transports (NATS, broker).
 */
export function decodeEventChannel(key: string, value: string): EventChannel | undefined {
  if (!key.startsWith(`${EVENT_CHANNELS_BUCKET}/`)) return undefined;
  const p = key.slice(EVENT_CHANNELS_BUCKET.length + 1).split('/');
  let scope: EventScope;
  let rest: string[];
  try {
    if (p[0] !== 'namespace' || p.length < 5) return undefined;
    if (p[2] === 'topic') {
      scope = { kind: 'namespace', namespace: decodeSegment(p[1]!) };
      rest = p.slice(2);
    } else if (p[2] === 'component' && p[4] === 'topic') {
      scope = {
        kind: 'component',
        namespace: decodeSegment(p[1]!),
        component: decodeSegment(p[3]!),
      };
      rest = p.slice(4);
    } else if (p[2] === 'component' && p[4] === 'endpoint' && p[6] === 'topic') {
      scope = {
        kind: 'endpoint',
        namespace: decodeSegment(p[1]!),
        component: decodeSegment(p[3]!),
        endpoint: decodeSegment(p[5]!),
      };
      rest = p.slice(6);
    } else return undefined;
    if (rest.length !== 3 || !/^[0-9a-f]{1,16}$/.test(rest[2]!)) return undefined;
    const json = parseExactJson(value) as {
      type?: unknown;
      transport?: { kind?: unknown; config?: { endpoint?: unknown } };
    };
    if (json?.type !== 'EventChannel' || json.transport?.kind !== 'Zmq') return undefined;
    const endpoint = json.transport.config?.endpoint;
    if (typeof endpoint !== 'string') return undefined;
    return { scope, topic: decodeSegment(rest[1]!), publisherId: rest[2]!, endpoint };
  } catch {
    return undefined;
  }
}
