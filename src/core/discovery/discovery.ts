/**
 * The discovery layer above a `KvStore`: Dynamo's keys (`v1/instances/...`, `v1/mdc/...`), their
 * JSON values, queries at path boundaries, and watches turned into added/removed events.
 *
 * Instance ids are u64s that may exceed 2^53. They stay lower-case hex strings here, taken from
 * the key (never from a parsed JSON number, which may be rounded); when a value is written the id
 * goes into the JSON text as exact decimal digits.
 */
import { stringifyExactJson } from '../json.ts';
import type { Logger } from '../logger.ts';
import type { EndpointId, KvEntry, KvStore, KvWatchEvent, TransportAddress } from './types.ts';

export const INSTANCES_BUCKET = 'v1/instances';
export const MODELS_BUCKET = 'v1/mdc';

/** The global namespace: a frontend configured with it (or with none) sees every namespace. */
export const GLOBAL_NAMESPACE = 'dynamo';

/** Malformed input to discovery, or a registration that conflicts with an existing one. */
export class DiscoveryError extends Error {
  constructor(message: string, options: { cause?: unknown } = {}) {
    super(message, options);
    this.name = 'DiscoveryError';
  }
}

/** A model registration refused because another one already holds its key or endpoint. */
export class ModelConflictError extends DiscoveryError {
  constructor(message: string, options: { cause?: unknown } = {}) {
    super(message, options);
    this.name = 'ModelConflictError';
  }
}

export type JsonObject = Record<string, unknown>;

/* ------------------------------------------------------------------------------------------ */
/* Keys                                                                                        */
/* ------------------------------------------------------------------------------------------ */

const HEX_ID = /^[0-9a-f]{1,16}$/;

function checkSegment(what: string, value: string): void {
  if (value === '' || value.includes('/')) {
    throw new DiscoveryError(`Invalid ${what} "${value}": it must be non-empty without "/"`);
  }
}

/** Lower-case hex of a u64, as it appears in keys; throws on anything else. */
export function normalizeInstanceId(idHex: string): string {
  const id = idHex.toLowerCase();
  if (!HEX_ID.test(id)) {
    throw new DiscoveryError(`Invalid instance id "${idHex}": expected hex u64`);
  }
  return id;
}

function endpointPath(ep: EndpointId): string {
  checkSegment('namespace', ep.namespace);
  checkSegment('component', ep.component);
  checkSegment('endpoint', ep.endpoint);
  return `${ep.namespace}/${ep.component}/${ep.endpoint}`;
}

/** `v1/instances/{ns}/{component}/{endpoint}/{id}`. */
export function instanceKey(ep: EndpointId, idHex: string): string {
  return `${INSTANCES_BUCKET}/${endpointPath(ep)}/${normalizeInstanceId(idHex)}`;
}

/** `v1/mdc/{ns}/{component}/{endpoint}/{id}[/{suffix}]`; the suffix names a LoRA adapter. */
export function modelKey(ep: EndpointId, idHex: string, suffix?: string): string {
  const base = `${MODELS_BUCKET}/${endpointPath(ep)}/${normalizeInstanceId(idHex)}`;
  if (suffix === undefined) return base;
  checkSegment('model suffix', suffix);
  return `${base}/${suffix}`;
}

/** What a key says: enough to identify a removed record, whose value is gone. */
export interface InstanceRef {
  key: string;
  endpoint: EndpointId;
  /** Lower-case hex u64. */
  instanceId: string;
}

export interface ModelRef extends InstanceRef {
  /** The 5th key part (LoRA slug), when present. */
  suffix?: string;
}

function splitKey(key: string, bucket: string): string[] | undefined {
  if (!key.startsWith(`${bucket}/`)) return undefined;
  const parts = key.slice(bucket.length + 1).split('/');
  if (parts.some((p) => p === '')) return undefined;
  const id = parts[3];
  if (id === undefined || !HEX_ID.test(id)) return undefined;
  return parts;
}

/** Parses `v1/instances/{ns}/{c}/{e}/{id}` (exactly 4 parts); undefined when malformed. */
export function parseInstanceKey(key: string): InstanceRef | undefined {
  const parts = splitKey(key, INSTANCES_BUCKET);
  if (parts?.length !== 4) return undefined;
  const [namespace, component, endpoint, instanceId] = parts as [string, string, string, string];
  return { key, endpoint: { namespace, component, endpoint }, instanceId };
}

