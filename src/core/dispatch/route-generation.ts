/**
 * Sends one generation (a tokenized prompt) to the fleet: KV-aware when `--router-mode kv`, and
 * disaggregated when the model has prefill workers (router reference §4.9): the prompt is first
 * prefilled on a prefill worker (capped at one token; its `disaggregated_params` say where the KV
 * is), then decoded on a decode worker with decode-only costs. Without prefill workers a model
 * that had them fails with 503 unless `--decode-fallback` serves it aggregated.
 */
import type { RequestTrace } from '../tracing.ts';
import type { SentRequest } from '../router/busy.ts';
import type { Core } from '../core.ts';
import type { ServedModel, WorkerInstance } from '../discovery/models.ts';
import { ServiceUnavailableError } from '../errors.ts';
import type { NvExt } from '../api/openai/nvext.ts';
import type { LLMEngineOutput, PreprocessedRequest } from '../plane/worker.ts';
import type { KvRouteOverrides, KvRouteRequest } from '../router/kv/types.ts';
import {
  busyOf,
  dispatch,
  type DispatchCall,
  type Dispatched,
  type DispatchServices,
  routingOf,
} from './dispatch.ts';
import { type CacheControlServices, pinPrefix } from './cache-control.ts';
import { Stage, type Step } from '../stage.ts';

export interface GenerationCall extends DispatchCall {
  nvext?: NvExt;
  /** Called with each worker chosen, before the request is sent to it. */
  onSelected?: (instance: WorkerInstance) => void;
  /** Called when a worker (prefill or decode) accepted the request. @default none */
  onDispatched?: (dispatched: DispatchedTo) => void;
  /** The request's trace: `route` and `dispatch` spans. @default none */
  trace?: RequestTrace;
}

/** Who took a request, for the per-worker metrics and the trace. */
export interface DispatchedTo {
  instance: WorkerInstance;
  /** Set when the KV router chose the rank. */
  dpRank?: number;
  pool: 'decode' | 'prefill';
  promptTokens: number;
}

/** What sending to one pool uses: a dispatch, plus KV routing and the stage timings. */
type SendServices = DispatchServices & Pick<Core, 'kv' | 'monotonic'>;

/**
 * What `dispatchGeneration()` uses: sending (prefill, then decode, when the model has prefill
 * workers), this frontend's count of busy load, and cache-control pinning.
 */
export type GenerationServices =
  & SendServices
  & CacheControlServices
  & Pick<Core, 'disaggregated' | 'thresholds'>;

/** Decode-side settings in disaggregated serving: cost is decode load only. */
const DECODE_ONLY: KvRouteOverrides = {
  overlapScoreWeight: 0,
  assumeKvReuse: false,
  trackPrefillTokens: false,
};

function kvRequest(
  call: GenerationCall,
  body: PreprocessedRequest,
  overrides?: KvRouteOverrides,
): Omit<KvRouteRequest, 'candidates' | 'pinned'> {
  const hints = call.nvext?.agent_hints;
  return {
    requestId: call.requestId,
    tokens: body.token_ids,
    loraName: body.routing?.lora_name ?? undefined,
    cacheSalt: body.routing?.cache_salt ?? call.nvext?.cache_salt ?? undefined,
    dpRank: call.nvext?.dp_rank ?? undefined,
    priority: hints?.priority ?? hints?.latency_sensitivity ?? undefined,
    expectedOutputTokens: hints?.osl ?? undefined,
    ...(overrides ? { overrides } : {}),
  };
}

function send(
  core: SendServices,
  options: {
    model: ServedModel;
    call: GenerationCall;
    body: PreprocessedRequest;
    pool: 'decode' | 'prefill';
    pinned?: string | null;
    overrides?: KvRouteOverrides;
  },
): Promise<Dispatched> {
  const { model, call, body, pool } = options;
  const router = core.kv?.routerFor(model, pool);
  const stages = core.metrics.stageDuration;
  const started = core.monotonic();
  let selected: number | undefined;
  const dispatched = dispatch({
    ...routingOf(core, { model: model.name, call, tokens: body.token_ids.length, pool }),
    plane: core.plane,
    policy: core.policy,
    inhibitor: core.inhibitor,
    logger: core.logger,
    model: model.name,
    instances: pool === 'prefill'
      ? core.models.prefillInstances(model.name)
      : core.models.instances(model.name),
    request: { id: call.requestId, headers: call.headers, body },
    signal: call.signal,
    backendInstanceId: options.pinned ?? undefined,
    overloadStatus: core.config.httpOverloadStatusCode,
    busy: busyOf(core, model.name),
    onSelected: (instance) => {
      selected = core.monotonic();
      stages.observe({ stage: 'route' }, (selected - started) / 1000);
      call.trace?.stage('route', started, selected, {
        'switchboard.pool': pool,
        'switchboard.worker_id': instance.instanceId,
      });
      call.onSelected?.(instance);
    },
    ...(router ? { kv: { router, request: kvRequest(call, body, options.overrides) } } : {}),
  });
  return dispatched.then((d) => {
    if (selected !== undefined) {
      const accepted = core.monotonic();
      stages.observe({ stage: 'transport_roundtrip' }, (accepted - selected) / 1000);
      call.trace?.stage('dispatch', selected, accepted, {
        'switchboard.pool': pool,
        'switchboard.worker_id': d.instance.instanceId,
        'switchboard.transport': Object.keys(d.instance.transport)[0] ?? '',
      });
    }
    if (d.booking && d.booking.requiredBlocks > 0) {
      core.metrics.kvHitRate.observe(
        { model: model.name },
        d.booking.overlapBlocks / d.booking.requiredBlocks,
      );
    }
    call.onDispatched?.({
      instance: d.instance,
      ...(d.booking ? { dpRank: d.booking.dpRank } : {}),
      pool,
      promptTokens: body.token_ids.length,
    });
    return d;
  });
}

