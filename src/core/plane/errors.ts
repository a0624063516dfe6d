/** Request-plane failures. `migratable` ones may be retried on another instance. */

export type PlaneErrorKind =
  | 'cannot_connect' // no connection, no responders, no ACK in time
  | 'disconnected' // the stream ended without its completion marker
  | 'overloaded' // the worker refused: "Server overloaded: ..."
  | 'worker' // the worker's handler failed before its first item
  | 'rejected' // an OpenAI-compatible engine answered with an HTTP error (see `status`)
  | 'protocol'; // malformed frames

export class PlaneError extends Error {
  readonly kind: PlaneErrorKind;
  /** The engine's HTTP status, for `rejected`. */
  readonly status?: number;
  constructor(
    kind: PlaneErrorKind,
    message: string,
    options: { cause?: unknown; status?: number } = {},
  ) {
    super(message, options);
    this.name = 'PlaneError';
    this.kind = kind;
    if (options.status !== undefined) this.status = options.status;
  }
  get migratable(): boolean {
    return this.kind === 'cannot_connect' || this.kind === 'disconnected';
  }
}

export const STREAM_ENDED_EARLY = 'Stream ended before generation completed';
