import { createMemResponseStore, type ResponseStore } from '../../src/core/api/responses/store.ts';
import { responseStoreContract } from './response-store.contract.ts';

responseStoreContract('mem', () => {
  const stores = new Map<string, ResponseStore>();
  return Promise.resolve({
    open({ shared, maxBytes }) {
      let store = stores.get(shared);
      if (!store) {
        store = createMemResponseStore({ ttlMs: 60_000, maxBytes });
        stores.set(shared, store);
      }
      return Promise.resolve(store);
    },
    async close() {
      await Promise.all([...stores.values()].map((s) => s.close()));
    },
  });
});
