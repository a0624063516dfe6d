/**
 * The simulated worker's flags: Dynamo's mocker CLI (`python -m dynamo.mocker`) with its
 * defaults, plus the infrastructure flags every worker shares with the frontend.
 */
import { z } from 'zod';
import { infrastructureFields } from '../core/config.ts';
import {
  createOptionRegistry,
  type OptionInfo,
  type OptionSources,
  type OptionsResult,
  resolveOptions,
  values,
} from '../core/options.ts';
import { parserFields } from '../worker/parser-flags.ts';

const o = createOptionRegistry();
const G_MODEL = 'Model';
const G_ENGINE = 'Engine';
const G_FAULT = 'Fault Tolerance';

/** `dyn://namespace.component.endpoint` */
const ENDPOINT = /^dyn:\/\/([a-z0-9_-]+)\.([a-z0-9_-]+)\.([a-z0-9_-]+)$/;

export const mockerSchema = z.object({
  modelPath: o.opt(values.text(), {
    flag: 'model-path',
    env: ['DYN_MOCKER_MODEL_PATH'],
    hint: 'dir',
    description: 'Model directory with tokenizer.json, tokenizer_config.json and config.json',
    group: G_MODEL,
  }),
  modelName: o.opt(values.text().optional(), {
    flag: 'model-name',
    env: ['DYN_MOCKER_MODEL_NAME'],
    hint: 'name',
    description: 'Served model name (default: the model directory name)',
    group: G_MODEL,
  }),
  endpoint: o.opt(
    z.string().regex(ENDPOINT, {
      error: 'must look like dyn://namespace.component.endpoint (lower-case, digits, - and _)',
    }).optional(),
    {
      flag: 'endpoint',
      env: ['DYN_MOCKER_ENDPOINT'],
      hint: 'dyn://ns.component.endpoint',
      description: 'Endpoint to serve (default: dyn://$DYN_NAMESPACE.backend.generate)',
      group: G_MODEL,
    },
  ),
  namespace: o.opt(values.text().default('dynamo'), {
    env: ['DYN_NAMESPACE'],
    description: 'Namespace of the default endpoint',
    group: G_MODEL,
  }),
  numGpuBlocksOverride: o.opt(values.int(1, 1 << 30).default(16384), {
    flag: 'num-gpu-blocks-override',
    env: ['DYN_MOCKER_NUM_GPU_BLOCKS'],
    hint: 'blocks',
    description: 'KV cache capacity in blocks',
    group: G_ENGINE,
  }),
  blockSize: o.opt(values.int(1, 1 << 16).default(64), {
    flag: 'block-size',
    env: ['DYN_MOCKER_BLOCK_SIZE'],
    hint: 'tokens',
    description: 'Tokens per KV block',
    group: G_ENGINE,
  }),
  maxNumSeqs: o.opt(values.int(1, 1 << 20).default(256), {
    flag: 'max-num-seqs',
    env: ['DYN_MOCKER_MAX_NUM_SEQS'],
    hint: 'n',
    description: 'Most sequences running at once',
    group: G_ENGINE,
  }),
  maxNumBatchedTokens: o.opt(values.int(1, 1 << 30).default(8192), {
    flag: 'max-num-batched-tokens',
    env: ['DYN_MOCKER_MAX_NUM_BATCHED_TOKENS'],
    hint: 'tokens',
    description: 'Most new tokens scheduled in one step',
    group: G_ENGINE,
  }),
  watermark: o.opt(values.fraction().default(0.01), {
    flag: 'watermark',
    env: ['DYN_MOCKER_WATERMARK'],
    hint: 'fraction',
    description: 'Fraction of KV blocks kept free when admitting requests',
    group: G_ENGINE,
  }),
  speedupRatio: o.opt(values.num(0.000001).default(1), {
    flag: 'speedup-ratio',
    env: ['DYN_MOCKER_SPEEDUP_RATIO'],
    hint: 'x',
    description: 'Divide every simulated step time by this',
    group: G_ENGINE,
  }),
  decodeSpeedupRatio: o.opt(values.num(0.000001).default(1), {
    flag: 'decode-speedup-ratio',
    env: ['DYN_MOCKER_DECODE_SPEEDUP_RATIO'],
    hint: 'x',
    description: 'Further divide decode step time by this',
    group: G_ENGINE,
  }),
  enablePrefixCaching: o.opt(values.bool(true), {
    flag: 'enable-prefix-caching',
    env: ['DYN_MOCKER_ENABLE_PREFIX_CACHING'],
    description: 'Reuse cached prefix blocks and publish KV events',
    group: G_ENGINE,
  }),
  numWorkers: o.opt(values.int(1, 1024).default(1), {
    flag: 'num-workers',
    env: ['DYN_MOCKER_NUM_WORKERS'],
    hint: 'n',
    description: 'Workers in this process, each its own instance',
    group: G_ENGINE,
  }),
  dataParallelSize: o.opt(values.int(1, 1024).default(1), {
    flag: 'data-parallel-size',
    env: ['DYN_MOCKER_DATA_PARALLEL_SIZE'],
    hint: 'n',
    description: 'Data-parallel ranks per worker',
    group: G_ENGINE,
  }),
  startupTime: o.opt(values.num(0).optional(), {
    flag: 'startup-time',
    env: ['DYN_MOCKER_STARTUP_TIME'],
    hint: 'seconds',
    description: 'Wait this long before registering, like an engine loading weights',
    group: G_ENGINE,
  }),
  embedding: o.opt(values.bool(false), {
    flag: 'embedding',
    env: ['DYN_MOCKER_EMBEDDING'],
    description: 'Serve an embedding model (deterministic unit vectors) instead of a chat model',
    group: G_ENGINE,
  }),
  embeddingDimensions: o.opt(values.int(1, 65536).default(384), {
    flag: 'embedding-dimensions',
    env: ['DYN_MOCKER_EMBEDDING_DIMENSIONS'],
    hint: 'n',
    description: 'Length of the vectors in embedding mode',
    group: G_ENGINE,
  }),
  images: o.opt(values.bool(false), {
    flag: 'images',
    env: ['DYN_MOCKER_IMAGES'],
    description:
      'Serve an image model (model type Images): deterministic PNGs of at most 64x64 pixels for /v1/images/generations',
    group: G_ENGINE,
  }),
  videos: o.opt(values.bool(false), {
    flag: 'videos',
    env: ['DYN_MOCKER_VIDEOS'],
    description:
      'Serve a video model (model type Videos): deterministic motion-JPEG clips of at most 64 pixels wide for /v1/videos*',
    group: G_ENGINE,
  }),
  disaggregationMode: o.opt(values.oneOf(['agg', 'prefill', 'decode'] as const).default('agg'), {
    flag: 'disaggregation-mode',
    env: ['DYN_MOCKER_DISAGGREGATION_MODE'],
    hint: 'agg|prefill|decode',
    description:
      'agg serves whole requests; prefill registers a Prefill worker (default endpoint dyn://$DYN_NAMESPACE.prefill.generate) that answers after the first token; decode skips the prefill of requests a prefill worker already did',
    group: G_ENGINE,
  }),
  isPrefillWorker: o.opt(values.bool(false), {
    flag: 'is-prefill-worker',
    env: ['DYN_MOCKER_IS_PREFILL_WORKER'],
    description: 'Older spelling of --disaggregation-mode prefill',
    group: G_ENGINE,
  }),
  isDecodeWorker: o.opt(values.bool(false), {
    flag: 'is-decode-worker',
    env: ['DYN_MOCKER_IS_DECODE_WORKER'],
    description: 'Older spelling of --disaggregation-mode decode',
    group: G_ENGINE,
  }),
  seed: o.opt(values.int(0, 2 ** 31 - 1).default(0), {
    flag: 'seed',
    env: ['DYN_MOCKER_SEED'],
    hint: 'n',
    description: 'Seed of the simulated output tokens',
    group: G_ENGINE,
  }),
  script: o.opt(values.text().optional(), {
    flag: 'script',
    env: ['DYN_MOCKER_SCRIPT'],
    hint: 'file',
    description:
      'Answer from a script instead of random words: a JSON file {"rules": [{"match": REGEX, "output": TEXT}]}; the first rule matching the decoded prompt answers (docs/mocker.md)',
    group: G_ENGINE,
  }),
  echoMarked: o.opt(values.bool(false), {
    flag: 'echo-marked',
    env: ['DYN_MOCKER_ECHO_MARKED'],
    description: 'Answer with the last [[say]]TEXT[[/say]] part of the prompt, when it has one',
    group: G_ENGINE,
  }),
  ...parserFields(o, G_MODEL),
  workerGracefulShutdownTimeout: o.opt(values.int(0, 86_400).default(30), {
    env: ['DYN_WORKER_GRACEFUL_SHUTDOWN_TIMEOUT'],
    description: 'Seconds in-flight requests may run on after SIGTERM/SIGINT (the workers have ' +
      'left discovery and refuse new requests by then); what is left is then cancelled',
    group: G_FAULT,
  }),
  ...infrastructureFields(o),
});

