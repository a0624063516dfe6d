/**
 * Opening a NATS connection the way operators configure one: `nats://` and `tls://` URLs (a stock
 * `nats-server`, port 4222) over TCP through `@nats-io/transport-node`, which runs on Node, Bun and
 * Deno and sets TCP no-delay; `ws://` and `wss://` URLs through `nats.ws`, for hosts that only keep
 * outbound WebSockets (the Deno edge entry). Both give the same connection API; the adapters use
 * the types of `@nats-io/nats-core`.
 *
 * Credentials follow Dynamo's variables (`NATS_AUTH_USERNAME`, `NATS_AUTH_PASSWORD`,
 * `NATS_AUTH_TOKEN`, `NATS_AUTH_NKEY`, `NATS_AUTH_CREDENTIALS_FILE`) and the NATS tools' (`NATS_USER`,
 * `NATS_PASSWORD`, `NATS_TOKEN`, `NATS_NKEY`, `NATS_CREDS`, `NATS_CA`, `NATS_CERT`, `NATS_KEY`); the
 * runtime layer reads the files and passes their contents or paths here (`natsAuthFromEnv`).
 */
import { credsAuthenticator, type NatsConnection, nkeyAuthenticator } from '@nats-io/nats-core';

/** The NATS server of `scripts/services.sh` and Dynamo's default (`NATS_SERVER`). */
export const DEFAULT_NATS_SERVER = 'nats://127.0.0.1:4222';

export interface NatsAuth {
  /** User name (`NATS_AUTH_USERNAME`, `NATS_USER`, or `user:pass@` in the URL). */
  user?: string;
  /** Password (`NATS_AUTH_PASSWORD`, `NATS_PASSWORD`). */
  pass?: string;
  /** Token (`NATS_AUTH_TOKEN`, `NATS_TOKEN`). */
  token?: string;
  /** NKey seed, `SU...` (`NATS_AUTH_NKEY`, `NATS_NKEY`; a path to a seed file works too). */
  nkeySeed?: string;
  /** The text of a `.creds` file: user JWT and NKey seed (`NATS_AUTH_CREDENTIALS_FILE`, `NATS_CREDS`). */
  creds?: string;
  /** TLS files (PEM paths) for `tls://` servers or servers that require TLS; TCP only. */
  tls?: { caFile?: string; certFile?: string; keyFile?: string };
}

/**
 * The servers to connect to, from the variables an operator sets: `NATS_WS_SERVER` (WebSocket
 * URLs) wins when set, else `NATS_SERVER` (default `nats://127.0.0.1:4222`), each a comma-separated
 * list. A bare `host:port` means `nats://host:port`. All servers of a list must use one transport:
 * TCP (`nats://`, `tls://`) or WebSocket (`ws://`, `wss://`).
 */
export function natsServers(env: { natsServer?: string; natsWsServer?: string }): string[] {
  const list = (value: string) => value.split(',').map((s) => s.trim()).filter(Boolean);
  const servers = env.natsWsServer?.trim()
    ? list(env.natsWsServer)
    : env.natsServer?.trim()
    ? list(env.natsServer).map((s) => /^[a-z]+:\/\//i.test(s) ? s : `nats://${s}`)
    : [DEFAULT_NATS_SERVER];
  natsTransport(servers);
  return servers;
}

/** `tcp` or `ws` for a list of server URLs; throws on an unknown scheme or a mixed list. */
export function natsTransport(servers: readonly string[]): 'tcp' | 'ws' {
  const kinds = new Set(servers.map((server) => {
    const scheme = /^([a-z]+):\/\//i.exec(server)?.[1]?.toLowerCase() ?? 'nats';
    if (scheme === 'nats' || scheme === 'tls') return 'tcp';
    if (scheme === 'ws' || scheme === 'wss') return 'ws';
    throw new Error(
      `NATS server "${server}": unknown scheme "${scheme}" (use nats://, tls://, ws:// or wss://)`,
    );
  }));
  if (kinds.size > 1) {
    throw new Error(
      `NATS servers "${servers.join(', ')}" mix TCP (nats://, tls://) and WebSocket ` +
        `(ws://, wss://) URLs; use one transport`,
    );
  }
  return kinds.has('ws') ? 'ws' : 'tcp';
}

export interface OpenNatsOptions {
  servers: string[];
  name: string;
  reconnectWaitMs: number;
  pingIntervalMs: number;
  auth?: NatsAuth;
}

const encoder = new TextEncoder();

/** Opens a connection that reconnects for ever, over TCP or WebSocket as the URLs say. */
export async function openNats(options: OpenNatsOptions): Promise<NatsConnection> {
  const auth = options.auth ?? {};
  const common = {
    servers: options.servers,
    name: options.name,
    maxReconnectAttempts: -1,
    reconnectTimeWait: options.reconnectWaitMs,
    pingInterval: options.pingIntervalMs,
    ...(auth.user !== undefined ? { user: auth.user } : {}),
    ...(auth.pass !== undefined ? { pass: auth.pass } : {}),
    ...(auth.token !== undefined ? { token: auth.token } : {}),
    ...(auth.creds !== undefined
      ? { authenticator: credsAuthenticator(encoder.encode(auth.creds)) }
      : auth.nkeySeed !== undefined
      ? { authenticator: nkeyAuthenticator(encoder.encode(auth.nkeySeed.trim())) }
      : {}),
  };
  if (natsTransport(options.servers) === 'ws') {
    // nats.ws has the same connection API as nats-core (it is its predecessor); its option and
    // connection types are declared separately, hence the casts.
    const { connect } = await import('nats.ws');
    type WsOptions = Parameters<typeof connect>[0];
    return await connect(common as unknown as WsOptions) as unknown as NatsConnection;
  }
  const { connect } = await import('@nats-io/transport-node');
  const tls = auth.tls;
  const wantsTls = options.servers.some((s) => /^tls:\/\//i.test(s)) ||
    (tls !== undefined && Object.values(tls).some((v) => v !== undefined));
  return await connect({
    ...common,
    ...(wantsTls ? { tls: { ...tls } } : {}),
  });
}

/** True for NATS's "no responders" (status 503), as a message or as a request error. */
export function isNoResponders(value: unknown): boolean {
  const v = value as {
    headers?: { code?: number };
    code?: string;
    name?: string;
    cause?: { name?: string };
  } | null;
  return v?.headers?.code === 503 || v?.code === '503' || v?.name === 'NoResponders' ||
    v?.cause?.name === 'NoResponders';
}
