/**
 * Discovery through the Kubernetes API server (Dynamo's `kubernetes` backend), with `fetch` only.
 *
 * - Each worker pod writes one `DynamoWorkerMetadata` custom resource (`nvidia.com/v1alpha1`,
 *   plural `dynamoworkermetadatas`) named after the pod and owned by it, so Kubernetes deletes it
 *   with the pod. `spec.data` holds the maps `endpoints`, `model_cards` and `event_channels`, keyed
 *   `{ns}/{component}/{endpoint}/{id:x}[/{suffix}]`, whose values are the JSON objects other
 *   backends store as `v1/instances/...`, `v1/mdc/...` and `v1/event_channels/...`. The CR is
 *   written whole with server-side apply after every change.
 * - Readers list and watch those CRs and, unless `requireReady` is off, the EndpointSlices that
 *   say which pods are Ready: a pod's entries are visible only while it is Ready and has a CR.
 *   Both are exposed as ordinary `KvStore` entries.
 * - The instance id is a hash of the pod name (FNV-1a 64, cut to 53 bits as Dynamo cuts its own
 *   hash, so it survives float64 JSON parsers). It is not Dynamo's hash: ids only need to be stable
 *   and distinct, and every reader takes them from the keys.
 *
 * Values must be JSON objects; they are re-serialised compactly, with u64 numbers kept exact.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import {
  matchesPrefix,
  parseExactJson,
  stringifyExactJson,
} from '../../core/discovery/discovery.ts';
import {
  type KvEntry,
  type KvStore,
  KvStoreError,
  type KvWatchEvent,
} from '../../core/discovery/types.ts';
import type { Logger } from '../../core/logger.ts';
import { type Channel, createBackoff, delay, readLines, streamFrom } from './_shared.ts';

export const DWM_GROUP_VERSION = 'nvidia.com/v1alpha1';
export const DWM_KIND = 'DynamoWorkerMetadata';
export const DWM_PLURAL = 'dynamoworkermetadatas';
export const DEFAULT_ENDPOINT_SLICE_SELECTOR =
  'nvidia.com/dynamo-discovery-backend=kubernetes,nvidia.com/dynamo-discovery-enabled=true';

/** Which `spec.data` map holds the keys of each bucket. */
const BUCKET_MAPS = [
  ['v1/instances', 'endpoints'],
  ['v1/mdc', 'model_cards'],
  ['v1/event_channels', 'event_channels'],
] as const;

export interface KubernetesStoreOptions {
  /** API server URL; `inClusterConfig()` gives `https://$KUBERNETES_SERVICE_HOST:$KUBERNETES_SERVICE_PORT`. */
  baseUrl: string;
  /** Kubernetes namespace of the CRs and EndpointSlices (`POD_NAMESPACE`). */
  namespace: string;
  /** This pod's name (`POD_NAME`): names its CR and gives the instance id. */
  podName: string;
  /** This pod's UID (`POD_UID`): makes the pod own the CR. @default none (no ownerReference) */
  podUid?: string;
  /** Bearer token, or a function giving the current one (projected tokens rotate). @default none */
  token?: string | (() => string | Promise<string>);
  /** Expose a pod's entries only while an EndpointSlice lists it Ready. @default true */
  requireReady?: boolean;
  /** Label selector of the EndpointSlices consulted. @default DEFAULT_ENDPOINT_SLICE_SELECTOR */
  endpointSliceSelector?: string;
  /** Deadline of each non-watch request. @default 10000 */
  requestTimeoutMs?: number;
  /** Waits between watch reconnects, doubling from `minMs` to `maxMs`. @default { minMs: 100, maxMs: 5000 } */
  backoff?: { minMs: number; maxMs: number };
  /** Carries the API server's CA: see docs/discovery.md. @default globalThis.fetch */
  fetch?: typeof fetch;
  /** @default none */
  logger?: Logger;
}

