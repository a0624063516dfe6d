/**
 * Worker selection for the non-KV routing modes: round-robin (default), random, direct,
 * least-loaded and power-of-two-choices (router reference §6). Every policy passes the same
 * contract suite (`tests/contract/routing-policy.contract.ts`). A worker that just failed a
 * request is skipped for a few seconds (Dynamo's "inhibition"), unless every worker has failed.
 */
import type { Config } from '../config.ts';
import { BadRequestError, NotFoundError, ServiceUnavailableError } from '../errors.ts';
import type { WorkerInstance } from '../discovery/models.ts';
import { compareLoad, type LoadTracker } from './load.ts';

export interface RouteRequest {
  model: string;
  /** Lower-case hex u64 from `nvext.backend_instance_id` or the routing header. */
  backendInstanceId?: string;
}

export interface RoutingPolicy {
  readonly mode: Config['routerMode'];
  /** Picks one of `instances` (never empty) for `request`. */
  pick(instances: readonly WorkerInstance[], request: RouteRequest): WorkerInstance;
}

export function createRoundRobinPolicy(): RoutingPolicy {
  const next = new Map<string, number>();
  return {
    mode: 'round-robin',
    pick(instances, request) {
      const i = next.get(request.model) ?? 0;
      next.set(request.model, (i + 1) % 1_000_000_007);
      return instances[i % instances.length] as WorkerInstance;
    },
  };
}

/** @param random a uniform number in [0, 1) */
export function createRandomPolicy(random: () => number = Math.random): RoutingPolicy {
  return {
    mode: 'random',
    pick: (instances) =>
      instances[Math.floor(random() * instances.length) % instances.length] as WorkerInstance,
  };
}

export function createDirectPolicy(): RoutingPolicy {
  return {
    mode: 'direct',
    pick(instances, request) {
      if (!request.backendInstanceId) {
        throw new BadRequestError(
          'Routing mode "direct" needs the worker to use: set nvext.backend_instance_id or the ' +
            'x-dynamo-worker-instance-id header',
          { param: 'nvext.backend_instance_id' },
        );
      }
      const found = instances.find((i) => i.instanceId === request.backendInstanceId);
      if (!found) {
        throw new NotFoundError(
          `Worker instance "${request.backendInstanceId}" is not serving model "${request.model}"`,
          { param: 'nvext.backend_instance_id' },
        );
      }
      return found;
    },
  };
}

/** What the load-aware policies read: the frontend's in-flight count per worker. */
export type LoadView = Pick<LoadTracker, 'of'>;

/**
 * `least-loaded`: the worker with the least in flight from this frontend (tokens where every
 * request in flight carries them, else requests; see `compareLoad`). Ties go round-robin among
 * the tied workers, so an idle fleet is still spread.
 */
export function createLeastLoadedPolicy(load: LoadView): RoutingPolicy {
  const next = new Map<string, number>();
  return {
    mode: 'least-loaded',
    pick(instances, request) {
      let tied: WorkerInstance[] = [];
      let best: ReturnType<LoadView['of']> | undefined;
      for (const instance of instances) {
        const l = load.of(instance.instanceId);
        const order = best === undefined ? -1 : compareLoad(l, best);
        if (order < 0) {
          best = l;
          tied = [instance];
        } else if (order === 0) tied.push(instance);
      }
      const i = next.get(request.model) ?? 0;
      next.set(request.model, (i + 1) % 1_000_000_007);
      return tied[i % tied.length] as WorkerInstance;
    },
  };
}

/**
 * `power-of-two-choices`: two distinct workers drawn at random; the less loaded one wins, the
 * first drawn on a tie (Dynamo's push router).
 * @param random a uniform number in [0, 1)
 */
export function createPowerOfTwoPolicy(
  load: LoadView,
  random: () => number = Math.random,
): RoutingPolicy {
  const draw = (n: number) => Math.floor(random() * n) % n;
  return {
    mode: 'power-of-two-choices',
    pick(instances) {
      if (instances.length === 1) return instances[0] as WorkerInstance;
      const i = draw(instances.length);
      let j = draw(instances.length - 1);
      if (j >= i) j++;
      const first = instances[i] as WorkerInstance;
      const second = instances[j] as WorkerInstance;
      return compareLoad(load.of(second.instanceId), load.of(first.instanceId)) < 0
        ? second
        : first;
    },
  };
}

export interface PolicyPorts {
  /** Uniform [0, 1). @default Math.random */
  random?: () => number;
  /** In-flight load per worker, for least-loaded and power-of-two-choices. @default none (idle) */
  load?: LoadView;
}

const noLoad: LoadView = { of: () => ({ requests: 0, tokens: 0, untokenized: 0 }) };

/** The policy of a `--router-mode` (`kv` selects with the KV router; its fallback is round-robin). */
export function createPolicy(mode: Config['routerMode'], ports: PolicyPorts = {}): RoutingPolicy {
  switch (mode) {
    case 'random':
      return createRandomPolicy(ports.random);
    case 'direct':
      return createDirectPolicy();
    case 'least-loaded':
      return createLeastLoadedPolicy(ports.load ?? noLoad);
    case 'power-of-two-choices':
      return createPowerOfTwoPolicy(ports.load ?? noLoad, ports.random);
    default:
      return createRoundRobinPolicy();
  }
}

export interface InhibitorOptions {
  /** Milliseconds, monotonic. */
  now: () => number;
  /** How long a failed worker is skipped (`DYN_RUNTIME_INHIBITED_DURATION_SECS`). @default 5000 */
  durationMs?: number;
}

/** Remembers workers that just failed, so routing skips them for a while. */
export function createInhibitor(options: InhibitorOptions) {
  const until = new Map<string, number>();
  const duration = options.durationMs ?? 5000;
  const active = (id: string) => {
    const t = until.get(id);
    if (t === undefined) return false;
    if (t > options.now()) return true;
    until.delete(id);
    return false;
  };
  return {
    report(instanceId: string): void {
      if (duration > 0) until.set(instanceId, options.now() + duration);
    },
    isInhibited: active,
    /** The instances not inhibited, or all of them when every one is. */
    filter(instances: readonly WorkerInstance[]): readonly WorkerInstance[] {
      const ok = instances.filter((i) => !active(i.instanceId));
      return ok.length > 0 ? ok : instances;
    },
  };
}

export type Inhibitor = ReturnType<typeof createInhibitor>;

/**
 * Picks a worker for `request` among `instances`: 503 when there is none, direct requests honoured
 * in every mode, inhibited workers skipped.
 */
export function selectWorker(
  policy: RoutingPolicy,
  inhibitor: Inhibitor,
  instances: readonly WorkerInstance[],
  request: RouteRequest,
): WorkerInstance {
  if (instances.length === 0) {
    throw new ServiceUnavailableError(
      `No live worker serves model "${request.model}"; retry shortly`,
    );
  }
  // An explicit instance wins in every mode, as Dynamo's push router does.
  if (request.backendInstanceId && policy.mode !== 'direct') {
    return createDirectPolicy().pick(instances, request);
  }
  if (policy.mode === 'direct') return policy.pick(instances, request);
  return policy.pick(inhibitor.filter(instances), request);
}
