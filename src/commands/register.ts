/**
 * `switchboard register`: puts a plain OpenAI-compatible server (vLLM, SGLang, llama.cpp) behind
 * Switchboard. This process holds the registration (a model card and an endpoint whose transport
 * is `{"openai": "<url>/v1"}`), checks the server every few seconds, and takes the endpoint out
 * of discovery while the server does not answer. The frontend calls the server directly.
 */
import { createDiscovery, type JsonObject } from '../core/discovery/discovery.ts';
import { type ModelCard, slugify } from '../core/discovery/model-card.ts';
import { modelCardFor } from '../core/discovery/model-dir.ts';
import type { Logger } from '../core/logger.ts';
import { type RegisterConfig, registerEndpoint } from '../worker/register-config.ts';
import { createInfra, type Env, InfraUnavailableError, type LocalBus } from '../runtime/infra.ts';
import { createBlockHasher } from '../core/router/kv/hash.ts';
import {
  createEngineEventDecoder,
  subscribeEngineEvents,
} from '../adapters/events/engine-events.ts';
import { createWorkerRuntime } from '../worker/runtime.ts';
import { parserRuntimeConfig } from '../worker/parser-flags.ts';
import { createNodeNetwork } from '../runtime/net.ts';
import { readModelDir } from '../runtime/model-dir.ts';

export interface Registration {
  instanceId: string;
  card: ModelCard;
  close(): Promise<void>;
}

/** `http://h:8000` or `http://h:8000/v1` -> `http://h:8000/v1` */
export function v1Url(url: string): string {
  const base = url.replace(/\/+$/, '');
  return base.endsWith('/v1') ? base : `${base}/v1`;
}

interface ModelsAnswer {
  data?: Array<{ id?: string; max_model_len?: number }>;
}

async function fetchModels(
  v1: string,
  timeoutMs: number,
  apiKey: string | undefined,
): Promise<ModelsAnswer> {
  const response = await fetch(`${v1}/models`, {
    signal: AbortSignal.timeout(timeoutMs),
    ...(apiKey ? { headers: { authorization: `Bearer ${apiKey}` } } : {}),
  });
  if (!response.ok) throw new Error(`GET ${v1}/models answered ${response.status}`);
  return await response.json() as ModelsAnswer;
}

