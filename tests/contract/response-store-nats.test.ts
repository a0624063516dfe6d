import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { jetstreamManager } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import { createNatsResponseStore } from '../../src/adapters/responses-store-nats.ts';
import type { ResponseStore } from '../../src/core/api/responses/store.ts';
import { responseStoreContract } from './response-store.contract.ts';

/** The nats-server of scripts/services.sh (TCP, JetStream enabled). */
const servers = 'nats://127.0.0.1:4222';

responseStoreContract('nats', () => {
  const stores: ResponseStore[] = [];
  const buckets = new Set<string>();
  return Promise.resolve({
    async open({ shared, maxBytes }) {
      const bucket = `switchboard_contract_${shared}`;
      buckets.add(bucket);
      const store = await createNatsResponseStore({ servers, bucket, ttlMs: 60_000, maxBytes });
      stores.push(store);
      return store;
    },
    async close() {
      await Promise.all(stores.map((s) => s.close()));
      const nc = await connect({ servers });
      const jsm = await jetstreamManager(nc);
      for (const bucket of buckets) await jsm.streams.delete(`KV_${bucket}`).catch(() => false);
      await nc.close();
    },
  });
});

describe('createNatsResponseStore() bucket limits', () => {
  test('the bucket keeps records for the TTL, within the byte cap, discarding the oldest', async () => {
    const bucket = `switchboard_limits_${crypto.randomUUID().replaceAll('-', '').slice(0, 12)}`;
    const nc = await connect({ servers });
    const jsm = await jetstreamManager(nc);
    try {
      const first = await createNatsResponseStore({
        servers,
        bucket,
        ttlMs: 60_000,
        maxBytes: 1 << 20,
      });
      let { config } = await jsm.streams.info(`KV_${bucket}`);
      assert.equal(config.max_age, 60_000 * 1_000_000, 'max_age is the TTL in nanoseconds');
      assert.equal(config.max_bytes, 1 << 20);
      assert.equal(config.discard, 'old');
      // A replica started later with other flags: the bucket follows them.
      const second = await createNatsResponseStore({
        servers,
        bucket,
        ttlMs: 120_000,
        maxBytes: 2 << 20,
      });
      ({ config } = await jsm.streams.info(`KV_${bucket}`));
      assert.equal(config.max_age, 120_000 * 1_000_000);
      assert.equal(config.max_bytes, 2 << 20);
      await Promise.all([first.close(), second.close()]);
    } finally {
      await jsm.streams.delete(`KV_${bucket}`).catch(() => false);
      await nc.close();
    }
  });

  test('an unreachable NATS is reported with the address and the way out', async () => {
    await assert.rejects(
      createNatsResponseStore({
        servers: 'nats://127.0.0.1:1',
        bucket: 'unused',
        ttlMs: 1000,
        maxBytes: 1024,
      }),
      /--responses-store nats: cannot reach NATS at nats:\/\/127\.0\.0\.1:1 \(set NATS_SERVER, or use --responses-store mem\)/,
    );
  });
});
