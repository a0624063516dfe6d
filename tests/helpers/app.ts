/** Builds an in-process app with fake ports, for tests that do not need a real server. */
import { createPromMetricFactory } from '../../src/adapters/prom-metrics.ts';
import { resolveConfig } from '../../src/core/config.ts';
import type { Core } from '../../src/core/core.ts';
import type { ModelCard } from '../../src/core/discovery/model-card.ts';
import { createJsonLogger } from '../../src/core/logger.ts';
import { assembleFrontend } from '../../src/commands/assemble.ts';
import type { AssetSource, RouteModule } from '../../src/http/types.ts';

export interface TestAppOptions {
  argv?: string[];
  env?: Record<string, string>;
  routes?: readonly RouteModule[];
  assets?: AssetSource;
  /** Leave the lifecycle in `starting`. @default false */
  starting?: boolean;
}

/** A minimal valid model card, as a mocker worker would publish it. */
export function testCard(name: string, overrides: Partial<ModelCard> = {}): ModelCard {
  return {
    display_name: name,
    kv_cache_block_size: 16,
    model_type: 'Chat | Completions',
    model_input: 'Tokens',
    runtime_config: { context_length: 4096, total_kv_blocks: 1024 },
    ...overrides,
  };
}

/** Registers `card` as served by one worker instance with a tcp address. */
export function addWorker(core: Core, card: ModelCard, instanceId = '1a'): void {
  const endpoint = { namespace: 'dynamo', component: 'backend', endpoint: 'generate' };
  const added = core.models.addCard({ ...endpoint, instanceId }, card);
  if (!added.ok) throw new Error(added.reason);
  core.models.setInstance({
    instanceId,
    endpoint,
    transport: { tcp: `127.0.0.1:1/${instanceId}/generate` },
  });
}

export function testApp(options: TestAppOptions = {}) {
  const resolved = resolveConfig({ argv: options.argv ?? [], env: options.env ?? {} });
  if (!resolved.ok) throw new Error(resolved.errors.join('\n'));
  const logs: Record<string, unknown>[] = [];
  const logger = createJsonLogger({ write: (line) => logs.push(JSON.parse(line)), level: 'debug' });
  let ids = 0;
  const { core, app } = assembleFrontend(resolved.config, {
    ports: {
      logger,
      metrics: createPromMetricFactory(),
      newId: () => `req-${++ids}`,
      now: () => 1_700_000_000_000,
    },
    routes: options.routes,
    app: { assets: options.assets },
  });
  if (!options.starting) core.lifecycle.markReady();
  const json = (path: string, body: unknown, headers: Record<string, string> = {}) =>
    app.request(path, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...headers },
      body: typeof body === 'string' ? body : JSON.stringify(body),
    });
  return { app, core, logs, json };
}
