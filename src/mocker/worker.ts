/**
 * The simulated worker: `--num-workers` instances, each a worker runtime (own lease, own
 * request-plane server) running `--data-parallel-size` mock engines, registering the model of
 * `--model-path` and publishing KV events and load like a vLLM worker would.
 * Runtime-neutral: the infrastructure comes in through `MockerPorts`.
 */
import type { Clock } from '../core/clock.ts';
import {
  eosTokenIdsOf,
  modelCardFor,
  type ModelDirFiles,
  wordTokenIdsOf,
} from '../core/discovery/model-dir.ts';
import type { KvStore } from '../core/discovery/types.ts';
import type { EventPlane } from '../core/events/types.ts';
import type { Logger } from '../core/logger.ts';
import type { EndpointHandler, RequestPlaneServer } from '../core/plane/types.ts';
import { EmbeddingWorkerRequestSchema, PreprocessedRequestSchema } from '../core/plane/worker.ts';
import { encodeEmbedding } from '../core/embedding-codec.ts';
import { embedTokens } from './engine/embedding.ts';
import { imageHandler, videoHandler } from './media/media.ts';
import {
  createWorkerRuntime,
  type WorkerCloseOptions,
  type WorkerRuntime,
} from '../worker/runtime.ts';
import { disaggregationMode, type MockerConfig, mockerEndpoint } from './config.ts';
import { createMockEngine, type MockEngine } from './engine/engine.ts';
import { loadTokenizer, type Tokenizer } from '../core/preprocess/tokenizer.ts';
import { MOCKER_GUIDED_KINDS, type Script, scriptedAnswer } from './script.ts';
import { parserRuntimeConfig } from '../worker/parser-flags.ts';

/** What a simulated worker needs from the outside, one of each per worker instance. */
export interface MockerPorts {
  store(): Promise<KvStore>;
  plane(): RequestPlaneServer;
  /** The event plane of one worker; ZMQ advertises its sockets in that worker's `store`. */
  events(store: KvStore): EventPlane;
  clock: Clock;
  logger: Logger;
  /** See `WorkerRuntimeOptions.loadReportIntervalMs`. @default 25 */
  loadReportIntervalMs?: number;
  /** The parsed `--script` file, read by the runtime. @default none */
  script?: Script;
}

export interface MockWorker {
  runtime: WorkerRuntime;
  engines: MockEngine[];
  /** Requests being generated right now, over all ranks. */
  activeRequests(): number;
  /** Requests this worker has accepted since it started (generate or embed), over all ranks. */
  servedRequests(): number;
}

export interface RunningMocker {
  workers: MockWorker[];
  modelName: string;
  /** Closes every worker (see `WorkerRuntime.close`: leave discovery, drain, then stop). */
  close(options?: WorkerCloseOptions): Promise<void>;
}