/** Parses `v1/mdc/{ns}/{c}/{e}/{id}[/{suffix}]` (4 or 5 parts); undefined when malformed. */
export function parseModelKey(key: string): ModelRef | undefined {
  const parts = splitKey(key, MODELS_BUCKET);
  if (parts === undefined || (parts.length !== 4 && parts.length !== 5)) return undefined;
  const [namespace, component, endpoint, instanceId, suffix] = parts as [
    string,
    string,
    string,
    string,
    string | undefined,
  ];
  const ref: ModelRef = { key, endpoint: { namespace, component, endpoint }, instanceId };
  if (suffix !== undefined) ref.suffix = suffix;
  return ref;
}

/** True when `key` is `prefix` or lies below it: `ns/comp` matches `ns/comp/x`, not `ns/comp2`. */
export function matchesPrefix(key: string, prefix: string): boolean {
  const p = prefix.endsWith('/') ? prefix.slice(0, -1) : prefix;
  return p === '' || key === p || key.startsWith(`${p}/`);
}

/**
 * Which records to list or watch: all of them (`{}`), one namespace, one component, or one
 * endpoint. Each level needs the ones above it.
 */
export type DiscoveryQuery =
  | { namespace?: undefined; component?: undefined; endpoint?: undefined }
  | { namespace: string; component?: undefined; endpoint?: undefined }
  | { namespace: string; component: string; endpoint?: undefined }
  | EndpointId;

/** The key prefix a query scans, below `bucket`. */
export function queryPrefix(bucket: string, query: DiscoveryQuery): string {
  const parts: string[] = [];
  if (query.namespace !== undefined) {
    checkSegment('namespace', query.namespace);
    parts.push(query.namespace);
    if (query.component !== undefined) {
      checkSegment('component', query.component);
      parts.push(query.component);
      if (query.endpoint !== undefined) {
        checkSegment('endpoint', query.endpoint);
        parts.push(query.endpoint);
      }
    }
  }
  return [bucket, ...parts].join('/');
}

/* ------------------------------------------------------------------------------------------ */
/* Exact JSON (u64 numbers survive)                                                            */
/* ------------------------------------------------------------------------------------------ */

/* ------------------------------------------------------------------------------------------ */
/* Records                                                                                     */
/* ------------------------------------------------------------------------------------------ */

/** A served endpoint of one worker process (`v1/instances`). */
export interface InstanceRecord extends InstanceRef {
  transport: TransportAddress;
  /** The stored JSON value as text (its `instance_id` is exact there). */
  value: string;
}

/** A model card registered by one worker process on one endpoint (`v1/mdc`). */
export interface ModelRecord extends ModelRef {
  /** The model deployment card (`card_json`), unvalidated. */
  card: JsonObject;
  value: string;
}

function u64Decimal(idHex: string): bigint {
  return BigInt(`0x${normalizeInstanceId(idHex)}`);
}

/** Who registers a value: the endpoint and the process's instance id (hex). */
export interface RecordOwner {
  endpoint: EndpointId;
  instanceId: string;
  /** LoRA slug of a model card (the key's 5th part, `model_suffix`). @default none */
  suffix?: string;
}

function ownerFields(owner: RecordOwner) {
  return {
    namespace: owner.endpoint.namespace,
    component: owner.endpoint.component,
    endpoint: owner.endpoint.endpoint,
    instance_id: u64Decimal(owner.instanceId),
  };
}

/** The JSON value of an Endpoint registration, `instance_id` as an exact decimal. */
export function encodeInstanceValue(owner: RecordOwner, transport: TransportAddress): string {
  return stringifyExactJson({ type: 'Endpoint', ...ownerFields(owner), transport });
}

/** The JSON value of a Model registration, `instance_id` as an exact decimal. */
export function encodeModelValue(owner: RecordOwner, card: JsonObject): string {
  const value: Record<string, unknown> = { type: 'Model', ...ownerFields(owner), card_json: card };
  if (owner.suffix !== undefined) value.model_suffix = owner.suffix;
  return stringifyExactJson(value);
}

