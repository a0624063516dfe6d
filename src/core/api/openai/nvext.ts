/**
 * NVIDIA's request extensions (`nvext`, reference §6.1) and the routing headers that override them
 * (§6.2). Unknown `nvext` keys are refused, as Dynamo's serde does (`agent_context` included: its
 * tracing context comes from headers). Worker ids are u64: they parse to lower-case hex strings,
 * the form discovery uses, so no id is ever rounded.
 */
import { z } from 'zod';
import { ValidationError } from '../../errors.ts';
import { intBetween, show, toU64Hex, u32, U32_MAX, u64Id } from './_fields.ts';

export const AgentHintsSchema = z.strictObject({
  priority: intBetween(-2147483648, 2147483647).nullish().describe(
    'Request priority; higher is more important. Router queue order, then the engine.',
  ),
  strict_priority: u32().nullish().describe('Router pending-queue tier; unset means 0.'),
  osl: u32().nullish().describe('Expected output length in tokens.'),
  speculative_prefill: z.boolean().nullish().describe(
    'After the turn, prefill the predicted next-turn prompt.',
  ),
  latency_sensitivity: z.number().nullish().describe('Deprecated alias of priority.'),
}).meta({ id: 'NvExtAgentHints' });

export const SessionControlSchema = z.strictObject({
  session_id: z.string().min(1, { error: 'must not be empty' }).max(1024, {
    error: 'must be at most 1024 characters',
  }).describe(
    'Requests of one session go to the same worker (session affinity, every router mode).',
  ),
  action: z.enum(['bind', 'open', 'close']).nullish().describe(
    "bind/open (or unset): stick to the session's worker; close: serve this request there, " +
      'then forget the session.',
  ),
  timeout: intBetween(0, Number.MAX_SAFE_INTEGER).nullish().describe(
    'Idle seconds before the session is forgotten; --router-session-affinity-ttl-secs when ' +
      'unset; 0 does not bind it.',
  ),
}).meta({
  id: 'NvExtSessionControl',
  description: 'Session affinity (also set by the x-dynamo-session-id header).',
});

export const NvExtSchema = z.strictObject({
  greed_sampling: z.boolean().nullish().describe('Force greedy sampling.'),
  use_raw_prompt: z.boolean().nullish().describe('Skip the chat template.'),
  annotations: z.array(z.string()).nullish().describe(
    'Out-of-band SSE events to emit: request_id, formatted_prompt, token_ids, ...',
  ),
  backend_instance_id: u64Id().nullish().describe('Pin routing to this worker instance.'),
  token_data: z.array(u32()).nullish().describe('Pre-tokenized prompt.'),
  max_thinking_tokens: u32().nullish(),
  extra_fields: z.array(z.string()).nullish().describe(
    'Response nvext fields to return: worker_id, timing, routed_experts, engine_data, ' +
      'stop_reason.',
  ),
  prefill_worker_id: u64Id().nullish(),
  decode_worker_id: u64Id().nullish(),
  dp_rank: u32().nullish(),
  prefill_dp_rank: u32().nullish(),
  agent_hints: AgentHintsSchema.nullish(),
  session_control: SessionControlSchema.nullish(),
  request_timestamp_ms: z.number().nullish(),
  cache_salt: z.string().nullish().describe('Prefix-cache isolation; survives the nvext switch.'),
  cache_control: z.looseObject({}).nullish(),
  ignore_eos: z.boolean().nullish().describe('Deprecated: use the root-level ignore_eos.'),
}).meta({ id: 'NvExt', description: 'NVIDIA extensions (Dynamo nvext)' });

export type NvExt = z.output<typeof NvExtSchema>;
export type NvExtInput = z.input<typeof NvExtSchema>;

/** Header names, current then legacy; the first one present wins. */
export const ROUTING_HEADERS = {
  workerInstanceId: ['x-dynamo-worker-instance-id', 'x-worker-instance-id'],
  prefillInstanceId: ['x-dynamo-prefill-instance-id', 'x-prefill-instance-id'],
  dpRank: ['x-dynamo-dp-rank', 'x-dp-rank', 'x-data-parallel-rank'],
  prefillDpRank: ['x-dynamo-prefill-dp-rank', 'x-prefill-dp-rank'],
  priority: ['x-dynamo-request-priority'],
  strictPriority: ['x-dynamo-request-strict-priority'],
  tenantId: ['x-tenant-id'],
  sessionId: ['x-dynamo-session-id'],
} as const;

export interface ApplyRoutingHeadersOptions {
  /** `false` under `DYN_DISABLE_FRONTEND_NVEXT`: only `cache_salt` is kept. @default true */
  enabled?: boolean;
}

type HeaderSource = Headers | Record<string, string | undefined>;

