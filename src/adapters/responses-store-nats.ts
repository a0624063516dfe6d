/**
 * `--responses-store nats`: stored responses in a NATS JetStream key-value bucket, so every
 * frontend replica connected to the same NATS sees the responses any of them stored (a client
 * can continue with `previous_response_id` on whichever replica its next request lands).
 *
 * One key per response id, the record as JSON. The bucket's stream keeps each key `ttlMs`
 * (`max_age`) and at most `maxBytes` in all, discarding the oldest records when full (the bucket
 * is created, or updated, with discard policy `old`: a full store must not refuse new responses).
 * A record larger than the server's `max_payload` (1 MiB by default) is not stored; the frontend
 * logs it and a later retrieval answers 404.
 *
 * NATS over TCP (`@nats-io/transport-node`), which works on Node, Bun and Deno.
 */
import { jetstreamManager } from '@nats-io/jetstream';
import { Kvm } from '@nats-io/kv';
import type { NatsConnection } from '@nats-io/nats-core';
import { connect } from '@nats-io/transport-node';
import type { ResponseStore, StoredResponse } from '../core/api/responses/store.ts';

export interface NatsResponseStoreOptions {
  /** `nats://host:port` URL(s) (`NATS_SERVER`). @default 'nats://127.0.0.1:4222' */
  servers?: string | string[];
  /** Bucket name. @default 'switchboard_responses' */
  bucket?: string;
  /** How long a record lives. */
  ttlMs: number;
  /** The most bytes the bucket holds. */
  maxBytes: number;
  /** Connection name shown by the server. @default 'switchboard-responses' */
  name?: string;
}

/** Response ids this server makes (`resp_<hex>`) are valid keys; anything else is never stored. */
const KEY = /^[-/_=.a-zA-Z0-9]+$/;

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** `nats://127.0.0.1:4222`, and `NATS_SERVER`'s `host:port` / `tls://` forms. */
export function natsTcpServers(value: string | undefined): string[] {
  const list = (value ?? '').split(',').map((s) => s.trim()).filter(Boolean);
  return list.length > 0 ? list : ['nats://127.0.0.1:4222'];
}

export async function createNatsResponseStore(
  options: NatsResponseStoreOptions,
): Promise<ResponseStore> {
  const bucket = options.bucket ?? 'switchboard_responses';
  const servers = options.servers ?? 'nats://127.0.0.1:4222';
  let nc: NatsConnection;
  try {
    nc = await connect({
      servers,
      name: options.name ?? 'switchboard-responses',
      maxReconnectAttempts: -1,
    });
  } catch (error) {
    throw new Error(
      `--responses-store nats: cannot reach NATS at ${[servers].flat().join(', ')} ` +
        '(set NATS_SERVER, or use --responses-store mem)',
      { cause: error },
    );
  }
  try {
    const kv = await new Kvm(nc).create(bucket, {
      history: 1,
      ttl: options.ttlMs,
      max_bytes: options.maxBytes,
    });
    // KV buckets refuse writes when full (discard `new`); a store of recent responses should
    // forget its oldest ones instead. The limits follow this frontend's flags.
    const jsm = await jetstreamManager(nc);
    const stream = `KV_${bucket}`;
    const { config } = await jsm.streams.info(stream);
    const maxAge = options.ttlMs * 1_000_000;
    if (
      config.discard !== 'old' || config.max_bytes !== options.maxBytes ||
      config.max_age !== maxAge
    ) {
      await jsm.streams.update(stream, {
        ...config,
        discard: 'old' as typeof config.discard,
        max_bytes: options.maxBytes,
        max_age: maxAge,
      });
    }
    return {
      kind: 'nats',
      async get(id) {
        if (!KEY.test(id)) return undefined;
        const entry = await kv.get(id);
        if (!entry || entry.operation !== 'PUT' || entry.value.length === 0) return undefined;
        return JSON.parse(decoder.decode(entry.value)) as StoredResponse;
      },
      async put(record) {
        const id = record.response.id;
        if (!KEY.test(id)) throw new Error(`response id "${id}" is not a valid key`);
        await kv.put(id, encoder.encode(JSON.stringify(record)));
      },
      async delete(id) {
        if (!KEY.test(id)) return false;
        const entry = await kv.get(id);
        if (!entry || entry.operation !== 'PUT') return false;
        await kv.purge(id);
        return true;
      },
      async close() {
        await nc.close();
      },
    };
  } catch (error) {
    await nc.close().catch(() => {});
    throw error;
  }
}
