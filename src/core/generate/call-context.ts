/**
 * What every generation entry point (chat, completions, embeddings, media, passthrough) shares:
 * the per-call context from the HTTP layer, the model lookup, and the upstream model name of a
 * registered OpenAI-compatible server. Its own module so those entry points import it, not each
 * other (no import cycle, `scripts/check-cycles.ts`).
 */
import type { Core } from '../core.ts';
import type { ServedModel } from '../discovery/models.ts';
import { ModelNotFoundError, ServiceUnavailableError } from '../errors.ts';
import type { NvExt } from '../api/openai/nvext.ts';
import type { EndpointLabel } from '../metrics/request-metrics.ts';

export interface CallContext {
  requestId: string;
  /** Headers to propagate to the worker (`x-request-id`, `traceparent`, ...). */
  headers: Record<string, string>;
  /** Aborts when the client goes away. */
  signal: AbortSignal;
  nvext?: NvExt;
  /** The metrics `endpoint` label. @default the route's own (chat_completions / completions) */
  endpoint?: EndpointLabel;
  /**
   * Put the matched stop string or stop id in a finishing chat choice as `stop_reason` (vLLM's
   * field), for translators that report it (Anthropic's `stop_sequence`). @default false
   */
  stopReasons?: boolean;
}

/** What looking a model up reads: the model registry. */
export type ModelLookup = Pick<Core, 'models'>;

/** Resolves the model and its live workers, or the right error (404 / 503). */
export function servedModel(core: ModelLookup, name: string): ServedModel {
  const model = core.models.get(name);
  if (!model) throw new ModelNotFoundError(name);
  if (core.models.instances(name).length === 0) {
    throw new ServiceUnavailableError(
      `Model "${name}" has no live worker right now; retry shortly`,
    );
  }
  return model;
}

/** The model name a registered OpenAI-compatible server knows (`switchboard register`). */
export function upstreamName(card: { display_name: string; user_data?: unknown }): string {
  const data = card.user_data as { upstream_model?: unknown } | undefined;
  return typeof data?.upstream_model === 'string' ? data.upstream_model : card.display_name;
}