function isObject(value: unknown): value is JsonObject {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function parseTransport(value: unknown): TransportAddress | undefined {
  if (!isObject(value)) return undefined;
  if (typeof value.tcp === 'string') return { tcp: value.tcp };
  if (typeof value.http === 'string') return { http: value.http };
  if (typeof value.nats_tcp === 'string') return { nats_tcp: value.nats_tcp };
  if (typeof value.openai === 'string') {
    // The engine's API key, when `switchboard register --api-key` published one.
    return typeof value.api_key === 'string'
      ? { openai: value.openai, api_key: value.api_key }
      : { openai: value.openai };
  }
  return undefined;
}

export type Decoded<T> = { ok: true; record: T } | { ok: false; reason: string };

function parseObject(value: string): JsonObject | undefined {
  try {
    const parsed: unknown = JSON.parse(value);
    return isObject(parsed) ? parsed : undefined;
  } catch {
    return undefined;
  }
}

/** Reads an instance entry; the id and endpoint come from the key. */
export function decodeInstance(entry: KvEntry): Decoded<InstanceRecord> {
  const ref = parseInstanceKey(entry.key);
  if (!ref) return { ok: false, reason: 'malformed instance key' };
  const json = parseObject(entry.value);
  if (json?.type !== 'Endpoint') return { ok: false, reason: 'value is not an Endpoint object' };
  const transport = parseTransport(json.transport);
  if (!transport) return { ok: false, reason: 'value has no known transport' };
  return { ok: true, record: { ...ref, transport, value: entry.value } };
}

/** Reads a model entry; the id, endpoint and suffix come from the key. */
export function decodeModel(entry: KvEntry): Decoded<ModelRecord> {
  const ref = parseModelKey(entry.key);
  if (!ref) return { ok: false, reason: 'malformed model key' };
  const json = parseObject(entry.value);
  if (json?.type !== 'Model') return { ok: false, reason: 'value is not a Model object' };
  if (!isObject(json.card_json)) return { ok: false, reason: 'value has no card_json object' };
  return { ok: true, record: { ...ref, card: json.card_json, value: entry.value } };
}

/* ------------------------------------------------------------------------------------------ */
/* Watch diffing                                                                               */
/* ------------------------------------------------------------------------------------------ */

export type DiscoveryEvent<R, Ref> =
  /** A new record or a changed one (an upsert). */
  | { kind: 'added'; record: R }
  | { kind: 'removed'; id: Ref };

export type InstanceEvent = DiscoveryEvent<InstanceRecord, InstanceRef>;
export type ModelEvent = DiscoveryEvent<ModelRecord, ModelRef>;

/** How the records of one bucket are read: a value with its key, and a key alone. */
export interface RecordCodec<R, Ref> {
  decode(entry: KvEntry): Decoded<R>;
  parseRef(key: string): Ref | undefined;
}

export const instanceCodec: RecordCodec<InstanceRecord, InstanceRef> = {
  decode: decodeInstance,
  parseRef: parseInstanceKey,
};

export const modelCodec: RecordCodec<ModelRecord, ModelRef> = {
  decode: decodeModel,
  parseRef: parseModelKey,
};

export interface RecordTrackerOptions {
  /** Told about values that do not decode (the previous record is kept). @default none */
  onInvalid?: (key: string, reason: string) => void;
}

/**
 * Turns raw store events into added/removed events, remembering what it reported. A snapshot is
 * diffed against that memory; a value that fails to decode keeps the previous record.
 */
export function createRecordTracker<R extends { key: string; value: string }, Ref>(
  codec: RecordCodec<R, Ref>,
  options: RecordTrackerOptions = {},
): {
  apply(event: KvWatchEvent): DiscoveryEvent<R, Ref>[];
  readonly known: ReadonlyMap<string, R>;
} {
  const { decode, parseRef } = codec;
  const onInvalid = options.onInvalid ?? (() => {});
  const known = new Map<string, R>();
  const upsert = (entry: KvEntry, out: DiscoveryEvent<R, Ref>[]) => {
    if (known.get(entry.key)?.value === entry.value) return;
    const decoded = decode(entry);
    if (!decoded.ok) return onInvalid(entry.key, decoded.reason);
    known.set(entry.key, decoded.record);
    out.push({ kind: 'added', record: decoded.record });
  };
  const remove = (key: string, out: DiscoveryEvent<R, Ref>[]) => {
    if (!known.delete(key)) return;
    const id = parseRef(key);
    if (id !== undefined) out.push({ kind: 'removed', id });
  };
  return {
    known,
    apply(event) {
      const out: DiscoveryEvent<R, Ref>[] = [];
      switch (event.kind) {
        case 'snapshot': {
          const present = new Set(event.entries.map((e) => e.key));
          for (const key of [...known.keys()]) if (!present.has(key)) remove(key, out);
          for (const entry of event.entries) upsert(entry, out);
          break;
        }
        case 'put':
          upsert(event, out);
          break;
        case 'delete':
          remove(event.key, out);
          break;
      }
      return out;
    },
  };
}

/* ------------------------------------------------------------------------------------------ */
/* Namespace filter (Dynamo's lib/llm/src/namespace.rs)                                        */
/* ------------------------------------------------------------------------------------------ */

export type NamespaceFilter =
  | { kind: 'global' }
  | { kind: 'exact'; namespace: string }
  | { kind: 'prefix'; prefix: string }
  /** `prefix` exactly, or `prefix-` and 8 lower-hex characters (the operator's rolling names). */
  | { kind: 'generation'; prefix: string };

export interface NamespaceFilterOptions {
  /** `--namespace` / `DYN_NAMESPACE`. @default undefined (global) */
  namespace?: string;
  /** `--namespace-prefix` / `DYN_NAMESPACE_PREFIX`; wins over `namespace`. @default undefined */
  namespacePrefix?: string;
  /** `DYN_NAMESPACE_PREFIX_STRICT`: the prefix only matches worker generations. @default false */
  strictPrefix?: boolean;
}

const isGlobal = (ns: string | undefined) =>
  ns === undefined || ns === '' || ns === GLOBAL_NAMESPACE;

export function namespaceFilter(options: NamespaceFilterOptions = {}): NamespaceFilter {
  const { namespace, namespacePrefix } = options;
  if (namespacePrefix !== undefined) {
    if (isGlobal(namespacePrefix)) return { kind: 'global' };
    return options.strictPrefix
      ? { kind: 'generation', prefix: namespacePrefix }
      : { kind: 'prefix', prefix: namespacePrefix };
  }
  if (namespace === undefined || isGlobal(namespace)) return { kind: 'global' };
  return { kind: 'exact', namespace };
}

const GENERATION_SUFFIX = /^-[0-9a-f]{8}$/;

export function matchesNamespace(filter: NamespaceFilter, namespace: string): boolean {
  switch (filter.kind) {
    case 'global':
      return true;
    case 'exact':
      return namespace === filter.namespace;
    case 'prefix':
      return namespace.startsWith(filter.prefix);
    case 'generation':
      return namespace === filter.prefix ||
        (namespace.startsWith(filter.prefix) &&
          GENERATION_SUFFIX.test(namespace.slice(filter.prefix.length)));
  }
}

/* ------------------------------------------------------------------------------------------ */
/* The Discovery object                                                                        */
/* ------------------------------------------------------------------------------------------ */

export interface Discovery {
  /** This process's instance id (lower-case hex u64), shared by all its registrations. */
  readonly instanceId: string;
  /** Publishes (or replaces) this process's endpoint at `transport`. */
  registerEndpoint(endpoint: EndpointId, transport: TransportAddress): Promise<InstanceRecord>;
  /**
   * Publishes a model card served on `endpoint`, create-if-absent: an identical registration is
   * accepted again; a different card under the same key, or a different `display_name` already
   * served on the same endpoint, throws `ModelConflictError`.
   */
  registerModel(endpoint: EndpointId, card: JsonObject, suffix?: string): Promise<ModelRecord>;
  unregisterEndpoint(endpoint: EndpointId): Promise<void>;
  unregisterModel(endpoint: EndpointId, suffix?: string): Promise<void>;
  listInstances(query?: DiscoveryQuery): Promise<InstanceRecord[]>;
  listModels(query?: DiscoveryQuery): Promise<ModelRecord[]>;
  /** Added events for the current state, then changes, until `signal` aborts. */
  watchInstances(query: DiscoveryQuery, signal: AbortSignal): AsyncIterable<InstanceEvent>;
  watchModels(query: DiscoveryQuery, signal: AbortSignal): AsyncIterable<ModelEvent>;
}

export interface DiscoveryOptions {
  /** Told about entries that do not decode (they are skipped). @default none */
  logger?: Logger;
}

export function createDiscovery(store: KvStore, options: DiscoveryOptions = {}): Discovery {
  const onInvalid = (key: string, reason: string) =>
    options.logger?.warn('Ignoring a discovery entry that does not decode', { key, reason });

  function decodeAll<R>(entries: KvEntry[], decode: (e: KvEntry) => Decoded<R>): R[] {
    const out: R[] = [];
    for (const entry of entries) {
      const decoded = decode(entry);
      if (decoded.ok) out.push(decoded.record);
      else onInvalid(entry.key, decoded.reason);
    }
    return out;
  }

  async function* watch<R extends { key: string; value: string }, Ref>(
    prefix: string,
    signal: AbortSignal,
    codec: RecordCodec<R, Ref>,
  ): AsyncGenerator<DiscoveryEvent<R, Ref>> {
    const tracker = createRecordTracker(codec, { onInvalid });
    for await (const event of store.watch(prefix, signal)) {
      const scoped: KvWatchEvent = event.kind === 'snapshot'
        ? { kind: 'snapshot', entries: event.entries.filter((e) => matchesPrefix(e.key, prefix)) }
        : event;
      if (scoped.kind !== 'snapshot' && !matchesPrefix(scoped.key, prefix)) continue;
      yield* tracker.apply(scoped);
    }
  }

  async function existingValue(key: string): Promise<string | undefined> {
    return (await store.list(key)).find((e) => e.key === key)?.value;
  }

  async function checkDisplayName(endpoint: EndpointId, key: string, card: JsonObject) {
    const name = card.display_name;
    if (typeof name !== 'string') return;
    const others = await listModels(endpoint);
    const clash = others.find((m) =>
      m.key !== key && m.suffix === undefined && typeof m.card.display_name === 'string' &&
      m.card.display_name !== name
    );
    if (clash) {
      throw new ModelConflictError(
        `Model "${name}" cannot be registered on "${endpointPath(endpoint)}": ` +
          `it already serves "${String(clash.card.display_name)}"`,
      );
    }
  }

  async function listModels(query: DiscoveryQuery = {}): Promise<ModelRecord[]> {
    const prefix = queryPrefix(MODELS_BUCKET, query);
    const entries = (await store.list(prefix)).filter((e) => matchesPrefix(e.key, prefix));
    return decodeAll(entries, decodeModel);
  }

  return {
    get instanceId() {
      return store.instanceId;
    },

    async registerEndpoint(endpoint, transport) {
      const key = instanceKey(endpoint, store.instanceId);
      const value = encodeInstanceValue({ endpoint, instanceId: store.instanceId }, transport);
      await store.put(key, value);
      return { ...(parseInstanceKey(key) as InstanceRef), transport, value };
    },

    async registerModel(endpoint, card, suffix) {
      const key = modelKey(endpoint, store.instanceId, suffix);
      const owner: RecordOwner = { endpoint, instanceId: store.instanceId };
      if (suffix !== undefined) owner.suffix = suffix;
      const value = encodeModelValue(owner, card);
      const record: ModelRecord = { ...(parseModelKey(key) as ModelRef), card, value };
      if (suffix === undefined) await checkDisplayName(endpoint, key, card);
      if (!await store.create(key, value)) {
        const existing = await existingValue(key);
        if (existing === value) return record;
        throw new ModelConflictError(`Model key "${key}" is already registered with another card`);
      }
      if (suffix === undefined) {
        try {
          await checkDisplayName(endpoint, key, card);
        } catch (error) {
          await store.delete(key);
          throw error;
        }
      }
      return record;
    },

    async unregisterEndpoint(endpoint) {
      await store.delete(instanceKey(endpoint, store.instanceId));
    },

    async unregisterModel(endpoint, suffix) {
      await store.delete(modelKey(endpoint, store.instanceId, suffix));
    },

    async listInstances(query = {}) {
      const prefix = queryPrefix(INSTANCES_BUCKET, query);
      const entries = (await store.list(prefix)).filter((e) => matchesPrefix(e.key, prefix));
      return decodeAll(entries, decodeInstance);
    },

    listModels,

    watchInstances(query, signal) {
      return watch(queryPrefix(INSTANCES_BUCKET, query), signal, instanceCodec);
    },

    watchModels(query, signal) {
      return watch(queryPrefix(MODELS_BUCKET, query), signal, modelCodec);
    },
  };
}

export { parseExactJson, stringifyExactJson } from '../json.ts';