/** The API server refused a request (`status` is its HTTP status) or could not be reached. */
export class KubernetesApiError extends KvStoreError {
  readonly status: number | undefined;
  constructor(message: string, options: { cause?: unknown; status?: number } = {}) {
    super(message, options);
    this.status = options.status;
  }
}

export const SERVICE_ACCOUNT_DIR = '/var/run/secrets/kubernetes.io/serviceaccount';

export interface InClusterConfig {
  baseUrl: string;
  namespace: string;
  podName: string;
  podUid?: string;
  /** Re-reads the service-account token file on every call. */
  token: () => Promise<string>;
  /** The API server's CA bundle, to trust through `NODE_EXTRA_CA_CERTS` or `DENO_CERT`. */
  caFile: string;
}

/**
 * Options for a store inside a pod, from the service account and the environment the runtime
 * passes in (`KUBERNETES_SERVICE_HOST`/`_PORT`, `POD_NAME`, `POD_UID`, `POD_NAMESPACE`).
 */
export async function inClusterConfig(
  env: Readonly<Record<string, string | undefined>>,
  options: { serviceAccountDir?: string } = {},
): Promise<InClusterConfig> {
  const dir = options.serviceAccountDir ?? SERVICE_ACCOUNT_DIR;
  const host = env.KUBERNETES_SERVICE_HOST;
  const podName = env.POD_NAME;
  if (!host) throw new KubernetesApiError('KUBERNETES_SERVICE_HOST is not set: not in a pod?');
  if (!podName) throw new KubernetesApiError('POD_NAME is not set: the pod spec must pass it');
  const namespace = env.POD_NAMESPACE ??
    (await readFile(join(dir, 'namespace'), 'utf8').catch(() => 'default')).trim();
  const hostPart = host.includes(':') ? `[${host}]` : host;
  const config: InClusterConfig = {
    baseUrl: `https://${hostPart}:${env.KUBERNETES_SERVICE_PORT ?? '443'}`,
    namespace,
    podName,
    token: async () => (await readFile(join(dir, 'token'), 'utf8')).trim(),
    caFile: join(dir, 'ca.crt'),
  };
  if (env.POD_UID) config.podUid = env.POD_UID;
  return config;
}

/** FNV-1a 64 of the UTF-8 name, cut to 53 bits, as lower-case hex. */
export function podInstanceId(podName: string): string {
  let hash = 0xcbf29ce484222325n;
  for (const byte of new TextEncoder().encode(podName)) {
    hash = ((hash ^ BigInt(byte)) * 0x100000001b3n) & 0xffffffffffffffffn;
  }
  const id = hash & 0x1fffffffffffffn;
  return (id === 0n ? 1n : id).toString(16);
}

type Json = Record<string, unknown>;
const isObject = (v: unknown): v is Json =>
  typeof v === 'object' && v !== null && !Array.isArray(v);
const field = (v: unknown, name: string): unknown => (isObject(v) ? v[name] : undefined);
const nameOf = (o: unknown) => String(field(field(o, 'metadata'), 'name') ?? '');

/** The pod a CR belongs to: its Pod owner, else its own name. */
function podOf(cr: unknown): string {
  const owners = field(field(cr, 'metadata'), 'ownerReferences');
  if (Array.isArray(owners)) {
    const pod = owners.find((o) => field(o, 'kind') === 'Pod');
    if (typeof field(pod, 'name') === 'string') return field(pod, 'name') as string;
  }
  return nameOf(cr);
}

function readyPods(slices: Iterable<unknown>): Set<string> {
  const ready = new Set<string>();
  for (const slice of slices) {
    const endpoints = field(slice, 'endpoints');
    if (!Array.isArray(endpoints)) continue;
    for (const endpoint of endpoints) {
      if (field(field(endpoint, 'conditions'), 'ready') !== true) continue;
      const target = field(endpoint, 'targetRef');
      if (field(target, 'kind') === 'Pod' && typeof field(target, 'name') === 'string') {
        ready.add(field(target, 'name') as string);
      }
    }
  }
  return ready;
}

