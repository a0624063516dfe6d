/**
 * The `compaction` item of `POST /v1/responses/compact`: its `encrypted_content` is base64 of
 * `{"summary": "..."}`. Opaque to clients, as OpenAI's is, but not encrypted: anyone holding the
 * item can read the summary.
 */

/** The text a `compaction` item carries: base64 of `{"summary": ...}` (opaque, not encrypted). */
export function encodeCompaction(summary: string): string {
  const bytes = new TextEncoder().encode(JSON.stringify({ summary }));
  let binary = '';
  for (const byte of bytes) binary += String.fromCharCode(byte);
  return btoa(binary);
}

/** The summary of a `compaction` item this server made, or undefined for anything else. */
export function decodeCompaction(encrypted: unknown): string | undefined {
  if (typeof encrypted !== 'string') return undefined;
  try {
    const binary = atob(encrypted);
    const bytes = Uint8Array.from(binary, (c) => c.charCodeAt(0));
    const parsed = JSON.parse(new TextDecoder().decode(bytes)) as { summary?: unknown };
    return typeof parsed.summary === 'string' ? parsed.summary : undefined;
  } catch {
    return undefined;
  }
}
