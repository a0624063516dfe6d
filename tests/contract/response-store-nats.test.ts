import { jetstreamManager } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import { createNatsResponseStore } from '../../src/adapters/responses-store-nats.ts';
import type { ResponseStore } from '../../src/core/responses/store.ts';
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
