/**
 * Image and video parts of a chat request -> Dynamo's `multi_modal_data` for the worker
 * (`PreprocessedRequest.multi_modal_data`, runtime reference §3.7): a map from the part type to
 * its media, each `{"Url": "<url>"}` (Rust's `MultimodalData::Url`), in the order they appear:
 *
 *   { "image_url": [{ "Url": "https://..." }], "video_url": [{ "Url": "data:video/mp4;base64,..." }] }
 *
 * The chat template renders a placeholder where each part was; the worker loads the media.
 * Accepted: `http(s)://` URLs and base64 `data:` URLs of the matching media type (`image/*` for
 * `image_url`, `video/*` for `video_url`), each within the size limit. Anything else is a 400
 * naming the part.
 */
import { ValidationError } from '../errors.ts';
import type { ChatMessage } from '../api/openai/schemas.ts';

export type MultimodalDataMap = Record<string, Array<{ Url: string }>>;

export interface MultimodalLimits {
  /** Largest decoded `data:` URL, in bytes. */
  maxDataBytes: number;
  /** Longest `http(s)` URL, in characters. @default 8192 */
  maxUrlLength?: number;
  /** Most media parts in one request. @default 64 */
  maxItems?: number;
}

const MEDIA: Record<string, { field: string; mime: string; noun: string }> = {
  image_url: { field: 'image_url', mime: 'image/', noun: 'image' },
  video_url: { field: 'video_url', mime: 'video/', noun: 'video' },
};

const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;

/** Bytes a base64 payload decodes to (without decoding it). */
function decodedLength(payload: string): number {
  const padding = payload.endsWith('==') ? 2 : payload.endsWith('=') ? 1 : 0;
  return Math.floor(payload.length * 3 / 4) - padding;
}

function checkUrl(
  url: string,
  kind: typeof MEDIA[string],
  param: string,
  limits: MultimodalLimits,
) {
  const quoted = JSON.stringify(url.slice(0, 40));
  if (url.startsWith('data:')) {
    const comma = url.indexOf(',');
    const header = comma < 0 ? '' : url.slice(5, comma);
    const [mime = '', ...flags] = header.split(';');
    if (comma < 0 || !flags.includes('base64')) {
      throw new ValidationError(
        `Invalid value for "${param}": a data URL must be base64 (data:${kind.mime}...;base64,...)`,
        { param },
      );
    }
    if (!mime.toLowerCase().startsWith(kind.mime)) {
      throw new ValidationError(
        `Invalid value for "${param}": unsupported media type "${mime || '(none)'}" for an ` +
          `${kind.noun} (expected ${kind.mime}*)`,
        { param },
      );
    }
    const payload = url.slice(comma + 1);
    if (!BASE64.test(payload) || payload.length % 4 !== 0) {
      throw new ValidationError(`Invalid value for "${param}": the data URL is not valid base64`, {
        param,
      });
    }
    const bytes = decodedLength(payload);
    if (bytes > limits.maxDataBytes) {
      throw new ValidationError(
        `Invalid value for "${param}": the ${kind.noun} is ${bytes} bytes, more than the ` +
          `${limits.maxDataBytes}-byte limit (DYN_MULTIMODAL_MAX_MB)`,
        { param },
      );
    }
    return;
  }
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new ValidationError(`Invalid value for "${param}": must be a URL (got ${quoted})`, {
      param,
    });
  }
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') {
    throw new ValidationError(
      `Invalid value for "${param}": unsupported URL scheme "${parsed.protocol}" (use http, ` +
        'https or a base64 data URL)',
      { param },
    );
  }
  const maxLength = limits.maxUrlLength ?? 8192;
  if (url.length > maxLength) {
    throw new ValidationError(
      `Invalid value for "${param}": the URL is longer than ${maxLength} characters`,
      { param },
    );
  }
}

/**
 * The `multi_modal_data` of `messages`, or undefined when they hold no media. Throws
 * `ValidationError` (400) for media it cannot forward: another part type (`input_audio`,
 * `file`), a URL scheme other than http(s) or data, a data URL of the wrong media type, or one
 * over the size limit.
 */
export function multimodalDataOf(
  messages: readonly ChatMessage[],
  limits: MultimodalLimits,
): MultimodalDataMap | undefined {
  let out: MultimodalDataMap | undefined;
  let count = 0;
  messages.forEach((message, i) => {
    if (!Array.isArray(message.content)) return;
    (message.content as Array<{ type?: string } & Record<string, unknown>>).forEach((part, j) => {
      const type = part?.type;
      if (type === 'text') return;
      const param = `messages[${i}].content[${j}]`;
      const kind = type ? MEDIA[type] : undefined;
      if (!kind) {
        throw new ValidationError(
          `Unsupported content part type ${JSON.stringify(type ?? null)} in "${param}": ` +
            'the frontend forwards text, image_url and video_url parts',
          { param: `${param}.type` },
        );
      }
      const url = (part[kind.field] as { url?: unknown } | undefined)?.url;
      if (typeof url !== 'string') {
        throw new ValidationError(`Missing required parameter "${param}.${kind.field}.url"`, {
          param: `${param}.${kind.field}.url`,
        });
      }
      checkUrl(url, kind, `${param}.${kind.field}.url`, limits);
      count++;
      if (count > (limits.maxItems ?? 64)) {
        throw new ValidationError(
          `Too many media parts: at most ${limits.maxItems ?? 64} images and videos per request`,
          { param },
        );
      }
      out ??= {};
      (out[kind.field] ??= []).push({ Url: url });
    });
  });
  return out;
}

/** The media kinds (`image`, `video`) `messages` carry. */
export function mediaKindsOf(messages: readonly { content?: unknown }[]): Set<string> {
  const kinds = new Set<string>();
  for (const message of messages) {
    if (!Array.isArray(message.content)) continue;
    for (const part of message.content as Array<{ type?: string }>) {
      const kind = part?.type ? MEDIA[part.type] : undefined;
      if (kind) kinds.add(kind.noun);
    }
  }
  return kinds;
}
