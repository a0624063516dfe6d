/**
 * The WebSocket mode of `/v1/responses` (OpenAI's "WebSocket mode"): a client opens a WebSocket
 * on the Responses path and sends `response.create` messages, each the body of
 * `POST /v1/responses` plus `"type": "response.create"` (`stream` is implicit). The server sends
 * back the same events a streamed response has, one JSON message each, and processes a
 * connection's messages one at a time, in order.
 *
 * - The connection keeps its latest response, stored or not, so the next `response.create` can
 *   continue it with `previous_response_id` even with `store: false`; older ones come from the
 *   response store.
 * - `generate: false` prepares a response without running the model (a warm-up): it answers
 *   `response.created` and `response.completed` with no output, and can be continued.
 * - The create body may also come as `{"type":"response.create","response":{...}}`; a
 *   `stream_id` is echoed on every event of its response (messages are still handled in order).
 * - A message that fails before its response starts gets one `error` event,
 *   `{"type":"error","status":400,"error":{"type","code","message","param"}}`; the connection
 *   stays open. A failure mid-response ends that response with `response.failed`.
 * - Closing the socket cancels the response in flight (the worker is told).
 */
import type { Core } from '../core/core.ts';
import {
  type ApiError,
  ModelNotFoundError,
  NotReadyError,
  toApiError,
  ValidationError,
} from '../core/errors.ts';
import { ResponsesRequestSchema } from '../core/api/openai/schemas.ts';
import { applyRoutingHeaders } from '../core/api/openai/nvext.ts';
import { issuesToValidationError, validateResponsesRequest } from '../core/api/openai/validate.ts';
import { buildResponse } from '../core/api/responses/_response.ts';
import { fieldsOf, keep, planResponse, streamResponse } from '../core/api/responses/run.ts';
import type { StoredResponse } from '../core/api/responses/store.ts';
import type { WsPeer, WsSession } from './types.ts';
import { type BodyParser, parseJsonBody, requestLimitsOf } from './intake.ts';

/** Messages a connection may have waiting behind the one in flight. */
const MAX_QUEUED = 32;

