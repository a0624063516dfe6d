/**
 * What an inference route hands the core: request id, headers to propagate, nvext merged with the
 * routing headers, and a signal that aborts when the client goes away (`cancel()` for streams,
 * whose disconnect the SSE writer reports).
 */
import type { Context } from 'hono';
import type { CallContext } from '../core/generate/call-context.ts';
import { applyRoutingHeaders, type NvExt } from '../core/api/openai/nvext.ts';
import { refuseUnsupportedHints } from '../core/api/openai/agent-hints.ts';
import type { AppEnv } from './types.ts';

const PROPAGATED = ['traceparent', 'tracestate'];
const NO_HEADERS = new Headers();

export function callContext(
  c: Context<AppEnv>,
  nvext: NvExt | null | undefined,
  options: { stream: boolean },
): CallContext & { cancel(): void } {
  const core = c.get('core');
  const requestId = c.get('requestId');
  const headers: Record<string, string> = { 'x-request-id': requestId };
  for (const name of PROPAGATED) {
    const value = c.req.header(name);
    if (value) headers[name] = value;
  }
  const ignoreHeaders = core.config.ignoreRoutingHeaders && !c.get('trusted');
  const controller = new AbortController();
  // For a unary answer the request's own signal reports the disconnect. A stream's end is
  // reported by the SSE writer instead (Deno also aborts the request signal after a response).
  const signal = options.stream
    ? controller.signal
    : AbortSignal.any([controller.signal, c.req.raw.signal]);
  const merged = applyRoutingHeaders(nvext, ignoreHeaders ? NO_HEADERS : c.req.raw.headers, {
    enabled: !core.config.disableFrontendNvext,
  });
  refuseUnsupportedHints(merged);
  return {
    requestId,
    headers,
    signal,
    // Routing and priority headers from an untrusted client are ignored when so configured.
    nvext: merged,
    cancel: () => controller.abort(),
  };
}

/** Annotation events a request asked for (`nvext.annotations`) that the HTTP layer emits. */
export function annotationEvents(call: CallContext): Array<{ event: string; comment: string }> {
  const wanted = call.nvext?.annotations ?? [];
  return wanted.includes('request_id')
    ? [{ event: 'request_id', comment: JSON.stringify(call.requestId) }]
    : [];
}
