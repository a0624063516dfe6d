/** Helpers the request-plane transports share. Private to this folder. */
import { PlaneError } from '../../core/plane/errors.ts';

export const textEncoder = new TextEncoder();
export const textDecoder = new TextDecoder();

/** `host:port` (or `[v6]:port`) into its parts; throws `PlaneError` of kind `protocol`. */
export function splitHostPort(hostPort: string): { host: string; port: number } {
  const match = /^(?:\[([^\]]+)\]|([^:/]+)):(\d{1,5})$/.exec(hostPort);
  const port = Number(match?.[3]);
  if (!match || port > 65535) {
    throw new PlaneError('protocol', `Invalid address "${hostPort}": expected host:port`);
  }
  return { host: match[1] ?? match[2]!, port };
}

export function joinHostPort(host: string, port: number): string {
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
}

/** The abort reason a handler's signal carries when the frontend or the worker ends a request. */
export function cancelled(message: string): DOMException {
  return new DOMException(message, 'AbortError');
}

/**
 * A worker's refusal of a request, as the error `send()` rejects with: overload is `overloaded`
 * (HTTP 503 on the frontend); a worker shutting down and an endpoint it does not serve (a stale
 * address) are `cannot_connect`, so the frontend tries another instance (the request never
 * started); anything else (decode errors, too large) is `protocol`.
 */
export function refusalError(text: string): PlaneError {
  if (text.startsWith('Server overloaded:')) return new PlaneError('overloaded', text);
  if (text.startsWith('Server unavailable:') || text.startsWith('Unknown endpoint:')) {
    return new PlaneError('cannot_connect', text);
  }
  return new PlaneError('protocol', text);
}

/** The refusal texts a worker answers with, shared by every transport. */
export const refusals = {
  unknownEndpoint: (path: string) => `Unknown endpoint: ${path}`,
  overloaded: (inFlight: number) => `Server overloaded: ${inFlight} requests in flight`,
  unavailable: () => 'Server unavailable: the worker is shutting down',
};
