/** Swagger UI files read from the installed `swagger-ui-dist` package, cached after first use. */
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import type { AssetSource } from '../http/types.ts';

const TYPES: Record<string, string> = {
  'swagger-ui.css': 'text/css; charset=utf-8',
  'swagger-ui-bundle.js': 'text/javascript; charset=utf-8',
  'favicon-32x32.png': 'image/png',
  'favicon-16x16.png': 'image/png',
};

export function swaggerUiAssets(): AssetSource {
  const cache = new Map<string, Promise<Uint8Array<ArrayBuffer>>>();
  const dir = new URL('./', import.meta.resolve('swagger-ui-dist/package.json'));
  return {
    async get(name) {
      // Own keys only: `constructor`, `__proto__` or `toString` are not assets (404, not 500).
      if (!Object.hasOwn(TYPES, name)) return undefined;
      const contentType = TYPES[name] as string;
      let body = cache.get(name);
      if (!body) {
        body = readFile(fileURLToPath(new URL(name, dir))).then((b) => new Uint8Array(b));
        cache.set(name, body);
      }
      return { body: await body, contentType };
    },
  };
}
