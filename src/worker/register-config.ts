/** Flags of `switchboard register`: put a plain OpenAI-compatible server behind Switchboard. */
import { z } from 'zod';
import { DISCOVERY_BACKENDS } from '../core/config.ts';
import {
  createOptionRegistry,
  type OptionInfo,
  type OptionSources,
  type OptionsResult,
  resolveOptions,
  values,
} from '../core/options.ts';
import { parserFields } from './parser-flags.ts';

const o = createOptionRegistry();
const G = 'Engine';
const ENDPOINT = /^dyn:\/\/([a-z0-9_-]+)\.([a-z0-9_-]+)\.([a-z0-9_-]+)$/;

export const registerSchema = z.object({
  url: o.opt(values.text().regex(/^https?:\/\/[^\s]+$/, { error: 'must be an http(s) URL' }), {
    flag: 'url',
    env: ['DYN_REGISTER_URL'],
    hint: 'url',
    description: 'Base URL of the OpenAI-compatible server (its /v1 routes live below it)',
    group: G,
  }),
  apiKey: o.opt(values.text().optional(), {
    flag: 'api-key',
    env: ['DYN_REGISTER_API_KEY'],
    hint: 'key',
    description:
      "The server's API key (vLLM --api-key): sent as a Bearer token by this process and the frontend",
    group: G,
  }),
  modelName: o.opt(values.text(), {
    flag: 'model-name',
    env: ['DYN_REGISTER_MODEL_NAME'],
    hint: 'name',
    description: 'Name clients use for the model',
    group: G,
  }),
  upstreamModel: o.opt(values.text().optional(), {
    flag: 'upstream-model',
    env: ['DYN_REGISTER_UPSTREAM_MODEL'],
    hint: 'name',
    description: 'Model name the server knows (default: --model-name)',
    group: G,
  }),
  modelInput: o.opt(values.oneOf(['text', 'tokens']).default('text'), {
    flag: 'model-input',
    env: ['DYN_REGISTER_MODEL_INPUT'],
    hint: 'text|tokens',
    description:
      'text: forward OpenAI requests unchanged; tokens: the frontend tokenizes (needs --model-path)',
    group: G,
  }),
  modelType: o.opt(values.oneOf(['chat', 'embedding']).default('chat'), {
    flag: 'model-type',
    env: ['DYN_REGISTER_MODEL_TYPE'],
    hint: 'chat|embedding',
    description: 'chat serves chat and text completions; embedding serves embeddings',
    group: G,
  }),
  modelPath: o.opt(values.text().optional(), {
    flag: 'model-path',
    env: ['DYN_REGISTER_MODEL_PATH'],
    hint: 'dir',
    description: 'Local tokenizer directory (required with --model-input tokens)',
    group: G,
  }),
  contextLength: o.opt(values.int(1, 1 << 24).optional(), {
    flag: 'context-length',
    env: ['DYN_REGISTER_CONTEXT_LENGTH'],
    hint: 'tokens',
    description: "Context length (default: the server's max_model_len, if it reports one)",
    group: G,
  }),
  endpoint: o.opt(
    z.string().regex(ENDPOINT, { error: 'must look like dyn://namespace.component.endpoint' })
      .default('dyn://dynamo.openai.generate'),
    {
      flag: 'endpoint',
      env: ['DYN_REGISTER_ENDPOINT'],
      hint: 'dyn://ns.component.endpoint',
      description: 'Endpoint the server is registered under',
      group: G,
    },
  ),
  healthIntervalSecs: o.opt(values.num(0.05).default(5), {
    flag: 'health-interval-secs',
    env: ['DYN_REGISTER_HEALTH_INTERVAL_SECS'],
    hint: 'seconds',
    description: 'How often the server is checked; it is deregistered while it does not answer',
    group: G,
  }),
  kvEventsEndpoint: o.opt(values.text().optional(), {
    flag: 'kv-events-endpoint',
    env: ['DYN_REGISTER_KV_EVENTS_ENDPOINT'],
    hint: 'tcp://host:port',
    description:
      "The engine's ZMQ KV-event publisher (vLLM --kv-events-config endpoint, SGLang --kv-events-config); its events are relayed to the event plane so --router-mode kv routes precisely. Needs --model-input tokens",
    group: G,
  }),
  kvEventsTopic: o.opt(values.text().default(''), {
    flag: 'kv-events-topic',
    env: ['DYN_REGISTER_KV_EVENTS_TOPIC'],
    hint: 'prefix',
    description: 'Topic prefix to subscribe to on --kv-events-endpoint',
    group: G,
  }),
  blockSize: o.opt(values.int(1, 1 << 16).default(16), {
    flag: 'block-size',
    env: ['DYN_REGISTER_BLOCK_SIZE'],
    hint: 'tokens',
    description: "The engine's KV block size (vLLM --block-size), published in the model card",
    group: G,
  }),
  ...parserFields(o, G),
  eventPlane: o.opt(values.oneOf(['nats', 'zmq'] as const).default('nats'), {
    flag: 'event-plane',
    env: ['DYN_EVENT_PLANE'],
    hint: 'nats|zmq',
    description: 'Where relayed KV events are published',
    group: 'Infrastructure',
  }),
  discoveryBackend: o.opt(values.oneOf(DISCOVERY_BACKENDS).default('etcd'), {
    flag: 'discovery-backend',
    env: ['DYN_DISCOVERY_BACKEND'],
    hint: DISCOVERY_BACKENDS.join('|'),
    description: 'Service discovery backend',
    group: 'Infrastructure',
  }),
});

export type RegisterConfig = z.output<typeof registerSchema>;
export const REGISTER_OPTIONS: readonly OptionInfo<keyof RegisterConfig>[] = o.describe(
  registerSchema,
);

export function resolveRegisterConfig(sources: OptionSources): OptionsResult<RegisterConfig> {
  return resolveOptions({
    schema: registerSchema,
    options: REGISTER_OPTIONS,
    sources,
    check(raw, label) {
      const problems: string[] = [];
      if (raw.modelInput === 'tokens' && raw.modelPath === undefined) {
        problems.push(
          `${label('modelPath')}: required with --model-input tokens (the frontend tokenizes)`,
        );
      }
      for (const key of ['dynToolCallParser', 'dynReasoningParser'] as const) {
        if (raw[key] !== undefined && raw.modelInput !== 'tokens') {
          problems.push(
            `${
              label(key)
            }: needs --model-input tokens (with text input the server parses its own output)`,
          );
        }
      }
      if (raw.kvEventsEndpoint !== undefined && raw.modelInput !== 'tokens') {
        problems.push(
          `${
            label('kvEventsEndpoint')
          }: needs --model-input tokens (KV routing hashes the prompt's token ids)`,
        );
      }
      return problems;
    },
  });
}

export function registerEndpoint(config: RegisterConfig) {
  const [, namespace = '', component = '', endpoint = ''] = ENDPOINT.exec(config.endpoint) ?? [];
  return { namespace, component, endpoint };
}