/** Runs the prefill step and returns the worker's `disaggregated_params`. */
async function prefill(
  core: SendServices,
  model: ServedModel,
  call: GenerationCall,
  body: PreprocessedRequest,
): Promise<unknown> {
  const request: PreprocessedRequest = {
    ...body,
    stop_conditions: { ...body.stop_conditions, max_tokens: 1, min_tokens: undefined },
  };
  const { stream } = await send(core, {
    model,
    call,
    body: request,
    pool: 'prefill',
    pinned: call.nvext?.prefill_worker_id,
  });
  let params: unknown = null;
  for await (const item of stream) {
    const output = item as LLMEngineOutput;
    if (output.disaggregated_params !== undefined) params = output.disaggregated_params;
  }
  return params;
}

export async function dispatchGeneration(
  core: GenerationServices,
  model: ServedModel,
  call: GenerationCall,
  body: PreprocessedRequest,
): Promise<Dispatched> {
  const pinned = call.nvext?.decode_worker_id ?? call.nvext?.backend_instance_id;
  let dispatched = await route(core, model, call, body, pinned);
  if (core.thresholds.any()) {
    // This frontend's own count of the request, until the worker's reports include it.
    const tokens = body.token_ids.length;
    const sent = core.busy.recordSent(
      dispatched.instance.instanceId,
      tokens,
      Math.ceil(tokens / Math.max(1, model.card.kv_cache_block_size ?? 1)),
    );
    // A stream nobody reads (its request failed or was abandoned) never reaches its `finally`:
    // the request's abort ends the count too.
    const release = () => sent.done();
    if (call.signal.aborted) release();
    else call.signal.addEventListener('abort', release, { once: true });
    dispatched = {
      ...dispatched,
      stream: counted(dispatched.stream, {
        firstToken: () => sent.firstToken(),
        done: () => {
          call.signal.removeEventListener('abort', release);
          sent.done();
        },
      }),
    };
  }
  const cacheControl = call.nvext?.cache_control;
  if (core.config.enableCacheControl && cacheControl && core.kv) {
    return { ...dispatched, stream: pinAfter(core, dispatched, body, call, cacheControl) };
  }
  return dispatched;
}

/** `stream`, telling `sent` when the first token came and when the stream ended. */
function counted(stream: AsyncIterable<unknown>, sent: SentRequest): AsyncIterable<unknown> {
  return new Passing(stream, {
    item: (item) => {
      if ((item as { token_ids?: unknown[] } | null)?.token_ids?.length) sent.firstToken();
    },
    end: () => sent.done(),
  });
}

interface PassingWatch {
  item(item: unknown): void;
  /** The stream ended: completed, failed, or closed early. Once. */
  end(): void;
}

/** A stage that passes items through, watching them, with one call when the stream ends. */
class Passing extends Stage<unknown, unknown> {
  #watch: PassingWatch;
  #open = true;

  constructor(stream: AsyncIterable<unknown>, watch: PassingWatch) {
    super(stream);
    this.#watch = watch;
  }

  protected step(result: IteratorResult<unknown>): Step<unknown> {
    if (result.done) this.#end();
    else this.#watch.item(result.value);
    return result;
  }

  protected override error(error: unknown): never {
    this.#end();
    throw error;
  }

  protected override close(): void {
    this.#end();
  }

  #end() {
    if (!this.#open) return;
    this.#open = false;
    this.#watch.end();
  }
}

async function route(
  core: SendServices & Pick<Core, 'disaggregated'>,
  model: ServedModel,
  call: GenerationCall,
  body: PreprocessedRequest,
  pinned: string | null | undefined,
): Promise<Dispatched> {
  let dispatched: Dispatched;
  if (core.models.prefillInstances(model.name).length > 0) {
    core.disaggregated.add(model.name);
    const params = await prefill(core, model, call, body);
    dispatched = await send(core, {
      model,
      call,
      body: { ...body, prefill_result: { disaggregated_params: params } },
      pool: 'decode',
      pinned,
      overrides: DECODE_ONLY,
    });
  } else {
    if (core.disaggregated.has(model.name) && !core.config.decodeFallback) {
      throw new ServiceUnavailableError(
        `No prefill worker serves model "${model.name}"; retry shortly, or start the ` +
          'frontend with --decode-fallback to serve it on the decode workers meanwhile',
      );
    }
    dispatched = await send(core, { model, call, body, pool: 'decode', pinned });
  }
  return dispatched;
}

/**
 * Passes the stream through; once it finished (a finish reason other than an error or a
 * cancellation, even if the reader stops right there), pins the prompt's prefix on its worker.
 */
function pinAfter(
  core: CacheControlServices,
  dispatched: Dispatched,
  body: PreprocessedRequest,
  call: GenerationCall,
  cacheControl: Record<string, unknown>,
): AsyncIterable<unknown> {
  let finished = false;
  return new Passing(dispatched.stream, {
    item: (item) => {
      const reason = (item as LLMEngineOutput | null)?.finish_reason;
      // An error arrives as `{error}`; a string reason other than these is a real finish.
      if (typeof reason === 'string' && reason !== 'cancelled' && reason !== 'abort') {
        finished = true;
      }
    },
    end: () => {
      if (!finished) return;
      pinPrefix(core, {
        instance: dispatched.instance,
        dpRank: dispatched.booking?.dpRank,
        tokenIds: body.token_ids,
        cacheControl,
        requestId: call.requestId,
      });
    },
  });
}
