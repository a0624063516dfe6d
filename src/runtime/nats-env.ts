/**
 * NATS servers and credentials from the environment, under Dynamo's names and the NATS tools'
 * (the first set wins): servers `NATS_SERVER` / `NATS_URL` (or `NATS_WS_SERVER` for WebSocket);
 * `NATS_AUTH_USERNAME` / `NATS_USER`, `NATS_AUTH_PASSWORD` / `NATS_PASSWORD`,
 * `NATS_AUTH_TOKEN` / `NATS_TOKEN`, `NATS_AUTH_NKEY` / `NATS_NKEY` (a seed, or a file holding one),
 * `NATS_AUTH_CREDENTIALS_FILE` / `NATS_CREDS` (a `.creds` file), and the TLS files `NATS_CA`,
 * `NATS_CERT`, `NATS_KEY` (also `NATS_TLS_CA_FILE`, `NATS_TLS_CERT_FILE`, `NATS_TLS_KEY_FILE`).
 */
import { existsSync, readFileSync } from 'node:fs';
import { type NatsAuth, natsServers } from '../adapters/plane/nats-connect.ts';

type Env = Readonly<Record<string, string | undefined>>;

const first = (env: Env, ...names: string[]) =>
  names.map((name) => env[name]).find((value) => value !== undefined && value !== '');

export interface NatsEnv {
  servers: string[];
  auth: NatsAuth;
  /** How the servers were chosen, for messages: `NATS_SERVER=...` or the default. */
  describe: string;
}

/** Reads the servers and credentials; throws a message naming the variable when one is wrong. */
export function natsFromEnv(env: Env): NatsEnv {
  const natsServer = first(env, 'NATS_SERVER', 'NATS_URL');
  const natsWsServer = first(env, 'NATS_WS_SERVER');
  const servers = natsServers({
    ...(natsServer ? { natsServer } : {}),
    ...(natsWsServer ? { natsWsServer } : {}),
  });
  const auth: NatsAuth = {};
  const user = first(env, 'NATS_AUTH_USERNAME', 'NATS_USER');
  const pass = first(env, 'NATS_AUTH_PASSWORD', 'NATS_PASSWORD');
  const token = first(env, 'NATS_AUTH_TOKEN', 'NATS_TOKEN');
  const nkey = first(env, 'NATS_AUTH_NKEY', 'NATS_NKEY');
  const creds = first(env, 'NATS_AUTH_CREDENTIALS_FILE', 'NATS_CREDS');
  if (user !== undefined) auth.user = user;
  if (pass !== undefined) auth.pass = pass;
  if (token !== undefined) auth.token = token;
  const readFile = (name: string, path: string) => {
    try {
      return readFileSync(path, 'utf8');
    } catch (error) {
      throw new Error(`${name}: cannot read "${path}": ${(error as Error).message}`);
    }
  };
  if (creds !== undefined) auth.creds = readFile('NATS_AUTH_CREDENTIALS_FILE', creds);
  if (nkey !== undefined) {
    auth.nkeySeed = /^S[A-Z2-7]{20,}$/.test(nkey.trim()) || !existsSync(nkey)
      ? nkey.trim()
      : readFile('NATS_AUTH_NKEY', nkey).trim();
  }
  const caFile = first(env, 'NATS_CA', 'NATS_TLS_CA_FILE');
  const certFile = first(env, 'NATS_CERT', 'NATS_TLS_CERT_FILE');
  const keyFile = first(env, 'NATS_KEY', 'NATS_TLS_KEY_FILE');
  if ((certFile === undefined) !== (keyFile === undefined)) {
    throw new Error('NATS_CERT and NATS_KEY go together: set both or neither');
  }
  if (caFile !== undefined || certFile !== undefined) {
    auth.tls = {
      ...(caFile !== undefined ? { caFile } : {}),
      ...(certFile !== undefined ? { certFile } : {}),
      ...(keyFile !== undefined ? { keyFile } : {}),
    };
  }
  const describe = natsWsServer
    ? `NATS_WS_SERVER=${natsWsServer}`
    : natsServer
    ? `NATS_SERVER=${natsServer}`
    : `the default ${servers.join(', ')}`;
  return { servers, auth, describe };
}
