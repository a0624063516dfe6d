/** The discovery contract on the in-process mem backend. */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { createMemKvServer, createMemStore } from '../../src/adapters/discovery/mem.ts';
import { discoveryContract, trackHandles } from './discovery.contract.ts';

discoveryContract('mem', () => {
  const server = createMemKvServer();
  const handles = trackHandles();
  return Promise.resolve({
    connect: () => Promise.resolve(handles.add(createMemStore({ server }))),
    close: () => handles.closeAll(),
  });
});

describe('mem store', () => {
  test('handles of different servers do not see each other', async () => {
    const [a, b] = [
      createMemStore({ server: createMemKvServer() }),
      createMemStore({
        server: createMemKvServer(),
      }),
    ];
    try {
      await a.put('v1/instances/ns/c/e/1', '{}');
      assert.deepEqual(await b.list('v1'), []);
    } finally {
      await a.close();
      await b.close();
    }
  });

  test('a closed handle refuses writes', async () => {
    const store = createMemStore({ server: createMemKvServer() });
    await store.close();
    await assert.rejects(store.put('v1/instances/ns/c/e/1', '{}'), { name: 'KvStoreError' });
    await store.close(); // closing twice is fine
  });
});