function headerGetter(headers: HeaderSource): (name: string) => string | undefined {
  if (headers instanceof Headers) return (name) => headers.get(name) ?? undefined;
  const lower = new Map<string, string>();
  for (const [k, v] of Object.entries(headers)) {
    if (v !== undefined) lower.set(k.toLowerCase(), v);
  }
  return (name) => lower.get(name);
}

function firstHeader(
  get: (name: string) => string | undefined,
  names: readonly string[],
): [string, string] | undefined {
  for (const name of names) {
    const value = get(name);
    if (value !== undefined) return [name, value.trim()];
  }
  return undefined;
}

function badHeader(name: string, value: string, expected: string): ValidationError {
  return new ValidationError(
    `Invalid value for header "${name}": expected ${expected} (got ${show(value)})`,
    { param: name },
  );
}

function headerInt(name: string, value: string, min: number, max: number): number {
  const n = /^[+-]?\d{1,12}$/.test(value) ? Number(value) : Number.NaN;
  if (!Number.isInteger(n) || n < min || n > max) {
    throw badHeader(name, value, `an integer from ${min} to ${max}`);
  }
  return n;
}

function headerU64(name: string, value: string): string {
  const hex = toU64Hex(value);
  if (hex === undefined) throw badHeader(name, value, 'a u64 as a decimal or 0x hex string');
  return hex;
}

/**
 * Merges the routing headers of §6.2 into `nvext` and applies the nvext switch. Headers win over
 * body values; current names win over legacy ones. `x-dynamo-session-id` sets
 * `session_control.session_id`. A dp rank of u32::MAX (from a header or the
 * body) means unset. `x-tenant-id` sets `cache_salt` and, like `cache_salt`, survives the switch.
 * Throws `ValidationError` naming the header when a header value is malformed. Returns a new
 * object (or `undefined` when nothing is set); `nvext` is not modified.
 */
export function applyRoutingHeaders(
  nvext: NvExt | null | undefined,
  headers: HeaderSource,
  options: ApplyRoutingHeadersOptions = {},
): NvExt | undefined {
  const get = headerGetter(headers);
  const tenant = firstHeader(get, ROUTING_HEADERS.tenantId);
  const cacheSalt = tenant && tenant[1] !== '' ? tenant[1] : nvext?.cache_salt ?? undefined;

  if (options.enabled === false) {
    return cacheSalt === undefined ? undefined : { cache_salt: cacheSalt };
  }

  const out: NvExt = { ...nvext };
  if (cacheSalt !== undefined) out.cache_salt = cacheSalt;

  const worker = firstHeader(get, ROUTING_HEADERS.workerInstanceId);
  if (worker) {
    const id = headerU64(worker[0], worker[1]);
    out.backend_instance_id = id;
    out.decode_worker_id = id;
  }
  const prefill = firstHeader(get, ROUTING_HEADERS.prefillInstanceId);
  if (prefill) out.prefill_worker_id = headerU64(prefill[0], prefill[1]);

  const dpRank = firstHeader(get, ROUTING_HEADERS.dpRank);
  if (dpRank) {
    const rank = headerInt(dpRank[0], dpRank[1], 0, U32_MAX);
    if (rank !== U32_MAX) out.dp_rank = rank;
  }
  const prefillDpRank = firstHeader(get, ROUTING_HEADERS.prefillDpRank);
  if (prefillDpRank) {
    const rank = headerInt(prefillDpRank[0], prefillDpRank[1], 0, U32_MAX);
    if (rank !== U32_MAX) out.prefill_dp_rank = rank;
  }
  if (out.dp_rank === U32_MAX) delete out.dp_rank;
  if (out.prefill_dp_rank === U32_MAX) delete out.prefill_dp_rank;

  const priority = firstHeader(get, ROUTING_HEADERS.priority);
  const strict = firstHeader(get, ROUTING_HEADERS.strictPriority);
  if (priority || strict) {
    const hints = { ...out.agent_hints };
    if (priority) hints.priority = headerInt(priority[0], priority[1], -2147483648, 2147483647);
    if (strict) hints.strict_priority = headerInt(strict[0], strict[1], 0, U32_MAX);
    out.agent_hints = hints;
  }

  const session = firstHeader(get, ROUTING_HEADERS.sessionId);
  if (session && session[1] !== '') {
    if (session[1].length > 1024) {
      throw badHeader(session[0], session[1], 'at most 1024 characters');
    }
    out.session_control = { ...out.session_control, session_id: session[1] };
  }

  for (const key of Object.keys(out) as (keyof NvExt)[]) {
    if (out[key] === undefined) delete out[key];
  }
  return Object.keys(out).length === 0 ? undefined : out;
}