/** The entries of CRs (of Ready pods, when `ready` is given) under `prefix`, sorted by key. */
function entriesOf(crs: Iterable<unknown>, ready: Set<string> | undefined, prefix: string) {
  const out = new Map<string, string>();
  for (const cr of crs) {
    if (ready && !ready.has(podOf(cr))) continue;
    const data = field(field(cr, 'spec'), 'data');
    for (const [bucket, map] of BUCKET_MAPS) {
      const values = field(data, map);
      if (!isObject(values)) continue;
      for (const [rest, value] of Object.entries(values)) {
        const key = `${bucket}/${rest}`;
        if (matchesPrefix(key, prefix)) out.set(key, stringifyExactJson(value));
      }
    }
  }
  return new Map([...out].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}

function mapOf(key: string): { map: string; rest: string } {
  for (const [bucket, map] of BUCKET_MAPS) {
    if (key.startsWith(`${bucket}/`) && key.length > bucket.length + 1) {
      return { map, rest: key.slice(bucket.length + 1) };
    }
  }
  throw new KubernetesApiError(
    `Key "${key}" is in no bucket the kubernetes backend stores (${
      BUCKET_MAPS.map(([b]) => b).join(', ')
    })`,
  );
}

export function createKubernetesStore(options: KubernetesStoreOptions): Promise<KvStore> {
  const base = options.baseUrl.replace(/\/+$/, '');
  const ns = encodeURIComponent(options.namespace);
  const crPath = `/apis/${DWM_GROUP_VERSION}/namespaces/${ns}/${DWM_PLURAL}`;
  const ownCrPath = `${crPath}/${encodeURIComponent(options.podName)}`;
  const slicePath = `/apis/discovery.k8s.io/v1/namespaces/${ns}/endpointslices?labelSelector=${
    encodeURIComponent(options.endpointSliceSelector ?? DEFAULT_ENDPOINT_SLICE_SELECTOR)
  }`;
  const requireReady = options.requireReady ?? true;
  const requestTimeoutMs = options.requestTimeoutMs ?? 10_000;
  const { minMs, maxMs } = options.backoff ?? { minMs: 100, maxMs: 5000 };
  const doFetch = options.fetch ?? fetch;
  const logger = options.logger;
  const instanceId = podInstanceId(options.podName);
  const closed = new AbortController();
  /** This pod's entries: key -> parsed JSON value. */
  const owned = new Map<string, unknown>();

  async function request(
    method: string,
    path: string,
    init: { body?: string; contentType?: string; signal?: AbortSignal } = {},
  ): Promise<Response> {
    const headers: Record<string, string> = { accept: 'application/json' };
    const token = typeof options.token === 'function' ? await options.token() : options.token;
    if (token) headers.authorization = `Bearer ${token}`;
    if (init.contentType) headers['content-type'] = init.contentType;
    try {
      return await doFetch(`${base}${path}`, {
        method,
        headers,
        body: init.body,
        signal: init.signal ?? AbortSignal.timeout(requestTimeoutMs),
      });
    } catch (cause) {
      if (init.signal?.aborted) throw cause;
      throw new KubernetesApiError(`Cannot reach the Kubernetes API at "${base}"`, { cause });
    }
  }

  async function call(
    method: string,
    path: string,
    init: { body?: string; contentType?: string; allow404?: boolean } = {},
  ): Promise<unknown> {
    const response = await request(method, path, init);
    const text = await response.text();
    if (response.status === 404 && init.allow404) return undefined;
    if (!response.ok) {
      let message = text.slice(0, 200);
      try {
        message = String(field(JSON.parse(text), 'message') ?? message);
      } catch {
        // not a Status object
      }
      throw new KubernetesApiError(`Kubernetes refused ${method} ${path}: ${message}`, {
        status: response.status,
      });
    }
    return text === '' ? undefined : parseExactJson(text);
  }

  const items = (list: unknown): unknown[] => {
    const found = field(list, 'items');
    return Array.isArray(found) ? found : [];
  };

  async function snapshot(prefix: string, readiness = requireReady): Promise<Map<string, string>> {
    const [crs, slices] = await Promise.all([
      call('GET', crPath),
      readiness ? call('GET', slicePath) : Promise.resolve(undefined),
    ]);
    return entriesOf(items(crs), readiness ? readyPods(items(slices)) : undefined, prefix);
  }

  function crBody(): string {
    const data: Record<string, Record<string, unknown>> = {};
    for (const [, map] of BUCKET_MAPS) data[map] = {};
    for (const [key, value] of owned) {
      const { map, rest } = mapOf(key);
      (data[map] as Record<string, unknown>)[rest] = value;
    }
    const metadata: Json = { name: options.podName, namespace: options.namespace };
    if (options.podUid) {
      metadata.ownerReferences = [{
        apiVersion: 'v1',
        kind: 'Pod',
        name: options.podName,
        uid: options.podUid,
        controller: false,
        blockOwnerDeletion: false,
      }];
    }
    return stringifyExactJson({
      apiVersion: DWM_GROUP_VERSION,
      kind: DWM_KIND,
      metadata,
      spec: { data },
    });
  }

  /** Server-side apply of the whole CR: creates it or replaces the fields this store owns. */
  /** Set once this store applied its CR: a reader (a frontend) never writes, nor deletes one. */
  let wrote = false;
  const apply = () => {
    wrote = true;
    return call('PATCH', `${ownCrPath}?fieldManager=switchboard&force=true`, {
      body: crBody(),
      contentType: 'application/apply-patch+yaml',
    });
  };

  let lock: Promise<unknown> = Promise.resolve();
  function exclusive<T>(fn: () => Promise<T>): Promise<T> {
    if (closed.signal.aborted) return Promise.reject(new KubernetesApiError('The store is closed'));
    const run = lock.then(fn);
    lock = run.catch(() => {});
    return run;
  }

  /** Sets (or with `undefined` removes) an own entry and applies; undoes it if applying fails. */
  async function change(key: string, value: unknown): Promise<void> {
    const had = owned.has(key);
    const before = owned.get(key);
    if (value === undefined) owned.delete(key);
    else owned.set(key, value);
    try {
      await apply();
    } catch (error) {
      if (had) owned.set(key, before);
      else owned.delete(key);
      throw error;
    }
  }

  function parseValue(key: string, value: string): unknown {
    mapOf(key);
    let parsed: unknown;
    try {
      parsed = parseExactJson(value);
    } catch (cause) {
      throw new KubernetesApiError(`The value of "${key}" is not JSON`, { cause });
    }
    if (!isObject(parsed)) {
      throw new KubernetesApiError(`The value of "${key}" must be a JSON object`);
    }
    return parsed;
  }

  /** Keeps `store` equal to the objects at `path` (list, then watch); calls `onChange` after. */
  async function reflect(
    path: string,
    store: Map<string, unknown>,
    onChange: () => void,
    stop: AbortSignal,
  ): Promise<void> {
    const backoff = createBackoff(minMs, maxMs);
    let version: string | undefined;
    while (!stop.aborted) {
      try {
        if (version === undefined) {
          const list = await call('GET', path);
          store.clear();
          for (const item of items(list)) store.set(nameOf(item), item);
          version = String(field(field(list, 'metadata'), 'resourceVersion') ?? '');
          onChange();
        }
        const sep = path.includes('?') ? '&' : '?';
        const response = await request(
          'GET',
          `${path}${sep}watch=1&allowWatchBookmarks=true&resourceVersion=${version}`,
          { signal: stop },
        );
        if (response.status === 410) {
          await response.body?.cancel();
          version = undefined;
          continue;
        }
        if (!response.ok || !response.body) {
          await response.body?.cancel();
          throw new KubernetesApiError(`Kubernetes refused a watch of ${path}`, {
            status: response.status,
          });
        }
        await readLines(response.body, (line) => {
          const event = parseExactJson(line);
          const type = field(event, 'type');
          const object = field(event, 'object');
          if (type === 'ERROR') {
            if (field(object, 'code') === 410) {
              version = undefined; // too old: list again
              return 'stop';
            }
            throw new KubernetesApiError(`Watch of ${path} failed: ${field(object, 'message')}`);
          }
          const seen = field(field(object, 'metadata'), 'resourceVersion');
          if (typeof seen === 'string') version = seen;
          backoff.reset();
          if (type === 'BOOKMARK') return;
          if (type === 'DELETED') store.delete(nameOf(object));
          else store.set(nameOf(object), object);
          onChange();
        });
      } catch (error) {
        if (stop.aborted) break;
        logger?.warn('Kubernetes watch failed; retrying', { path, error });
      }
      await delay(backoff.next(), stop);
    }
  }

  async function produce(prefix: string, channel: Channel<KvWatchEvent>, stop: AbortSignal) {
    const crs = new Map<string, unknown>();
    const slices = new Map<string, unknown>();
    const synced = { crs: false, slices: !requireReady };
    let emitted: Map<string, string> | undefined;
    const publish = () => {
      if (!synced.crs || !synced.slices) return;
      const next = entriesOf(
        crs.values(),
        requireReady ? readyPods(slices.values()) : undefined,
        prefix,
      );
      if (emitted === undefined) {
        channel.push({
          kind: 'snapshot',
          entries: [...next].map(([key, value]) => ({ key, value })),
        });
      } else {
        for (const key of emitted.keys()) {
          if (!next.has(key)) channel.push({ kind: 'delete', key });
        }
        for (const [key, value] of next) {
          if (emitted.get(key) !== value) channel.push({ kind: 'put', key, value });
        }
      }
      emitted = next;
    };
    const reflectors = [reflect(crPath, crs, () => {
      synced.crs = true;
      publish();
    }, stop)];
    if (requireReady) {
      reflectors.push(reflect(slicePath, slices, () => {
        synced.slices = true;
        publish();
      }, stop));
    }
    await Promise.all(reflectors);
  }

  return Promise.resolve({
    instanceId,

    async create(key, value) {
      const parsed = parseValue(key, value);
      return await exclusive(async () => {
        if (owned.has(key)) return false;
        // Create-if-absent across the cluster: any pod's CR holding the key, Ready or not.
        if ((await snapshot(key, false)).has(key)) return false;
        await change(key, parsed);
        return true;
      });
    },

    async put(key, value) {
      const parsed = parseValue(key, value);
      return await exclusive(() => change(key, parsed));
    },

    async delete(key) {
      const { map, rest } = mapOf(key);
      return await exclusive(async () => {
        if (owned.has(key)) return await change(key, undefined);
        // Another pod's entry: remove it from that pod's CR with a JSON merge patch.
        for (const cr of items(await call('GET', crPath))) {
          const values = field(field(field(cr, 'spec'), 'data'), map);
          if (!isObject(values) || !(rest in values)) continue;
          await call('PATCH', `${crPath}/${encodeURIComponent(nameOf(cr))}`, {
            body: JSON.stringify({ spec: { data: { [map]: { [rest]: null } } } }),
            contentType: 'application/merge-patch+json',
            allow404: true,
          });
        }
      });
    },

    async list(prefix) {
      return [...await snapshot(prefix)].map(([key, value]): KvEntry => ({ key, value }));
    },

    watch(prefix, signal) {
      return streamFrom<KvWatchEvent>(
        AbortSignal.any([signal, closed.signal]),
        (channel, stop) => produce(prefix, channel, stop),
      );
    },

    async close() {
      if (closed.signal.aborted) return;
      await lock;
      closed.abort();
      owned.clear();
      if (!wrote) return;
      try {
        await call('DELETE', ownCrPath, { allow404: true });
      } catch (error) {
        logger?.warn("Could not delete this pod's DynamoWorkerMetadata", { error });
      }
    },
  });
}
