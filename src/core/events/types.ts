/**
 * The event plane: fire-and-forget pub/sub for KV events and load metrics. NATS (and later ZMQ)
 * implement it; `mem` serves single-process setups and tests. Subjects follow Dynamo:
 * `namespace.{ns}.component.{c}.kv-events`, `namespace.{ns}.kv_metrics`.
 */

export interface EventEnvelope {
  topic: string;
  /** Publisher id: lower-case hex u64. */
  publisher_id: string;
  /** Monotonic per publisher, for gap detection. */
  sequence: number;
  published_at: number;
  payload: unknown;
}

export interface EventPlane {
  publish(subject: string, payload: unknown): Promise<void>;
  /** Calls `onEvent` for each event on `subject` until the returned function is called. */
  subscribe(subject: string, onEvent: (event: EventEnvelope) => void): () => void;
  /**
   * Like `subscribe`, but hands over each envelope as it came off the wire (UTF-8 JSON, u64s
   * exact) without decoding it, for consumers that decode off the main thread
   * (`--router-event-threads`). Planes whose wire form is not JSON leave it out.
   */
  subscribeRaw?(subject: string, onMessage: (message: Uint8Array | string) => void): () => void;
  close(): Promise<void>;
}
