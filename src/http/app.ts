/**
 * `createApp(routes, core)`: the Hono app. It mounts the route modules it is given (the generated
 * manifest in production, any subset in tests), applies path overrides, and owns the cross-cutting
 * parts: request ids, access logs, HTTP metrics, body intake, readiness, and the one `onError`.
 */
import { OpenAPIHono } from '@hono/zod-openapi';
import type { Context, MiddlewareHandler } from 'hono';
import { HTTPException } from 'hono/http-exception';
import type { Core } from '../core/core.ts';
import {
  type ApiError,
  ClientRequestError,
  NotReadyError,
  OverloadedError,
  RouteNotFoundError,
  toApiError,
  toErrorBody,
} from '../core/errors.ts';
import { issuesToValidationError, longTokenStandIn } from '../core/api/openai/validate.ts';
import { createAccess, type RouteAccess } from './access.ts';
import { createStallWatchdog } from './stall.ts';
import {
  assertJsonContentType,
  type BodyParser,
  concatChunks,
  parseJsonBody,
  readBodyChunks,
  requestLimitsOf,
  sizeOf,
} from './intake.ts';
import type { AppEnv, AssetSource, RouteModule } from './types.ts';

export interface AppOptions {
  /** Where `/docs` finds the Swagger UI files. @default undefined (no assets: /docs says so) */
  assets?: AssetSource;
  /**
   * Parses bodies of `--http-body-thread-mb` or more off the event loop (`src/adapters/threads/body-pool.ts`).
   * @default none: every body is parsed inline
   */
  bodyParser?: BodyParser;
}

export const API_TITLE = 'Switchboard';
export const API_VERSION = '0.1.0';

const REQUEST_ID = /^[\x21-\x7e]{1,128}$/;

/**
 * The request's `x-request-id` when it is printable ASCII up to 128 characters, else a fresh one.
 * One header lookup: on Node, `@hono/node-server` answers it from the `IncomingMessage`'s own
 * headers without building a `Headers` object.
 */
function requestIdOf(c: Context<AppEnv>, core: Pick<Core, 'newId'>): string {
  const given = c.req.header('x-request-id');
  return given && REQUEST_ID.test(given) ? given : core.newId();
}

/**
 * What `@hono/node-server` passes as the fetch's second argument (`c.env`): the Node response the
 * answer will be written to. Absent on Bun, Deno, the edge and `app.request()`.
 */
interface NodeBindings {
  outgoing?: { setHeader(name: string, value: string): unknown };
}

/**
 * Puts `x-request-id` on the response. On Node it goes on the outgoing response itself, which
 * `writeHead` merges with the answer's headers: the answer keeps its plain-object headers and
 * `@hono/node-server` its fast path, where `c.header()` would make Hono build a `Headers` object
 * for every response (docs/benchmarks.md, "Where the time goes"). Elsewhere, `c.header()` before
 * the handler runs: a header added to a finished response makes Hono rebuild it.
 */
function echoRequestId(c: Context<AppEnv>, requestId: string): void {
  const outgoing = (c.env as NodeBindings | undefined)?.outgoing;
  if (outgoing) outgoing.setHeader('x-request-id', requestId);
  else c.header('x-request-id', requestId);
}

/** `/v1/models/{model{.+}}` -> `/v1/models/{model}` in the document's paths. */
function cleanPaths<D extends { paths?: Record<string, unknown> }>(doc: D): D {
  if (!doc.paths) return doc;
  const paths = Object.fromEntries(
    Object.entries(doc.paths).map(([p, v]) => [p.replace(/\{(\w+)\{[^}]*\}\}/g, '{$1}'), v]),
  );
  return { ...doc, paths };
}

/**
 * Takes the whole `Core`: the routes reach it through `c.get('core')` and between them use every
 * member.
 */
