/**
 * Headless Chromium for e2e tests, driven by playwright-core against the system browser
 * (Debian's `chromium` package; never `playwright install`). playwright-core launches and drives
 * it the same way on Node, Bun and Deno.
 */
import { existsSync } from 'node:fs';
import { type Browser, chromium } from 'playwright-core';

export const CHROMIUM_PATH = '/usr/bin/chromium';

/** Why browser tests skip, or `false` when Chromium is installed. */
export const chromiumSkip: string | false = existsSync(CHROMIUM_PATH)
  ? false
  : `Chromium not found at "${CHROMIUM_PATH}" (apt package "chromium")`;

/** Hosts a test page may talk to: the server under test only. */
const LOCAL_HOSTS = new Set(['127.0.0.1', 'localhost', '[::1]']);

/** True when `url` stays on this machine (`data:` and `blob:` never leave the page). */
export function isLocalUrl(url: string): boolean {
  const parsed = new URL(url);
  if (parsed.protocol === 'data:' || parsed.protocol === 'blob:') return true;
  return LOCAL_HOSTS.has(parsed.hostname);
}

/**
 * Launches headless Chromium with no background traffic. Playwright gives it a fresh temporary
 * profile (`--user-data-dir`) and deletes it on `close()`; it refuses the flag in `args`.
 */
export function launchChromium(options: {
  /** @default 30_000 */
  timeoutMs?: number;
} = {}): Promise<Browser> {
  return chromium.launch({
    executablePath: CHROMIUM_PATH,
    headless: true,
    timeout: options.timeoutMs ?? 30_000,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
}
