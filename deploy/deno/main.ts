/**
 * Deno entry of the edge profile, for Deno Deploy or `deno serve` with only network and
 * environment permissions:
 *
 *   deno serve --allow-net --allow-env deploy/deno/main.ts
 *
 * Configuration comes from the environment (`DYN_*`, `ETCD_ENDPOINTS`, `SWITCHBOARD_*`). With
 * `NATS_WS_SERVER` set, precise KV routing follows the workers' KV events over a NATS WebSocket
 * (Deno keeps it open between requests); without it, use `DYN_ROUTER_USE_KV_EVENTS=false`.
 */
import { createNatsEventPlane } from '../../src/adapters/events/nats.ts';
import { createEdgeHandler } from '../../src/commands/edge.ts';

declare const Deno: {
  env: { toObject(): Record<string, string> };
  addSignalListener(signal: 'SIGTERM' | 'SIGINT', handler: () => void): void;
};

const env = Deno.env.toObject();
const natsWs = env.NATS_WS_SERVER;

const handler = createEdgeHandler({
  env,
  ...(natsWs
    ? {
      events: () =>
        createNatsEventPlane({
          servers: natsWs.split(',').map((s) => s.trim()).filter(Boolean),
          onError: (error) => console.error('event plane error', error),
        }),
    }
    : {}),
});

// `deno serve` drains on SIGTERM/SIGINT and exits once nothing is left running; the NATS
// WebSocket would keep it up for ever, so close it then. (Hosts without signals skip this.)
if (natsWs) {
  const close = () => void handler.close();
  try {
    Deno.addSignalListener('SIGTERM', close);
    Deno.addSignalListener('SIGINT', close);
  } catch {
    // No signals here (Deno Deploy): the host ends the isolate itself.
  }
}

export default { fetch: (request: Request) => handler.fetch(request) };
