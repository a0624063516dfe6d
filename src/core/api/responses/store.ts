/**
 * Stored responses (`store`, `previous_response_id`, `GET`/`DELETE /v1/responses/{id}`): the port
 * and its in-memory adapter. A record is the response as the client saw it, the input items of its
 * request (with ids, as `/input_items` lists them), and the conversation context that preceded its
 * output, so a later request can continue it with `previous_response_id`.
 *
 * `--responses-store mem` keeps records in this process; `--responses-store nats` keeps them in a
 * NATS JetStream key-value bucket that every frontend replica shares
 * (`src/adapters/responses-store-nats.ts`). Both expire records after a TTL and hold at most a
 * byte budget, dropping the oldest records first.
 */
import { NotImplementedError, ResponseNotFoundError } from '../../errors.ts';
import type { ResponseObject, ResponsesInputItem } from '../openai/schemas.ts';

/** One input item as `GET /v1/responses/{id}/input_items` lists it: always with an `id`. */
export type StoredInputItem = ResponsesInputItem & { id: string; type: string };

export interface StoredResponse {
  response: ResponseObject;
  /** The request's own input items, in order. */
  input_items: StoredInputItem[];
  /**
   * Everything the model saw before this response's output, as input items: the continued
   * response's context and output, then this request's input. Instructions are not part of it
   * (OpenAI does not carry them over to the next response).
   */
  context: ResponsesInputItem[];
}

export interface ResponseStore {
  /** `mem` or `nats`, for logs and docs. */
  readonly kind: string;
  get(id: string): Promise<StoredResponse | undefined>;
  put(record: StoredResponse): Promise<void>;
  /** Whether a record was there. */
  delete(id: string): Promise<boolean>;
  close(): Promise<void>;
}

/** The store, or the 501 of a frontend started with `--responses-store none`. */
export function requireStore(store: ResponseStore | undefined): ResponseStore {
  if (!store) throw new NotImplementedError('Responses are not stored: --responses-store none');
  return store;
}

/** A stored response, or the 404 (501 without a store) its routes answer. */
export async function storedResponse(
  store: ResponseStore | undefined,
  id: string,
): Promise<StoredResponse> {
  const record = await requireStore(store).get(id);
  if (!record) throw new ResponseNotFoundError(id);
  return record;
}

export interface MemResponseStoreOptions {
  /** How long a record lives after it was written. */
  ttlMs: number;
  /** The most bytes (of JSON) held; the oldest records go first. */
  maxBytes: number;
  /** Wall clock in ms. @default Date.now */
  now?: () => number;
}

const encoder = new TextEncoder();

/**
 * Records as JSON text in insertion order (a `Map` iterates oldest first), so what is stored
 * cannot change after `put()` and its size is known.
 */
export function createMemResponseStore(options: MemResponseStoreOptions): ResponseStore {
  const now = options.now ?? Date.now;
  const records = new Map<string, { json: string; bytes: number; expiresAt: number }>();
  let bytes = 0;

  const drop = (id: string) => {
    const record = records.get(id);
    if (!record) return false;
    records.delete(id);
    bytes -= record.bytes;
    return true;
  };

  const expire = () => {
    const t = now();
    for (const [id, record] of records) {
      // Insertion order is expiry order: every record has the same TTL.
      if (record.expiresAt > t) break;
      drop(id);
    }
  };

  return {
    kind: 'mem',
    get(id) {
      expire();
      const record = records.get(id);
      return Promise.resolve(record ? JSON.parse(record.json) as StoredResponse : undefined);
    },
    put(record) {
      expire();
      const id = record.response.id;
      const json = JSON.stringify(record);
      const size = encoder.encode(json).length;
      drop(id);
      records.set(id, { json, bytes: size, expiresAt: now() + options.ttlMs });
      bytes += size;
      for (const oldest of records.keys()) {
        if (bytes <= options.maxBytes) break;
        drop(oldest);
      }
      return Promise.resolve();
    },
    delete(id) {
      expire();
      return Promise.resolve(drop(id));
    },
    close() {
      records.clear();
      bytes = 0;
      return Promise.resolve();
    },
  };
}
