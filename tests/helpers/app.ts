/** Builds an in-process app with fake ports, for tests that do not need a real server. */
import { createPromMetricFactory } from '../../src/adapters/prom-metrics.ts';
import { resolveConfig } from '../../src/core/config.ts';
import { createCore } from '../../src/core/core.ts';
import { createJsonLogger } from '../../src/core/logger.ts';
import { createApp } from '../../src/http/app.ts';
import type { AssetSource, RouteModule } from '../../src/http/types.ts';
import { routes as manifest } from '../../routes/_manifest.gen.ts';

export interface TestAppOptions {
  argv?: string[];
  env?: Record<string, string>;
  routes?: readonly RouteModule[];
  assets?: AssetSource;
  /** Leave the lifecycle in `starting`. @default false */
  starting?: boolean;
}

export function testApp(options: TestAppOptions = {}) {
  const resolved = resolveConfig({ argv: options.argv ?? [], env: options.env ?? {} });
  if (!resolved.ok) throw new Error(resolved.errors.join('\n'));
  const logs: Record<string, unknown>[] = [];
  const logger = createJsonLogger({ write: (line) => logs.push(JSON.parse(line)), level: 'debug' });
  let ids = 0;
  const core = createCore(
    { logger, metrics: createPromMetricFactory(), newId: () => `req-${++ids}` },
    resolved.config,
  );
  if (!options.starting) core.lifecycle.markReady();
  const app = createApp(options.routes ?? manifest, core, { assets: options.assets });
  const json = (path: string, body: unknown, headers: Record<string, string> = {}) =>
    app.request(path, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...headers },
      body: typeof body === 'string' ? body : JSON.stringify(body),
    });
  return { app, core, logs, json };
}