/** The error event of WebSocket mode. */
export function errorEvent(error: ApiError) {
  return {
    type: 'error' as const,
    status: error.status,
    error: { type: error.type, code: error.code, message: error.message, param: error.param },
  };
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * The `accept()` of the server's WebSocket options: sessions on the Responses path. Takes the
 * whole `Core`, as `createResponsesSession()` does.
 */
export function responsesWebSocket(core: Core, bodyParser?: BodyParser) {
  return (request: Request): ((peer: WsPeer) => WsSession) | undefined => {
    if (request.method !== 'GET') return undefined;
    if (new URL(request.url).pathname !== core.config.responsesPath) return undefined;
    // A copy: Deno closes the upgrade request, and its headers with it.
    const headers = new Headers(request.headers);
    return (peer) => createResponsesSession(core, peer, headers, bodyParser);
  };
}

/**
 * One connection's session: its message queue, its latest response, its response in flight.
 * Takes the whole `Core`: it runs Responses requests (`ResponsesServices`, every member but the
 * lifecycle) and checks the lifecycle.
 */
export function createResponsesSession(
  core: Core,
  peer: WsPeer,
  headers: Headers,
  bodyParser?: BodyParser,
): WsSession {
  const queue: string[] = [];
  let running = false;
  let closed = false;
  let inFlight: AbortController | undefined;
  let latest: StoredResponse | undefined;
  const sendRaw = (data: unknown) => peer.send(JSON.stringify(data));
  const limits = requestLimitsOf(core.config);
  const threadChars = Math.floor(core.config.httpBodyThreadMb * 1024 * 1024);

  /**
   * A message is a request body: parsed leniently and checked against the same budget
   * (docs/security.md), in the body thread when it is as large as a body that would go there.
   */
  async function parse(text: string) {
    const body = bodyParser && threadChars > 0 && text.length >= threadChars
      ? await bodyParser.parse([new TextEncoder().encode(text)], limits)
      : parseJsonBody(text, limits);
    if (!isObject(body)) throw new ValidationError('The message must be a JSON object');
    if (body.type !== 'response.create') {
      throw new ValidationError(
        `Unsupported event type ${JSON.stringify(body.type ?? null)}: send "response.create"`,
        { param: 'type' },
      );
    }
    // The create body is the message itself (OpenAI's WebSocket mode) or, in the envelope form
    // some clients send, its `response` object; `stream_id` names the lane, echoed on events.
    const envelope = isObject(body.response) && body.model === undefined;
    const { type: _type, stream_id: streamId, ...flat } = body;
    if (streamId !== undefined && typeof streamId !== 'string') {
      throw new ValidationError('Invalid type for "stream_id": expected a string', {
        param: 'stream_id',
      });
    }
    const { stream, generate, ...fields } = envelope
      ? (body.response as Record<string, unknown>)
      : flat;
    if (stream === false) {
      throw new ValidationError('"stream" is implicit over WebSocket and cannot be false', {
        param: 'stream',
      });
    }
    if (fields.background === true) {
      throw new ValidationError('"background" is not supported over WebSocket', {
        param: 'background',
      });
    }
    if (generate !== undefined && typeof generate !== 'boolean') {
      throw new ValidationError('Invalid type for "generate": expected a boolean', {
        param: 'generate',
      });
    }
    const parsed = ResponsesRequestSchema.safeParse(fields);
    if (!parsed.success) throw issuesToValidationError(parsed.error.issues, fields);
    return {
      request: validateResponsesRequest(parsed.data),
      generate: generate !== false,
      streamId: streamId as string | undefined,
    };
  }

  async function handle(text: string) {
    const requestId = core.newId();
    const controller = new AbortController();
    inFlight = controller;
    let lane: { stream_id?: string } = {};
    try {
      const { request, generate, streamId } = await parse(text);
      if (streamId !== undefined) lane = { stream_id: streamId };
      const send = (data: object) => sendRaw({ ...data, ...lane });
      if (core.lifecycle.phase !== 'ready') throw new NotReadyError();
      const plan = await planResponse(core, request, { local: latest, warmup: !generate });
      const onRecord = (record: StoredResponse) => {
        latest = record;
      };
      if (!generate) {
        if (!core.models.get(request.model)) throw new ModelNotFoundError(request.model);
        const now = Math.floor(core.now() / 1000);
        const fields = { id: plan.responseId, model: request.model, createdAt: now, output: [] };
        const created = buildResponse(request, {
          ...fieldsOf(plan),
          ...fields,
          status: 'in_progress',
          completedAt: null,
        });
        const done = buildResponse(request, {
          ...fieldsOf(plan),
          ...fields,
          status: 'completed',
          completedAt: now,
        });
        send({ type: 'response.created', sequence_number: 0, response: created });
        await keep(core, plan, done, { onRecord });
        send({ type: 'response.completed', sequence_number: 1, response: done });
        return;
      }
      const call = {
        requestId,
        headers: { 'x-request-id': requestId },
        signal: controller.signal,
        nvext: applyRoutingHeaders(plan.chat.nvext, headers, {
          enabled: !core.config.disableFrontendNvext,
        }),
      };
      const { started, events } = await streamResponse(core, plan, call, { onRecord });
      for await (const event of events) {
        if (closed) break;
        send(event.data);
      }
      if (closed) {
        started.metrics.disconnected();
        await events.return(undefined);
      }
    } catch (thrown) {
      const error = toApiError(thrown);
      if (error.status >= 500) {
        core.logger.error('websocket response failed', { request_id: requestId, error: thrown });
      }
      if (!closed) sendRaw({ ...errorEvent(error), ...lane });
    } finally {
      inFlight = undefined;
    }
  }

  async function pump() {
    if (running) return;
    running = true;
    while (!closed && queue.length > 0) await handle(queue.shift()!);
    running = false;
  }

  return {
    message(text) {
      if (closed) return;
      if (queue.length >= MAX_QUEUED) {
        sendRaw(errorEvent(
          new ValidationError(
            `Too many queued messages: at most ${MAX_QUEUED} may wait behind the response in flight`,
          ),
        ));
        return;
      }
      queue.push(text);
      void pump();
    },
    closed() {
      closed = true;
      queue.length = 0;
      inFlight?.abort();
    },
  };
}