export async function startRegistration(
  config: RegisterConfig,
  options: { env: Env; logger: Logger; local?: LocalBus },
): Promise<Registration> {
  const { logger } = options;
  const v1 = v1Url(config.url);
  const upstream = config.upstreamModel ?? config.modelName;
  let models: ModelsAnswer;
  try {
    models = await fetchModels(v1, 5000, config.apiKey);
  } catch (error) {
    throw new InfraUnavailableError(
      `the server at ${v1} does not answer GET /models (${
        (error as Error).message
      }); start it first or fix --url`,
      { cause: error },
    );
  }
  const listed = models.data?.find((m) => m.id === upstream);
  if (models.data && !listed) {
    logger.warn('the server does not list the model; requests name it anyway', {
      upstream_model: upstream,
      listed: models.data.map((m) => m.id),
    });
  }
  const contextLength = config.contextLength ?? listed?.max_model_len;
  const modelTypes = config.modelType === 'embedding'
    ? ['Embedding' as const]
    : ['Chat' as const, 'Completions' as const];
  const card: ModelCard = config.modelInput === 'tokens'
    ? await modelCardFor(await readModelDir(config.modelPath ?? ''), {
      name: config.modelName,
      kvCacheBlockSize: config.blockSize,
      modelTypes,
      modelInput: 'Tokens',
      runtimeConfig: {
        ...(contextLength ? { context_length: contextLength } : {}),
        ...parserRuntimeConfig(config),
        // The server is called as /v1/completions on token ids, which carries no guided
        // decoding: such requests are refused by the frontend (docs/workers.md).
        runtime_data: { guided_decoding: [] },
      },
    })
    : {
      display_name: config.modelName,
      slug: slugify(config.modelName),
      kv_cache_block_size: 0,
      model_type: modelTypes.join(' | '),
      model_input: 'Text',
      runtime_config: contextLength ? { context_length: contextLength } : {},
      ...(contextLength ? { context_length: contextLength } : {}),
    };
  card.user_data = { upstream_model: upstream, openai_url: v1 };

  const infra = createInfra(
    {
      discoveryBackend: config.discoveryBackend,
      requestPlane: 'tcp',
      eventPlane: config.eventPlane,
    },
    options,
  );
  const store = await infra.store();
  const discovery = createDiscovery(store, { logger });
  const endpoint = registerEndpoint(config);
  const relay = config.kvEventsEndpoint ? await startRelay(store) : undefined;
  // The key travels in the discovery record: the frontend calls the server directly.
  const transport = config.apiKey ? { openai: v1, api_key: config.apiKey } : { openai: v1 };
  await discovery.registerModel(endpoint, card as JsonObject);
  await discovery.registerEndpoint(endpoint, transport);
  logger.info('registered an OpenAI-compatible server', {
    model: config.modelName,
    url: v1,
    instance_id: discovery.instanceId,
    model_input: card.model_input,
  });

  let up = true;
  let stopped = false;
  const check = async () => {
    const ok = await fetchModels(
      v1,
      Math.max(1000, config.healthIntervalSecs * 1000),
      config.apiKey,
    ).then(
      () => true,
      () => false,
    );
    if (stopped || ok === up) return;
    up = ok;
    if (ok) {
      await discovery.registerEndpoint(endpoint, transport);
      logger.info('the server answers again: back in discovery', { url: v1 });
    } else {
      await discovery.unregisterEndpoint(endpoint);
      logger.warn('the server stopped answering: out of discovery until it recovers', { url: v1 });
    }
  };
  let running: Promise<void> = Promise.resolve();
  const timer = setInterval(() => {
    running = running.then(check).catch((error: unknown) =>
      logger.warn('health check failed', { error })
    );
  }, config.healthIntervalSecs * 1000);

  return {
    instanceId: discovery.instanceId,
    card,
    async close() {
      stopped = true;
      clearInterval(timer);
      await running;
      await Promise.allSettled([
        discovery.unregisterEndpoint(endpoint),
        discovery.unregisterModel(endpoint),
      ]);
      // The relay's runtime closes the store it shares.
      if (relay) await relay.close();
      else await store.close();
    },
  };

  /**
   * Dynamo's KV event relay, in this process: the engine's raw ZMQ events become RouterEvents
   * of this registration's instance id, published on the event plane and kept for recovery
   * (`worker_kv_indexer_query`, served on the tcp request plane).
   */
  async function startRelay(store: Awaited<ReturnType<typeof infra.store>>) {
    await infra.checkNats();
    const runtime = createWorkerRuntime({
      store,
      plane: infra.planeServer(),
      events: infra.events(store),
      logger,
    });
    await runtime.serveKvQuery(endpoint);
    const decoder = createEngineEventDecoder({
      hasher: await createBlockHasher(),
      blockSize: config.blockSize,
      workerId: runtime.workerId,
      onWarning: (message, fields) => logger.warn(message, fields),
    });
    const subscription = subscribeEngineEvents({
      network: createNodeNetwork(),
      endpoint: config.kvEventsEndpoint as string,
      topic: config.kvEventsTopic,
      decoder,
      onEvents: (events) => {
        for (const e of events) {
          runtime.publishKvEvent(endpoint, e.event).catch((error: unknown) =>
            logger.warn('could not publish a KV event', { error })
          );
        }
      },
      onError: (error) => logger.debug('KV event subscription', { error }),
    });
    logger.info('relaying KV events', {
      from: config.kvEventsEndpoint,
      event_plane: config.eventPlane,
    });
    return {
      async close() {
        await subscription.close();
        await runtime.close();
      },
    };
  }
}
