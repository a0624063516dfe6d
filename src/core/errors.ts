/**
 * One error hierarchy for everything a client can be told. Each subclass pins the HTTP status,
 * the OpenAI `type` and `code`; `toErrorBody()` serialises it in the shape of the API surface the
 * request came in on. Anything that is not an `ApiError` is an internal error whose message never
 * reaches the client.
 */

/** The API surface a route belongs to decides the error envelope. */
export type ErrorSurface = 'openai' | 'anthropic' | 'admin';

export interface ApiErrorOptions {
  /** Path of the offending request field, such as `messages[0].role`. */
  param?: string | null;
  cause?: unknown;
}

export abstract class ApiError extends Error {
  abstract readonly status: number;
  /** OpenAI `error.type`. */
  abstract readonly type: string;
  /** Anthropic `error.type`. */
  abstract readonly anthropicType: string;
  readonly code: string | null = null;
  readonly param: string | null;

  constructor(message: string, options: ApiErrorOptions = {}) {
    super(message, { cause: options.cause });
    this.name = new.target.name;
    this.param = options.param ?? null;
  }
}

export class BadRequestError extends ApiError {
  readonly status = 400;
  readonly type = 'invalid_request_error';
  readonly anthropicType = 'invalid_request_error';
}

/** A request field failed validation; `param` names it. */
export class ValidationError extends BadRequestError {
  override readonly code: string | null = 'invalid_value';
}

export class InvalidJsonError extends BadRequestError {
  override readonly code = 'invalid_json';
}

/** No API key, or not one of the configured keys. */
export class AuthenticationError extends ApiError {
  readonly status = 401;
  readonly type = 'invalid_request_error';
  readonly anthropicType = 'authentication_error';
  override readonly code = 'invalid_api_key';
}

/** A valid key that may not use this route (an API key on the admin API). */
export class PermissionDeniedError extends ApiError {
  readonly status = 403;
  readonly type = 'invalid_request_error';
  readonly anthropicType = 'permission_error';
  override readonly code = 'permission_denied';
}

/** The client took too long to send its request body. */
export class RequestTimeoutError extends ApiError {
  readonly status = 408;
  readonly type = 'invalid_request_error';
  readonly anthropicType = 'invalid_request_error';
  override readonly code = 'request_timeout';
}

/** Any other 4xx a library raised on the client's behalf (its status and message pass on). */
export class ClientRequestError extends ApiError {
  readonly type = 'invalid_request_error';
  readonly anthropicType = 'invalid_request_error';
  override readonly code = 'invalid_request';
  readonly status: number;
  constructor(status: number, message: string, options: ApiErrorOptions = {}) {
    super(message, options);
    this.status = status;
  }
}

export class NotFoundError extends ApiError {
  readonly status = 404;
  readonly type: string = 'not_found_error';
  readonly anthropicType = 'not_found_error';
  override readonly code: string | null = 'not_found';
}

export class RouteNotFoundError extends NotFoundError {
  override readonly code = 'route_not_found';
}

export class ModelNotFoundError extends NotFoundError {
  override readonly type = 'invalid_request_error';
  override readonly code = 'model_not_found';
  constructor(model: string, options: ApiErrorOptions = {}) {
    super(`Model "${model}" not found`, { param: 'model', ...options });
  }
}

export class MethodNotAllowedError extends ApiError {
  readonly status = 405;
  readonly type = 'invalid_request_error';
  readonly anthropicType = 'invalid_request_error';
  override readonly code = 'method_not_allowed';
}

export class PayloadTooLargeError extends ApiError {
  readonly status = 413;
  readonly type = 'invalid_request_error';
  readonly anthropicType = 'request_too_large';
  override readonly code = 'request_too_large';
}

export class UnsupportedMediaTypeError extends ApiError {
  readonly status = 415;
  readonly type = 'invalid_request_error';
  readonly anthropicType = 'invalid_request_error';
  override readonly code = 'unsupported_media_type';
}

export class CancelledError extends ApiError {
  readonly status = 499;
  readonly type = 'request_cancelled';
  readonly anthropicType = 'api_error';
  override readonly code = 'request_cancelled';
}

export class InternalError extends ApiError {
  readonly status = 500;
  readonly type = 'internal_server_error';
  readonly anthropicType = 'api_error';
  override readonly code = 'internal_error';
}

export class NotImplementedError extends ApiError {
  readonly status = 501;
  readonly type = 'not_implemented';
  readonly anthropicType = 'invalid_request_error';
  override readonly code = 'not_implemented';
}

export class ServiceUnavailableError extends ApiError {
  readonly status = 503;
  readonly type = 'service_unavailable';
  readonly anthropicType = 'overloaded_error';
  override readonly code: string | null = 'service_unavailable';
}

export class NotReadyError extends ServiceUnavailableError {
  override readonly code = 'not_ready';
  constructor(options: ApiErrorOptions = {}) {
    super('Service is not ready', options);
  }
}

/** Every worker is busy; the status is `DYN_HTTP_OVERLOAD_STATUS_CODE`. */
export class OverloadedError extends ApiError {
  readonly type = 'service_unavailable';
  readonly anthropicType = 'overloaded_error';
  override readonly code = 'overloaded';
  readonly status: number;
  /** Seconds for the `Retry-After` header. */
  readonly retryAfter?: number;
  constructor(status: number, options: ApiErrorOptions & { retryAfter?: number } = {}) {
    super('Service temporarily overloaded: all workers are busy, please retry later', options);
    this.status = status;
    if (options.retryAfter !== undefined) this.retryAfter = options.retryAfter;
  }
}

/** An OpenAI-compatible engine refused the request with a 4xx; its status and message pass on. */
export class UpstreamRejectedError extends ApiError {
  readonly type = 'invalid_request_error';
  readonly anthropicType = 'invalid_request_error';
  override readonly code = 'upstream_rejected';
  readonly status: number;
  constructor(status: number, message: string, options: ApiErrorOptions = {}) {
    super(message, options);
    this.status = status;
  }
}

/** Turns anything thrown into an `ApiError`; unknown errors become a generic 500. */
export function toApiError(error: unknown): ApiError {
  if (error instanceof ApiError) return error;
  return new InternalError('Internal server error', { cause: error });
}

export type ErrorBody =
  | { error: { message: string; type: string; param: string | null; code: string | null } }
  | { type: 'error'; error: { type: string; message: string } }
  | { error: string };

/** The JSON body of an error, in the envelope of `surface`. */
export function toErrorBody(error: ApiError, surface: ErrorSurface): ErrorBody {
  switch (surface) {
    case 'anthropic':
      return { type: 'error', error: { type: error.anthropicType, message: error.message } };
    case 'admin':
      return { error: error.message };
    default:
      return {
        error: { message: error.message, type: error.type, param: error.param, code: error.code },
      };
  }
}

/** `GET`/`DELETE /v1/responses/{id}` of a response that was never stored, expired or deleted. */
export class ResponseNotFoundError extends NotFoundError {
  override readonly type = 'invalid_request_error';
  constructor(id: string, options: ApiErrorOptions = {}) {
    super(`Response with id "${id}" not found`, options);
  }
}

/** `previous_response_id` names a response the store does not hold. */
export class PreviousResponseNotFoundError extends NotFoundError {
  override readonly type = 'invalid_request_error';
  override readonly code = 'previous_response_not_found';
  constructor(id: string, options: ApiErrorOptions = {}) {
    super(`Previous response with id "${id}" not found`, {
      param: 'previous_response_id',
      ...options,
    });
  }
}
