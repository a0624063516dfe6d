/**
 * `--enable-cache-control` (router reference §4.8): after a request with
 * `nvext.cache_control = {type: "ephemeral", ttl?: "5m" | "1h"}` completes, the frontend asks
 * the worker that served it to pin the prompt's cached prefix for the TTL. Fire and forget: the
 * answer is only logged.
 */
import type { Core } from '../core.ts';
import type { WorkerInstance } from '../discovery/models.ts';

export const CACHE_CONTROL_ENDPOINT = 'cache_control';

/** What `pinPrefix()` uses: the worker's endpoints, the plane to reach them, the log. */
export type CacheControlServices = Pick<Core, 'models' | 'plane' | 'logger'>;

/** `"5m"` -> 300, `"1h"` -> 3600; anything else (or nothing) -> 300 and a warning. */
export function cacheControlTtlSeconds(
  ttl: unknown,
  warn: (message: string) => void = () => {},
): number {
  if (ttl === '5m') return 300;
  if (ttl === '1h') return 3600;
  if (ttl !== undefined && ttl !== null) {
    warn(`cache_control.ttl "${String(ttl)}" is not "5m" or "1h"; pinning for 300 s`);
  }
  return 300;
}

/** Sends the pin request to `instance`'s `cache_control` endpoint, if it serves one. */
export function pinPrefix(
  core: CacheControlServices,
  options: {
    instance: WorkerInstance;
    dpRank?: number;
    tokenIds: readonly number[];
    cacheControl: Record<string, unknown>;
    requestId: string;
  },
): void {
  const { instance, requestId } = options;
  const target = core.models.allInstances().find((i) =>
    i.instanceId === instance.instanceId &&
    i.endpoint.endpoint === CACHE_CONTROL_ENDPOINT &&
    i.endpoint.namespace === instance.endpoint.namespace &&
    i.endpoint.component === instance.endpoint.component
  );
  if (!target) {
    core.logger.debug('worker has no cache_control endpoint; not pinning', {
      request_id: requestId,
      instance_id: instance.instanceId,
    });
    return;
  }
  const ttl = cacheControlTtlSeconds(
    options.cacheControl.ttl,
    (message) => core.logger.warn(message, { request_id: requestId }),
  );
  const body = {
    action: 'pin_prefix',
    token_ids: options.tokenIds,
    ttl_seconds: ttl,
    ...(options.dpRank !== undefined ? { dp_rank: options.dpRank } : {}),
  };
  void (async () => {
    try {
      const items = await core.plane.send(
        target.transport,
        { id: `${requestId}-pin`, headers: {}, body },
        { signal: new AbortController().signal },
      );
      for await (const item of items) {
        core.logger.debug('prefix pinned', { request_id: requestId, answer: item });
      }
    } catch (error) {
      core.logger.warn('could not pin the prefix', { request_id: requestId, error });
    }
  })();
}
