/**
 * The response stream, shared by every transport: the worker side runs a handler and writes its
 * prologue, items and completion marker (`pumpResponses`); the frontend side reads them back into
 * an async iterable (`openResponseStream`). Transports only move the frames.
 */
import { errorMessage, raceAbort } from './async.ts';
import { PlaneError, STREAM_ENDED_EARLY } from '../../../core/plane/errors.ts';
import {
  encodeComplete,
  encodeItem,
  encodePrologue,
  errorItem,
  parseResponseFrame,
} from './messages.ts';
import type { TwoPartMessage } from './two-part.ts';
import type { EndpointHandler } from '../../../core/plane/types.ts';

export interface PumpOptions {
  id: string;
  headers: Readonly<Record<string, string>>;
  /** Its signal is the handler's `context.signal`; the pump aborts it when `send` fails. */
  controller: AbortController;
  /**
   * Writes one frame; resolves once it is handed to the transport (back-pressure). Returning
   * nothing means the frame was taken at once (saves a promise per frame).
   */
  send(frame: Uint8Array): Promise<void> | void;
  /** How the frames are spelled. @default TwoPart frames (`encodePrologue`, `encodeItem`, `encodeComplete`) */
  encoding?: ResponseEncoding;
}

/** The three frames a worker writes, in a transport's own framing. */
export interface ResponseEncoding {
  prologue(error: string | null): Uint8Array;
  item(data: unknown): Uint8Array;
  complete(): Uint8Array;
}

const TWO_PART: ResponseEncoding = {
  prologue: encodePrologue,
  item: encodeItem,
  complete: encodeComplete,
};

/**
 * `completed`: items and the completion marker were sent. `failed`: the handler threw before its
 * first item and the error prologue was sent. `aborted`: the signal aborted (or a send failed)
 * and the stream was left without its completion marker.
 */
export type PumpOutcome = 'completed' | 'failed' | 'aborted';

/**
 * Runs `handler` and writes: the prologue once the first item is ready (`{"error":null}`, or the
 * error if the handler threw before it), each item, and `{"complete_final":true}`. A handler that
 * throws mid-stream produces one error item, then the completion marker.
 */
export async function pumpResponses(
  handler: EndpointHandler,
  body: unknown,
  options: PumpOptions,
): Promise<PumpOutcome> {
  const { controller } = options;
  const signal = controller.signal;
  const encode = options.encoding ?? TWO_PART;
  let iterator: AsyncIterator<unknown> | undefined;

  const lost = (): false => {
    controller.abort(new DOMException('Connection to the frontend was lost', 'AbortError'));
    return false;
  };
  /** Whether the frame went out: a boolean when the transport took it at once. */
  const send = (frame: Uint8Array): boolean | Promise<boolean> => {
    if (signal.aborted) return false;
    let pending;
    try {
      pending = options.send(frame);
    } catch {
      return lost();
    }
    return pending ? pending.then(() => true, lost) : true;
  };
  const abandon = (): 'aborted' => {
    try {
      iterator?.return?.()?.catch(() => {});
    } catch {
      // A broken iterator's return() may throw; there is nothing left to clean up.
    }
    return 'aborted';
  };

  // One abort listener for the whole stream: it rejects whichever `next()` is pending.
  let rejectPending: ((reason: unknown) => void) | undefined;
  const onAbort = () => rejectPending?.(signal.reason);
  signal.addEventListener('abort', onAbort, { once: true });
  const next = (it: AsyncIterator<unknown>): Promise<IteratorResult<unknown>> => {
    if (signal.aborted) return Promise.reject(signal.reason);
    return new Promise((resolve, reject) => {
      rejectPending = reject;
      it.next().then(resolve, reject);
    });
  };
  try {
    return await pump();
  } finally {
    signal.removeEventListener('abort', onAbort);
  }

  async function pump(): Promise<PumpOutcome> {
    let result: IteratorResult<unknown>;
    try {
      const context = { id: options.id, headers: options.headers, signal };
      iterator = handler(body, context)[Symbol.asyncIterator]();
      result = await next(iterator);
    } catch (error) {
      if (signal.aborted) return abandon();
      return (await send(encode.prologue(errorMessage(error)))) ? 'failed' : 'aborted';
    }
    if (!(await send(encode.prologue(null)))) return abandon();
    while (!result.done) {
      const sent = send(encode.item(result.value));
      if (sent !== true && !(await sent)) return abandon();
      try {
        result = await next(iterator);
      } catch (error) {
        if (signal.aborted) return abandon();
        if (!(await send(encode.item(errorItem(errorMessage(error)))))) return 'aborted';
        break;
      }
    }
    return (await send(encode.complete())) ? 'completed' : abandon();
  }
}