export function createApp(routes: readonly RouteModule[], core: Core, options: AppOptions = {}) {
  const app = new OpenAPIHono<AppEnv>({
    defaultHook: (result, c) => {
      if (!result.success) {
        // The validator passes the input as `data` (missing from its failure type): messages quote it.
        throw issuesToValidationError(result.error.issues, (result as { data?: unknown }).data);
      }
      c.get('restoreBody')?.(result.data);
      return undefined;
    },
  });
  let document: unknown;
  const openapi = () =>
    document ??= cleanPaths(app.getOpenAPI31Document({
      openapi: '3.1.0',
      info: {
        title: API_TITLE,
        version: API_VERSION,
        description: 'LLM inference frontend and router implementing the Dynamo frontend API.',
        license: { name: 'Apache-2.0' },
      },
      servers: [{ url: '/' }],
    }));

  const { metrics, logger } = core;
  const stallWatchdog = createStallWatchdog(
    core.config.httpWriteTimeoutSecs * 1000,
    () => core.monotonic(),
  );
  app.use(async (c, next) => {
    const start = core.monotonic();
    const requestId = requestIdOf(c, core);
    c.set('core', core);
    c.set('requestId', requestId);
    c.set('surface', 'openai');
    c.set('routePattern', 'unmatched');
    c.set('openapi', openapi);
    c.set('assets', options.assets);
    c.set('trusted', true);
    c.set('stallWatchdog', stallWatchdog);
    echoRequestId(c, requestId);
    await next();
    const seconds = (core.monotonic() - start) / 1000;
    const route = c.get('routePattern');
    const labels = { method: c.req.method, route };
    metrics.httpRequestsTotal.inc({ ...labels, status: String(c.res.status) });
    metrics.httpRequestDuration.observe(labels, seconds);
    logger.info('request', {
      method: c.req.method,
      path: c.req.path,
      route,
      status: c.res.status,
      duration_ms: Math.round(seconds * 1e6) / 1e3,
      request_id: requestId,
    });
  });

  const access = createAccess(core.config);
  for (const middleware of access.global) app.use(middleware);

  const { config } = core;
  const limitMb = config.httpBodyLimitMb;
  const limits = requestLimitsOf(config);
  const { bodyParser } = options;
  const bodyThreadBytes = Math.floor(config.httpBodyThreadMb * 1024 * 1024);
  const jsonIntake = (longTokenField?: string): MiddlewareHandler<AppEnv> => async (c, next) => {
    assertJsonContentType(c.req.header('content-type'));
    const chunks = await readBodyChunks(c.req.raw, limitMb, {
      timeoutMs: config.httpBodyTimeoutSecs * 1000,
    });
    // The budget runs before validation, templating and tokenizing (docs/security.md); large
    // bodies are joined, parsed and checked in a thread.
    const body = bodyParser && bodyThreadBytes > 0 && sizeOf(chunks) >= bodyThreadBytes
      ? await bodyParser.parse(chunks, limits)
      : parseJsonBody(concatChunks(chunks), limits);
    // Hand the parsed body to the route's validator as is: Hono's body cache would stringify
    // it and parse it again (turning 1e400 into null, and deep nesting into a stack overflow).
    const cut = longTokenField ? longTokenStandIn(body, longTokenField) : undefined;
    c.set('restoreBody', cut?.restore);
    const parsed = Promise.resolve(cut ? cut.body : body);
    c.req.bodyCache.json = parsed;
    c.req.json = <T>() => parsed as Promise<T>;
    await next();
  };
  const readinessGate: MiddlewareHandler<AppEnv> = async (_c, next) => {
    if (core.lifecycle.phase !== 'ready') throw new NotReadyError();
    await next();
  };

  for (const module of routes) {
    const { route, handler } = module;
    const opts = module.options ?? {};
    if (opts.enabled && !opts.enabled(core.config)) continue;
    const path = opts.pathKey ? core.config[`${opts.pathKey}Path`] : route.path;
    // Hono reads `{name{regex}}` as a parameter with a pattern; the document shows `{name}`.
    const routed = Object.entries(opts.paramPatterns ?? {}).reduce(
      (p, [name, pattern]) => p.replace(`{${name}}`, `{${name}{${pattern}}}`),
      path,
    );
    const surface = opts.surface ?? 'openai';
    const kind: RouteAccess = surface === 'admin'
      ? 'admin'
      : opts.pathKey === 'live' || opts.pathKey === 'health'
      ? 'probe'
      : opts.pathKey === 'metrics'
      ? 'metrics'
      : 'api';
    const pattern = path;
    const tag: MiddlewareHandler<AppEnv> = async (c, next) => {
      c.set('surface', surface);
      c.set('routePattern', pattern);
      await next();
    };
    const hasJsonBody = Boolean(route.request?.body?.content?.['application/json']);
    const guard = access.forRoute(kind);
    const middleware = [
      tag,
      ...(guard ? [guard] : []),
      ...(opts.readinessGate ? [readinessGate] : []),
      ...(hasJsonBody ? [jsonIntake(opts.longTokenField)] : []),
    ];
    app.openapi({ ...route, path: routed, middleware }, handler as never);
  }

  app.notFound((c) => {
    const error = new RouteNotFoundError(`Route not found: ${c.req.method} ${c.req.path}`);
    return c.json(toErrorBody(error, 'openai'), 404);
  });
  app.onError((err, c) => {
    // A client-side exception from Hono or a middleware keeps its 4xx.
    const error: ApiError = err instanceof HTTPException && err.status >= 400 && err.status < 500
      ? new ClientRequestError(err.status, err.message || 'Bad request', { cause: err })
      : toApiError(err);
    if (error instanceof OverloadedError) {
      // Shedding load is working as designed; one line per refusal would flood an overloaded
      // frontend's log (model_rejection_total counts them).
      logger.debug('request refused: every worker is busy', { request_id: c.get('requestId') });
    } else if (error.status >= 500) {
      logger.error('request failed', {
        request_id: c.get('requestId'),
        status: error.status,
        error: err,
      });
    }
    echoRequestId(c, c.get('requestId'));
    const retryAfter = (error as { retryAfter?: number }).retryAfter;
    if (retryAfter !== undefined) c.header('retry-after', String(retryAfter));
    return c.json(toErrorBody(error, c.get('surface') ?? 'openai'), error.status as 400);
  });
  return app;
}

export type App = ReturnType<typeof createApp>;
