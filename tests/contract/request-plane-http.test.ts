import { createHttpPlaneClient, createHttpPlaneServer } from '../../src/adapters/plane/http.ts';
import { planeFetch } from '../../src/runtime/http-fetch-node.ts';
import { createNodeNetwork } from '../../src/runtime/net.ts';
import { serve } from '../../src/runtime/serve.ts';
import { requestPlaneContract } from './request-plane.contract.ts';

requestPlaneContract('http', ({ maxInFlight }) =>
  Promise.resolve({
    client: createHttpPlaneClient({ fetch: planeFetch() }),
    server: createHttpPlaneServer({ serve, maxInFlight }),
    async deadAddress() {
      const listener = await createNodeNetwork().listen('127.0.0.1', 0, (c) => c.close());
      await listener.close();
      return { http: `http://127.0.0.1:${listener.port}/v1/rpc/generate` };
    },
    unknownEndpoint: (address) => ({ http: ('http' in address ? address.http : '') + '-missing' }),
  }));
