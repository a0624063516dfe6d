/**
 * Zod field builders shared by the OpenAI request schemas and `nvext`. Their error messages are
 * lower-case fragments that name the rule and the value received (`must be between 0 and 2 (got
 * 3)`); `issuesToValidationError()` in `validate.ts` prefixes them with the field's path. Ranges
 * live here, in the schemas, so that they show in the OpenAPI document.
 */
import { z } from 'zod';

export const U32_MAX = 4294967295;
export const U64_MAX = 18446744073709551615n;

/** A short, safe rendering of a received value for an error message (never the whole of it). */
export function show(value: unknown): string {
  if (typeof value === 'string') {
    const text = value.length > 40 ? `${value.slice(0, 40)}…` : value;
    return JSON.stringify(text);
  }
  if (typeof value === 'bigint') return value.toString();
  if (typeof value === 'number') return String(value);
  if (value === null || value === undefined || typeof value === 'boolean') return String(value);
  if (Array.isArray(value)) return `an array of ${value.length}`;
  return 'an object';
}

const got = (issue: { input?: unknown }) => ` (got ${show(issue.input)})`;

/** A number in `[min, max]`, or `(min, max]` with `exclusiveMin`. */
export function between(min: number, max: number, options: { exclusiveMin?: boolean } = {}) {
  const rule = options.exclusiveMin
    ? `must be greater than ${min} and at most ${max}`
    : `must be between ${min} and ${max}`;
  const error = (issue: { input?: unknown }) => rule + got(issue);
  const base = z.number({ error: (issue) => `must be a number${got(issue)}` });
  return (options.exclusiveMin ? base.gt(min, { error }) : base.min(min, { error })).max(max, {
    error,
  });
}

/** An integer in `[min, max]` (JSON numbers only: never a string). */
export function intBetween(min: number, max: number) {
  const error = (issue: { input?: unknown }) =>
    `must be an integer between ${min} and ${max}${got(issue)}`;
  return z.number({ error }).int({ error }).min(min, { error }).max(max, { error });
}

/** An integer of at least `min`, up to 2^53 - 1. */
export function intAtLeast(min: number) {
  const rule = min === 1 ? 'must be an integer greater than 0' : `must be an integer >= ${min}`;
  const error = (issue: { input?: unknown }) => rule + got(issue);
  return z.number({ error }).int({ error }).min(min, { error });
}

/** A token id or any other u32. */
export const u32 = () => intBetween(0, U32_MAX);

/** A string of at least one character. */
export const nonEmptyString = () =>
  z.string().min(1, { error: (issue) => `must not be empty${got(issue)}` });

/** An array of at least `min` and at most `max` entries. */
export function arrayOf<T extends z.ZodType>(item: T, options: { min?: number; max?: number }) {
  let schema = z.array(item);
  const { min, max } = options;
  if (min !== undefined) {
    schema = schema.min(min, {
      error: (issue) =>
        min === 1
          ? 'must not be empty'
          : `must have at least ${min} entries (got ${lengthOf(issue.input)})`,
    });
  }
  if (max !== undefined) {
    schema = schema.max(max, {
      error: (issue) => `must have at most ${max} entries (got ${lengthOf(issue.input)})`,
    });
  }
  return schema;
}

function lengthOf(value: unknown): number | string {
  return Array.isArray(value) ? value.length : '?';
}

const DECIMAL = /^\d{1,20}$/;
const HEX = /^0[xX][0-9a-fA-F]{1,16}$/;

/** Lower-case hex of a u64 given as a JSON number, a bigint, a decimal string or a 0x string. */
export function toU64Hex(value: unknown): string | undefined {
  let n: bigint;
  if (typeof value === 'number') {
    if (!Number.isSafeInteger(value) || value < 0) return undefined;
    n = BigInt(value);
  } else if (typeof value === 'bigint') {
    n = value;
  } else if (typeof value === 'string' && (DECIMAL.test(value) || HEX.test(value))) {
    n = BigInt(value);
  } else {
    return undefined;
  }
  if (n < 0n || n > U64_MAX) return undefined;
  return n.toString(16);
}

/**
 * A u64 id (a worker instance id). Accepts a JSON number up to 2^53 - 1, a decimal string, a
 * `0x`-prefixed hex string, or a bigint (from an exact JSON parser); the parsed value is the
 * lower-case hex string without prefix, as instance ids appear in discovery keys. A JSON number
 * above 2^53 has already lost precision when parsed, so it is refused: send a string.
 */
export function u64Id() {
  return z.union([z.number(), z.string(), z.bigint()])
    .transform((value, ctx) => {
      const hex = toU64Hex(value);
      if (hex === undefined) {
        ctx.issues.push({
          code: 'custom',
          input: value,
          message: typeof value === 'number' && value > Number.MAX_SAFE_INTEGER
            ? `must be sent as a string above 2^53 (got ${show(value)})`
            : `must be a u64 as a number, a decimal string or a 0x hex string (got ${show(value)})`,
        });
        return z.NEVER;
      }
      return hex;
    })
    .meta({
      description: 'u64 worker instance id: a number (exact up to 2^53), or a decimal or 0x-hex ' +
        'string (exact for every u64).',
    });
}
