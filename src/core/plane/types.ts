/**
 * The request plane: how the frontend sends one request to one worker instance and reads its
 * stream of responses. Transports (tcp, http, nats) implement both sides; all of them pass one
 * contract suite. Payloads are JSON values: `PreprocessedRequest` in, `Annotated<LLMEngineOutput>`
 * out for LLM workers, but the plane does not look inside them.
 */
import type { EndpointId, TransportAddress } from '../discovery/types.ts';

export interface PlaneRequest {
  /** Request (context) id; the worker sees the same id. */
  id: string;
  /** Propagated headers (`x-request-id`, `traceparent`, ...). */
  headers: Readonly<Record<string, string>>;
  body: unknown;
}

export interface PlaneSendOptions {
  /** Aborting it cancels the request: the worker's handler sees its own signal abort. */
  signal: AbortSignal;
}

export interface RequestPlaneClient {
  /**
   * Sends `request` to the instance at `address`. Resolves once the worker accepted it and its
   * handler started (rejects with `PlaneError` otherwise: cannot connect, overloaded, or the
   * handler failed before producing anything). Iterating the result yields every response item in
   * order and finishes when the worker completes; if the stream ends without its completion marker
   * iteration throws `PlaneError` of kind `disconnected`.
   */
  send(
    address: TransportAddress,
    request: PlaneRequest,
    options: PlaneSendOptions,
  ): Promise<AsyncIterable<unknown>>;
  close(): Promise<void>;
}

export interface HandlerContext {
  id: string;
  headers: Readonly<Record<string, string>>;
  /** Aborts when the frontend cancels (stop/kill) or its connection goes away. */
  signal: AbortSignal;
}

/**
 * A worker endpoint. Throwing before the first item fails `send()` on the frontend with the error
 * message; throwing later ends the stream with an error item `{event:'error', comment:[message]}`
 * followed by normal completion.
 */
export type EndpointHandler = (body: unknown, context: HandlerContext) => AsyncIterable<unknown>;

export interface RequestPlaneServer {
  /** Starts serving `endpoint` for this process; returns the address to publish in discovery. */
  serve(
    endpoint: EndpointId,
    instanceId: string,
    handler: EndpointHandler,
  ): Promise<TransportAddress>;
  /**
   * Stops taking requests and waits for the running ones: a request that arrives from now on is
   * refused as "Server unavailable: ..." (the client's `send()` rejects with kind
   * `cannot_connect`, so the frontend tries another instance), while streams already accepted
   * run to their end. Resolves once no handler is running. `close()` may follow at any time.
   */
  drain(): Promise<void>;
  /** Stops accepting requests; in-flight handlers are aborted. */
  close(): Promise<void>;
}