export type MockerConfig = z.output<typeof mockerSchema>;

export const MOCKER_OPTIONS: readonly OptionInfo<keyof MockerConfig>[] = o.describe(mockerSchema);

export function resolveMockerConfig(sources: OptionSources): OptionsResult<MockerConfig> {
  return resolveOptions({ schema: mockerSchema, options: MOCKER_OPTIONS, sources });
}

/** `--disaggregation-mode`, with the older `--is-prefill-worker` / `--is-decode-worker`. */
export function disaggregationMode(config: MockerConfig): 'agg' | 'prefill' | 'decode' {
  if (config.isPrefillWorker) return 'prefill';
  if (config.isDecodeWorker) return 'decode';
  return config.disaggregationMode;
}

/**
 * The endpoint a mocker serves: `--endpoint`, else `dyn://{namespace}.backend.generate`
 * (`{namespace}.prefill.generate` for prefill workers).
 */
export function mockerEndpoint(config: MockerConfig) {
  const role = disaggregationMode(config) === 'prefill' ? 'prefill' : 'backend';
  const match = ENDPOINT.exec(config.endpoint ?? `dyn://${config.namespace}.${role}.generate`);
  if (!match) throw new Error(`invalid endpoint ${config.endpoint}`);
  const [, namespace = '', component = '', endpoint = ''] = match;
  return { namespace, component, endpoint };
}
