/**
 * Text-input models (plain OpenAI-compatible servers registered with `switchboard register`):
 * the client's request goes to the server unchanged except for the model name, always streamed
 * with usage so the frontend can count tokens; chunks come back with the served model name.
 */
import type { Core } from '../core.ts';
import type { ServedModel } from '../discovery/models.ts';
import { type DispatchServices, dispatchTo } from '../dispatch/dispatch.ts';
import type { GenerationUsage } from './generate.ts';
import type { RequestMetrics } from '../metrics/request-metrics.ts';
import { type CallContext, upstreamName } from './call-context.ts';

interface UpstreamChunk {
  model?: string;
  choices?: Array<{ delta?: { content?: string | null }; text?: string }>;
  usage?: {
    prompt_tokens?: number;
    completion_tokens?: number;
    prompt_tokens_details?: { cached_tokens?: number };
  } | null;
}

/** What forwarding to a Text-input model uses: a dispatch and the clock. */
export type PassthroughServices = DispatchServices & Pick<Core, 'monotonic'>;

export async function startPassthrough<Chunk>(
  core: PassthroughServices,
  model: ServedModel,
  options: {
    path: 'chat/completions' | 'completions';
    request: Record<string, unknown>;
    call: CallContext;
    metrics: RequestMetrics;
    /** The client asked for the usage-only chunk. */
    includeUsage: boolean;
  },
): Promise<{ chunks: AsyncIterable<Chunk>; usage(): GenerationUsage }> {
  const { request, call, metrics } = options;
  const upstream = {
    ...request,
    model: upstreamName(model.card),
    nvext: undefined,
    stream: true,
    stream_options: { include_usage: true },
  };
  const { trace } = metrics;
  const sentAt = core.monotonic();
  const { stream, instance } = await dispatchTo(core, {
    model: model.name,
    // With tracing on, the server continues this request's span.
    call: trace ? { ...call, headers: { ...call.headers, traceparent: trace.traceparent } } : call,
    body: { path: options.path, request: upstream },
  });
  trace?.stage('dispatch', sentAt, core.monotonic(), {
    'switchboard.worker_id': instance.instanceId,
  });
  metrics.worker({ instanceId: instance.instanceId, type: 'decode' });
  const usage: GenerationUsage = { promptTokens: 0, completionTokens: 0 };
  let outcome: '' | 'cancelled' | 'internal' = 'cancelled';
  const chunks = (async function* () {
    try {
      for await (const item of stream) {
        const chunk = { ...(item as UpstreamChunk), model: model.name };
        if (chunk.usage) {
          usage.promptTokens = chunk.usage.prompt_tokens ?? 0;
          usage.completionTokens = chunk.usage.completion_tokens ?? 0;
          const cached = chunk.usage.prompt_tokens_details?.cached_tokens;
          if (cached !== undefined) usage.cachedTokens = cached;
          metrics.prompt(usage.promptTokens, usage.cachedTokens);
        }
        const pieces = chunk.choices?.filter((c) =>
          (c.delta?.content ?? c.text ?? '') !== ''
        ).length ?? 0;
        metrics.tokens(pieces);
        const usageOnly = (chunk.choices?.length ?? 0) === 0 && chunk.usage;
        if (usageOnly && !options.includeUsage) continue;
        if (!options.includeUsage) delete chunk.usage;
        yield chunk as Chunk;
      }
      outcome = call.signal.aborted ? 'cancelled' : '';
    } catch (error) {
      outcome = call.signal.aborted ? 'cancelled' : 'internal';
      throw error;
    } finally {
      metrics.finish({ errorType: outcome, outputTokens: usage.completionTokens });
    }
  })();
  return { chunks, usage: () => ({ ...usage }) };
}
