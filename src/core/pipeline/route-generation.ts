/**
 * Sends one generation (a tokenized prompt) to the fleet: KV-aware when `--router-mode kv`, and
 * disaggregated when the model has prefill workers (router reference §4.9): the prompt is first
 * prefilled on a prefill worker (capped at one token; its `disaggregated_params` say where the KV
 * is), then decoded on a decode worker with decode-only costs. Without prefill workers a model
 * that had them fails with 503 unless `--decode-fallback` serves it aggregated.
 */
import type { Core } from '../core.ts';
import type { ServedModel, WorkerInstance } from '../discovery/models.ts';
import { ServiceUnavailableError } from '../errors.ts';
import type { NvExt } from '../protocols/nvext.ts';
import type { LLMEngineOutput, PreprocessedRequest } from '../protocols/worker.ts';
import type { KvRouteOverrides, KvRouteRequest } from '../router/kv/types.ts';
import { busyOf, dispatch, type DispatchCall, type Dispatched, routingOf } from './dispatch.ts';
import { pinPrefix } from './cache-control.ts';

export interface GenerationCall extends DispatchCall {
  nvext?: NvExt;
  /** Called with each worker chosen, before the request is sent to it. */
  onSelected?: (instance: WorkerInstance) => void;
}

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
  core: Core,
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
  return dispatch({
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
    onSelected: call.onSelected,
    ...(router ? { kv: { router, request: kvRequest(call, body, options.overrides) } } : {}),
  });
}

/** Runs the prefill step and returns the worker's `disaggregated_params`. */
async function prefill(
  core: Core,
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
  core: Core,
  model: ServedModel,
  call: GenerationCall,
  body: PreprocessedRequest,
): Promise<Dispatched> {
  const pinned = call.nvext?.decode_worker_id ?? call.nvext?.backend_instance_id;
  const dispatched = await route(core, model, call, body, pinned);
  if (core.thresholds.any()) {
    core.busy.recordSent(dispatched.instance.instanceId, body.token_ids.length);
  }
  const cacheControl = call.nvext?.cache_control;
  if (core.config.enableCacheControl && cacheControl && core.kv) {
    return { ...dispatched, stream: pinAfter(core, dispatched, body, call, cacheControl) };
  }
  return dispatched;
}

async function route(
  core: Core,
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
async function* pinAfter(
  core: Core,
  dispatched: Dispatched,
  body: PreprocessedRequest,
  call: GenerationCall,
  cacheControl: Record<string, unknown>,
): AsyncIterable<unknown> {
  let finished = false;
  try {
    for await (const item of dispatched.stream) {
      const reason = (item as LLMEngineOutput | null)?.finish_reason;
      // An error arrives as `{error}`; a string reason other than these is a real finish.
      if (typeof reason === 'string' && reason !== 'cancelled' && reason !== 'abort') {
        finished = true;
      }
      yield item;
    }
  } finally {
    if (finished) {
      pinPrefix(core, {
        instance: dispatched.instance,
        dpRank: dispatched.booking?.dpRank,
        tokenIds: body.token_ids,
        cacheControl,
        requestId: call.requestId,
      });
    }
  }
}
