/**
 * Access control, all off by default (Dynamo's frontend has none) and on when configured
 * (docs/security.md):
 *
 * - API keys (`--api-key`, `DYN_HTTP_API_KEYS`): every route but the probes (`/live`, `/health`)
 *   and `/metrics` needs `Authorization: Bearer <key>` (or Anthropic's `x-api-key`). Keys are
 *   compared in constant time (SHA-256 digests compared byte by byte, every key every time).
 * - The admin key (`--admin-api-key`): the only key that opens `/busy_threshold`, shows `/health`
 *   in detail and, with `--ignore-routing-headers`, lets routing headers through. With API keys
 *   but no admin key the admin API is closed: an API key never opens it.
 * - A Host allow-list (`--allowed-host`) against DNS rebinding, and CORS (`--cors-origin`).
 */
import type { MiddlewareHandler } from 'hono';
import { cors } from 'hono/cors';
import type { Config } from '../core/config.ts';
import { AuthenticationError, BadRequestError, PermissionDeniedError } from '../core/errors.ts';
import type { AppEnv } from './types.ts';

type AccessConfig = Pick<
  Config,
  'apiKeys' | 'adminApiKey' | 'corsOrigins' | 'allowedHosts' | 'livePath' | 'healthPath'
>;

/** What a route is, for access control. */
export type RouteAccess = 'probe' | 'metrics' | 'admin' | 'api';

const encoder = new TextEncoder();

async function digest(text: string): Promise<Uint8Array> {
  return new Uint8Array(await crypto.subtle.digest('SHA-256', encoder.encode(text)));
}

/** True when `given` equals one of `keys`; time depends on neither the key nor the match. */
export async function matchesAny(given: string, keys: readonly Uint8Array[]): Promise<boolean> {
  const d = await digest(given);
  let found = 0;
  for (const key of keys) {
    let diff = 0;
    for (let i = 0; i < d.length; i++) diff |= (d[i] ?? 0) ^ (key[i] ?? 0);
    found |= diff === 0 ? 1 : 0;
  }
  return found === 1;
}

/** The bearer token of a request: `Authorization: Bearer <t>`, else `x-api-key`. */
export function bearerOf(headers: Headers): string | undefined {
  const auth = headers.get('authorization');
  if (auth) {
    const m = /^Bearer[ \t]+(\S+)[ \t]*$/i.exec(auth);
    return m?.[1];
  }
  return headers.get('x-api-key') ?? undefined;
}

/** `host[:port]` of a Host header, lower-cased; `[v6]` kept bracketed. */
function hostnameOf(host: string): string {
  const h = host.trim().toLowerCase();
  if (h.startsWith('[')) return h.slice(0, h.indexOf(']') + 1);
  const colon = h.lastIndexOf(':');
  return colon < 0 ? h : h.slice(0, colon);
}

export interface Access {
  /** App-wide middleware: CORS, then the Host allow-list. */
  global: MiddlewareHandler<AppEnv>[];
  /** Per-route middleware: keys, and what the request may see (`trusted`); none when unlocked. */
  forRoute(kind: RouteAccess): MiddlewareHandler<AppEnv> | undefined;
}

export function createAccess(config: AccessConfig): Access {
  const apiKeys = Promise.all(config.apiKeys.map(digest));
  const adminKeys = Promise.all(config.adminApiKey ? [digest(config.adminApiKey)] : []);
  const locked = config.apiKeys.length > 0 || config.adminApiKey !== undefined;
  const hosts = new Set(config.allowedHosts.map((h) => h.toLowerCase()));
  const probes = new Set([config.livePath, config.healthPath]);

  const global: MiddlewareHandler<AppEnv>[] = [];
  if (config.corsOrigins.length > 0) {
    const any = config.corsOrigins.includes('*');
    global.push(cors({
      origin: any ? '*' : config.corsOrigins,
      allowHeaders: ['authorization', 'content-type', 'x-api-key', 'x-request-id'],
      exposeHeaders: ['x-request-id', 'retry-after'],
      maxAge: 600,
    }));
  }
  if (hosts.size > 0) {
    global.push(async (c, next) => {
      // Probes come from the orchestrator by IP; they stay answerable whatever the Host.
      if (probes.has(c.req.path)) return await next();
      const host = c.req.header('host') ?? new URL(c.req.url).host;
      if (!hosts.has(host.toLowerCase()) && !hosts.has(hostnameOf(host))) {
        throw new BadRequestError(
          `Host "${host}" is not allowed (--allowed-host, DYN_HTTP_ALLOWED_HOSTS)`,
        );
      }
      await next();
    });
  }

  const isAdmin = async (headers: Headers) => {
    const token = bearerOf(headers);
    return token !== undefined && (await adminKeys).length > 0 &&
      await matchesAny(token, await adminKeys);
  };

  return {
    global,
    forRoute(kind) {
      // Unlocked (the default), there is nothing to check: `trusted` stays true.
      if (!locked) return undefined;
      return async (c, next) => {
        const admin = await isAdmin(c.req.raw.headers);
        // Locked, only the admin key is trusted.
        c.set('trusted', admin);
        if (kind === 'api' && config.apiKeys.length > 0 && !admin) {
          const token = bearerOf(c.req.raw.headers);
          if (token === undefined) {
            c.header('www-authenticate', 'Bearer');
            throw new AuthenticationError(
              'Missing API key: send it as "Authorization: Bearer <key>"',
            );
          }
          if (!await matchesAny(token, await apiKeys)) {
            c.header('www-authenticate', 'Bearer error="invalid_token"');
            throw new AuthenticationError('Incorrect API key provided');
          }
        }
        if (kind === 'admin' && locked && !admin) {
          if (config.adminApiKey === undefined) {
            throw new PermissionDeniedError(
              'The admin API is closed while API keys are set; set --admin-api-key ' +
                '(DYN_HTTP_ADMIN_API_KEY) to use it',
            );
          }
          if (bearerOf(c.req.raw.headers) === undefined) c.header('www-authenticate', 'Bearer');
          throw new AuthenticationError('The admin API needs the admin key (--admin-api-key)');
        }
        await next();
      };
    },
  };
}