/** Starts `config.numWorkers` simulated workers serving the model in `files`. */
export async function startMocker(
  config: MockerConfig,
  files: ModelDirFiles,
  ports: MockerPorts,
): Promise<RunningMocker> {
  if (!files.tokenizer) throw new Error(`${files.dir} has no tokenizer.json`);
  const vocabulary = wordTokenIdsOf(files.tokenizer.text);
  const eos = eosTokenIdsOf(files);
  const endpoint = mockerEndpoint(config);
  const mode = disaggregationMode(config);
  const modalities = [config.embedding, config.images, config.videos].filter(Boolean).length;
  if (modalities > 1) throw new Error('--embedding, --images and --videos exclude each other');
  /** Image and video workers: no engine, no KV cache, one handler. */
  const media = config.images
    ? imageHandler({ seed: config.seed, clock: ports.clock, speedupRatio: config.speedupRatio })
    : config.videos
    ? videoHandler({ seed: config.seed, clock: ports.clock, speedupRatio: config.speedupRatio })
    : undefined;
  const card = await modelCardFor(files, {
    name: config.modelName,
    kvCacheBlockSize: config.blockSize,
    modelTypes: config.embedding
      ? ['Embedding']
      : config.images
      ? ['Images']
      : config.videos
      ? ['Videos']
      : mode === 'prefill'
      ? ['Prefill']
      : ['Chat', 'Completions'],
    runtimeConfig: {
      total_kv_blocks: config.numGpuBlocksOverride,
      max_num_seqs: config.maxNumSeqs,
      max_num_batched_tokens: config.maxNumBatchedTokens,
      data_parallel_size: config.dataParallelSize,
      ...parserRuntimeConfig(config),
      // What this worker can constrain (docs/preprocessing.md, "Structured outputs").
      runtime_data: { guided_decoding: [...MOCKER_GUIDED_KINDS] },
    },
  });
  /** The model's tokenizer, for scripted answers and guided JSON (else loaded when needed). */
  let tokenizer: Promise<Tokenizer> | undefined;
  const tokenizerJson = files.tokenizer.text;
  const tokenizerConfigJson = files.tokenizerConfig?.text;
  const textTokenizer = () => tokenizer ??= loadTokenizer({ tokenizerJson, tokenizerConfigJson });
  // Scripted workers read every prompt: load the tokenizer before registering, not on the
  // first request (parsing it blocks the event loop for up to a second).
  if (ports.script || config.echoMarked) await textTokenizer();
  if (config.startupTime) await ports.clock.sleep(config.startupTime * 1000);

  const workers: MockWorker[] = [];
  try {
    for (let w = 0; w < config.numWorkers; w++) {
      workers.push(await startWorker(w));
    }
  } catch (error) {
    await Promise.allSettled(workers.map((worker) => worker.runtime.close()));
    throw error;
  }
  return {
    workers,
    modelName: card.display_name,
    async close(options) {
      await Promise.allSettled(workers.map(async (worker) => {
        await worker.runtime.close(options);
        await Promise.allSettled(worker.engines.map((e) => e.close()));
      }));
    },
  };

  async function startWorker(index: number): Promise<MockWorker> {
    const store = await ports.store();
    const runtime = createWorkerRuntime({
      store,
      plane: ports.plane(),
      events: ports.events(store),
      logger: ports.logger,
      ...(ports.loadReportIntervalMs !== undefined
        ? { loadReportIntervalMs: ports.loadReportIntervalMs }
        : {}),
    });
    const publish = (what: string, sent: Promise<void>) =>
      sent.catch((error) => ports.logger.warn(`could not publish ${what}`, { error }));
    const engines: MockEngine[] = [];
    for (let rank = 0; rank < config.dataParallelSize; rank++) {
      engines.push(
        await createMockEngine({
          numGpuBlocks: config.numGpuBlocksOverride,
          blockSize: config.blockSize,
          maxNumSeqs: config.maxNumSeqs,
          maxNumBatchedTokens: config.maxNumBatchedTokens,
          watermark: config.watermark,
          speedupRatio: config.speedupRatio,
          decodeSpeedupRatio: config.decodeSpeedupRatio,
          enablePrefixCaching: config.enablePrefixCaching,
          dpRank: rank,
          seed: config.seed + index * 1000 + rank,
          vocabulary,
          workerId: runtime.workerId,
        }, {
          clock: ports.clock,
          onKvEvent: (event) => void publish('a KV event', runtime.publishKvEvent(endpoint, event)),
          onLoad: (load) => void publish('load', runtime.publishLoad(endpoint, load)),
        }),
      );
    }
    let active = 0;
    let served = 0;
    let next = 0;
    const embed: EndpointHandler = async function* (body) {
      served++;
      const parsed = EmbeddingWorkerRequestSchema.safeParse(body);
      if (!parsed.success) {
        throw new Error(`Invalid request: ${parsed.error.issues[0]?.message ?? 'malformed'}`);
      }
      const dimensions = parsed.data.dimensions ?? config.embeddingDimensions;
      const inputs = parsed.data.token_ids;
      yield {
        data: {
          embeddings: inputs.map((ids) =>
            encodeEmbedding(embedTokens(ids, { dimensions, seed: config.seed }))
          ),
          prompt_tokens: inputs.reduce((sum, ids) => sum + ids.length, 0),
        },
      };
    };
    const generate: EndpointHandler = async function* (body, context) {
      const parsed = PreprocessedRequestSchema.safeParse(body);
      if (!parsed.success) {
        throw new Error(`Invalid request: ${parsed.error.issues[0]?.message ?? 'malformed'}`);
      }
      const request = parsed.data;
      if (!request.eos_token_ids?.length && eos.length > 0) request.eos_token_ids = eos;
      const rank = request.routing?.dp_rank ?? next++ % engines.length;
      const engine = engines[rank % engines.length] as MockEngine;
      let script: number[] | undefined;
      const guided = request.sampling_options?.guided_decoding;
      if (ports.script || config.echoMarked || guided) {
        const tok = await textTokenizer();
        const text = scriptedAnswer(request, (ids) => tok.decode([...ids]), {
          script: ports.script,
          echoMarked: config.echoMarked,
        });
        if (text !== undefined) script = tok.encode(text, { addSpecialTokens: false });
      }
      served++;
      active++;
      try {
        for await (const output of engine.generate(request, context.signal, { script })) {
          if (mode === 'prefill' && output.finish_reason) {
            // What a decode worker needs to pull the KV (here: who computed it).
            output.disaggregated_params = {
              prefill_worker_id: runtime.instanceId,
              dp_rank: rank % engines.length,
              prompt_tokens: request.token_ids.length,
            };
          }
          yield { data: output };
        }
      } finally {
        active--;
      }
    };
    /** `--enable-cache-control` pinning: `{action: "pin_prefix", token_ids, ttl_seconds}`. */
    const cacheControl: EndpointHandler = async function* (body) {
      const request = (body ?? {}) as {
        action?: string;
        token_ids?: unknown;
        ttl_seconds?: number;
        dp_rank?: number;
      };
      if (request.action !== 'pin_prefix' || !Array.isArray(request.token_ids)) {
        throw new Error('Invalid request: expected {action: "pin_prefix", token_ids: [...]}');
      }
      const ttlMs = Math.max(0, Number(request.ttl_seconds ?? 300)) * 1000;
      const targets = typeof request.dp_rank === 'number'
        ? [engines[request.dp_rank % engines.length] as MockEngine]
        : engines;
      const pinned = targets.map((e) => e.pinPrefix(request.token_ids as number[], ttlMs));
      yield { data: { pinned_blocks: Math.max(0, ...pinned) } };
    };
    try {
      const counted: EndpointHandler | undefined = media &&
        async function* (body, context) {
          served++;
          active++;
          try {
            yield* media(body, context);
          } finally {
            active--;
          }
        };
      await runtime.serve(endpoint, counted ?? (config.embedding ? embed : generate), card);
      if (!config.embedding && !media && config.enablePrefixCaching) {
        await runtime.serveKvQuery(endpoint);
        await runtime.serve({ ...endpoint, endpoint: 'cache_control' }, cacheControl);
      }
    } catch (error) {
      // Not in `workers` yet, so nobody else closes it (its plane server would keep the process).
      await runtime.close();
      await Promise.allSettled(engines.map((e) => e.close()));
      throw error;
    }
    return { runtime, engines, activeRequests: () => active, servedRequests: () => served };
  }
}
