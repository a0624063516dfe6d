/**
 * Discovery, as Dynamo lays it out: a key-value store with one lease per process, the bucket
 * `v1/instances` for served endpoints and `v1/mdc` for model cards, keys
 * `{ns}/{component}/{endpoint}/{instance_id:hex}[/{suffix}]`, values JSON.
 *
 * Backends (mem, file, etcd, kubernetes) implement `KvStore`; everything above it (records,
 * queries, added/removed events) is shared code in `discovery.ts`.
 */

/** `namespace.component.endpoint`, as in `dyn://dynamo.backend.generate`. */
export interface EndpointId {
  namespace: string;
  component: string;
  endpoint: string;
}

/** Where an instance's endpoint listens, per request plane (`TransportType` in Dynamo). */
export type TransportAddress =
  | { tcp: string } // "host:port/{instance_id:x}/{endpoint}"
  | { http: string } // "http://host:port/v1/rpc/{endpoint}"
  | { nats_tcp: string } // "{ns}_{component}.{endpoint}-{instance_id:x}"
  /** Switchboard only: a plain OpenAI-compatible server (vLLM, SGLang, llama.cpp), its /v1 URL. */
  | { openai: string; api_key?: string };

export interface KvEntry {
  key: string;
  value: string;
}

export type KvWatchEvent =
  /** The complete current state under the prefix; replaces whatever the watcher knew. */
  | { kind: 'snapshot'; entries: KvEntry[] }
  | { kind: 'put'; key: string; value: string }
  | { kind: 'delete'; key: string };

/** The port every discovery backend implements. Keys are full paths: `v1/instances/...`. */
export interface KvStore {
  /** This process's instance id: lower-case hex of a u64 (etcd: the lease id). */
  readonly instanceId: string;
  /** Writes `key` owned by this process (its lease) unless it exists; false when it exists. */
  create(key: string, value: string): Promise<boolean>;
  /** Creates or replaces `key`, owned by this process. */
  put(key: string, value: string): Promise<void>;
  delete(key: string): Promise<void>;
  /** Every entry whose key starts with `prefix` at a path boundary. */
  list(prefix: string): Promise<KvEntry[]>;
  /**
   * A snapshot of `prefix`, then its changes, until `signal` aborts. Survives backend outages:
   * after reconnecting it resumes (or emits a fresh snapshot) without dropping live keys.
   */
  watch(prefix: string, signal: AbortSignal): AsyncIterable<KvWatchEvent>;
  /** Removes this process's keys (revokes the lease) and stops its background work. */
  close(): Promise<void>;
}

/** A discovery backend failed: the store is closed, or its server refused or was unreachable. */
export class KvStoreError extends Error {
  constructor(message: string, options: { cause?: unknown } = {}) {
    super(message, options);
    this.name = new.target.name;
  }
}
