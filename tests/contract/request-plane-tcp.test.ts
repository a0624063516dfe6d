import { createTcpPlaneClient, createTcpPlaneServer } from '../../src/adapters/plane/tcp.ts';
import type { TransportAddress } from '../../src/core/discovery/types.ts';
import { createNodeNetwork } from '../../src/runtime/net.ts';
import { requestPlaneContract } from './request-plane.contract.ts';

/** The address with its endpoint renamed (before the `?response_transports=` query). */
function unknownEndpoint(address: TransportAddress): TransportAddress {
  const tcp = 'tcp' in address ? address.tcp : '';
  const query = tcp.indexOf('?');
  return query < 0
    ? { tcp: `${tcp}-missing` }
    : { tcp: `${tcp.slice(0, query)}-missing${tcp.slice(query)}` };
}

// Both response transports pass the same contract: the classic call-home (a socket per request)
// and the response mux (streams share persistent connections).
for (const [name, responseMux] of [['tcp', false], ['tcp-mux', true]] as const) {
  requestPlaneContract(name, ({ maxInFlight }) => {
    const network = createNodeNetwork();
    return Promise.resolve({
      client: createTcpPlaneClient({ network, responseMux }),
      server: createTcpPlaneServer({ network, maxInFlight, responseMux }),
      async deadAddress() {
        const listener = await network.listen('127.0.0.1', 0, (connection) => connection.close());
        await listener.close();
        const query = responseMux ? '?response_transports=tcp_server,tcp_response_mux_v1' : '';
        return { tcp: `127.0.0.1:${listener.port}/1/generate${query}` };
      },
      unknownEndpoint,
    });
  });
}
