import assert from 'node:assert/strict';
import { mkdir } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import process from 'node:process';
import { describe, test } from 'node:test';
import type { Browser } from 'playwright-core';
import { chromiumSkip, isLocalUrl, launchChromium } from '../helpers/browser.ts';
import { currentRuntime, ROOT, type RunningServer, startFrontend } from '../helpers/process.ts';

/** Written only with SAVE_SCREENSHOT=1, so ordinary runs leave the checked-in image alone. */
const SCREENSHOT = join(ROOT, 'docs/images/docs-ui.png');

describe(`Swagger UI on ${currentRuntime()}`, () => {
  test(
    'GET /docs renders every operation from /openapi.json using only the local server',
    { skip: chromiumSkip, timeout: 90_000 },
    async () => {
      let server: RunningServer | undefined;
      let browser: Browser | undefined;
      try {
        server = await startFrontend();
        browser = await launchChromium();
        const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
        page.setDefaultTimeout(30_000);
        const requested: string[] = [];
        const pageErrors: string[] = [];
        page.on('request', (request) => void requested.push(request.url()));
        page.on('pageerror', (error) => void pageErrors.push(error.message));

        const response = await page.goto(`${server.url}/docs`);
        assert.equal(response?.status(), 200);
        await page.locator('.opblock .opblock-summary-path').first().waitFor();
        const title = await page.locator('.info .title').textContent();
        const operations = await page.locator('.opblock').evaluateAll((blocks) =>
          blocks.map((block) => {
            const method = block.querySelector('.opblock-summary-method')?.textContent ?? '';
            // The summary shows the path split by <wbr> tags and keeps it whole in data-path.
            const path = block.querySelector('.opblock-summary-path')?.getAttribute('data-path');
            return `${method.trim()} ${path ?? ''}`;
          })
        );

        assert.match(title ?? '', /Switchboard/);
        for (
          const operation of [
            'GET /health',
            'GET /live',
            'GET /metrics',
            'GET /openapi.json',
            'GET /docs',
            'GET /busy_threshold',
            'POST /busy_threshold',
            'GET /v1/models',
          ]
        ) {
          assert.ok(operations.includes(operation), `${operation} not in ${operations.join(', ')}`);
        }
        assert.ok(requested.some((url) => url.endsWith('/openapi.json')), requested.join('\n'));
        assert.deepEqual(requested.filter((url) => !isLocalUrl(url)), []);
        assert.deepEqual(pageErrors, []);

        if (process.env.SAVE_SCREENSHOT === '1') {
          await mkdir(dirname(SCREENSHOT), { recursive: true });
          await page.screenshot({ path: SCREENSHOT, fullPage: true });
        }
      } finally {
        await browser?.close();
        await server?.stop();
      }
    },
  );
});
