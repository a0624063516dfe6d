import { createTcpPlaneClient, createTcpPlaneServer } from '../../src/adapters/plane/tcp.ts';
import { createNodeNetwork } from '../../src/runtime/net.ts';
import { requestPlaneContract } from './request-plane.contract.ts';

requestPlaneContract('tcp', ({ maxInFlight }) => {
  const network = createNodeNetwork();
  return Promise.resolve({
    client: createTcpPlaneClient({ network }),
    server: createTcpPlaneServer({ network, maxInFlight }),
    async deadAddress() {
      const listener = await network.listen('127.0.0.1', 0, (connection) => connection.close());
      await listener.close();
      return { tcp: `127.0.0.1:${listener.port}/1/generate` };
    },
    unknownEndpoint: (address) => ({ tcp: ('tcp' in address ? address.tcp : '') + '-missing' }),
  });
});
