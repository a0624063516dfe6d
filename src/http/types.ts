/** Types shared by `createApp` and the route modules. */
import type { RouteConfig } from '@hono/zod-openapi';
import type { Config, PathKey } from '../core/config.ts';
import type { Core } from '../core/core.ts';
import type { ErrorSurface } from '../core/errors.ts';
import type { StallWatchdog } from './stall.ts';

/** Static assets (Swagger UI) the runtime can hand to the app; absent on hosts with no files. */
export interface AssetSource {
  get(name: string): Promise<{ body: Uint8Array<ArrayBuffer>; contentType: string } | undefined>;
}

export interface AppEnv {
  Variables: {
    core: Core;
    requestId: string;
    /** Puts long token arrays cut for validation back into the validated body. */
    restoreBody: ((data: unknown) => void) | undefined;
    surface: ErrorSurface;
    /** The matched route pattern, for logs and metric labels. */
    routePattern: string;
    /** The OpenAPI 3.1 document of the mounted routes. */
    openapi: () => unknown;
    assets: AssetSource | undefined;
    /**
     * The request may see internals and steer routing: always when no key is configured,
     * otherwise only with the admin key (docs/security.md).
     */
    trusted: boolean;
    /** Cancels streams whose client stopped reading (`--http-write-timeout-secs`). */
    stallWatchdog: StallWatchdog;
  };
}

/** How `createApp` mounts a route module, beyond its `createRoute` config. */
export interface RouteOptions {
  /** Error envelope. @default 'openai' */
  surface?: ErrorSurface;
  /** The `DYN_HTTP_SVC_*_PATH` override that moves this route. */
  pathKey?: PathKey;
  /** The route is mounted only when this holds. @default always */
  enabled?: (config: Config) => boolean;
  /** Answer 503 while the frontend is starting or draining. @default false */
  readinessGate?: boolean;
  /** Regular expressions of path parameters, e.g. `{ model: '.+' }` for ids with `/`. @default none */
  paramPatterns?: Record<string, string>;
  /**
   * A top-level body field that may hold long token-id arrays, with no length bound in the
   * schema: checked by one loop instead of item by item in zod (`longTokenStandIn`). @default none
   */
  longTokenField?: string;
}

/** What each file under `routes/` exports. */
export interface RouteModule {
  route: RouteConfig;
  /** A `RouteHandler<typeof route, AppEnv>`; its exact type is checked in the module itself. */
  handler: (...args: never[]) => unknown;
  options?: RouteOptions;
}

/** One open WebSocket, as the runtime's server hands it to the application. */
export interface WsPeer {
  send(text: string): void;
  /** Sends a close frame (code 1000 unless given) and ends the connection. */
  close(code?: number, reason?: string): void;
}

/** What the application does with one WebSocket: told of each text message and of the close. */
export interface WsSession {
  message(text: string): void;
  closed(): void;
}