export interface ResponseStreamOptions {
  signal: AbortSignal;
  /**
   * Tells the worker to stop, at most once and before `release`: `kill` when `signal` aborted,
   * `stop` when the consumer ended iteration early.
   */
  cancel(how: 'stop' | 'kill'): void;
  /** Frees the transport's resources; called exactly once, whatever ended the stream. */
  release(): void;
  /**
   * `frames` ends by itself once `release()` ran, so a pending `frames.next()` needs no race
   * against `signal` (saves a promise and an abort listener per frame). @default false
   */
  framesEndOnRelease?: boolean;
}

function streamError(error: unknown): PlaneError {
  return error instanceof PlaneError
    ? error
    : new PlaneError('disconnected', STREAM_ENDED_EARLY, { cause: error });
}

/**
 * Reads the prologue from `frames` (skipping a handshake) and resolves with the items that follow:
 * rejects with `PlaneError` of kind `worker` when the prologue carries an error, with `signal`'s
 * reason when it aborts first. The iterable ends at the completion marker and throws `PlaneError`
 * of kind `disconnected` when the frames end without it.
 */
export async function openResponseStream(
  frames: AsyncIterator<TwoPartMessage>,
  options: ResponseStreamOptions,
): Promise<AsyncIterable<unknown>> {
  const { signal } = options;
  const raceFrames = !options.framesEndOnRelease;
  let over = false;
  const finish = (how?: 'stop' | 'kill') => {
    if (over) return;
    over = true;
    signal.removeEventListener('abort', onAbort);
    try {
      if (how) options.cancel(how);
    } finally {
      options.release();
    }
  };
  const onAbort = () => finish('kill');
  signal.addEventListener('abort', onAbort, { once: true });

  /** The next meaningful frame; `undefined` at the completion marker. */
  const next = async (): Promise<{ data: unknown } | { prologue: string | null } | undefined> => {
    while (true) {
      let result: IteratorResult<TwoPartMessage>;
      try {
        result = await (raceFrames ? raceAbort(frames.next(), signal) : frames.next());
      } catch (error) {
        if (signal.aborted) {
          finish('kill');
          throw signal.reason;
        }
        finish();
        throw streamError(error);
      }
      if (result.done) {
        if (signal.aborted) {
          finish('kill');
          throw signal.reason;
        }
        finish();
        throw new PlaneError('disconnected', STREAM_ENDED_EARLY);
      }
      let frame;
      try {
        frame = parseResponseFrame(result.value);
      } catch (error) {
        finish('kill');
        throw error;
      }
      switch (frame.kind) {
        case 'item':
          return { data: frame.data };
        case 'prologue':
          return { prologue: frame.error };
        case 'complete':
          finish();
          return undefined;
        case 'handshake':
        case 'control':
          continue;
      }
    }
  };

  const first = await next();
  if (first === undefined || !('prologue' in first)) {
    finish('kill');
    throw new PlaneError('protocol', 'Response stream did not start with a prologue');
  }
  if (first.prologue !== null) {
    finish();
    throw new PlaneError('worker', first.prologue);
  }

  let done = false;
  const iterator: AsyncIterator<unknown> = {
    async next(): Promise<IteratorResult<unknown>> {
      if (done) return { done: true, value: undefined };
      if (signal.aborted) {
        finish('kill');
        throw signal.reason;
      }
      let item;
      try {
        item = await next();
      } catch (error) {
        done = true;
        throw error;
      }
      if (item === undefined) {
        done = true;
        return { done: true, value: undefined };
      }
      if ('prologue' in item) {
        done = true;
        finish('kill');
        throw new PlaneError('protocol', 'Response stream sent a second prologue');
      }
      return { done: false, value: item.data };
    },
    return(): Promise<IteratorResult<unknown>> {
      done = true;
      finish('stop');
      return Promise.resolve({ done: true, value: undefined });
    },
  };
  return { [Symbol.asyncIterator]: () => iterator };
}
