import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { OPTIONS, resolveConfig, sanitizeMetricsPrefix } from './config.ts';

const resolve = (argv: string[], env: Record<string, string> = {}) => resolveConfig({ argv, env });

function ok(argv: string[], env: Record<string, string> = {}) {
  const result = resolve(argv, env);
  if (!result.ok) assert.fail(result.errors.join('\n'));
  return result;
}

function errors(argv: string[], env: Record<string, string> = {}): string[] {
  const result = resolve(argv, env);
  assert.equal(result.ok, false, 'expected the configuration to be refused');
  return result.ok ? [] : result.errors;
}

describe('resolveConfig()', () => {
  test('gives the reference defaults with no flags and no environment', () => {
    const { config } = ok([]);
    assert.equal(config.httpHost, '0.0.0.0');
    assert.equal(config.httpPort, 8000);
    assert.equal(config.routerMode, 'round-robin');
    assert.equal(config.routerKvOverlapScoreWeight, 1);
    assert.equal(config.routerTemperature, 0);
    assert.equal(config.routerKvEvents, true);
    assert.equal(config.routerTtlSecs, 120);
    assert.equal(config.routerMaxTreeSize, 1048576);
    assert.equal(config.routerPruneTargetRatio, 0.8);
    assert.equal(config.routerSnapshotThreshold, 1000000);
    assert.equal(config.routerTrackActiveBlocks, true);
    assert.equal(config.routerAssumeKvReuse, true);
    assert.equal(config.routerTrackOutputBlocks, false);
    assert.equal(config.routerEventThreads, 1);
    assert.equal(config.routerQueueThreshold, undefined);
    assert.equal(config.migrationLimit, 0);
    assert.equal(config.routerSessionAffinityTtlSecs, 300);
    assert.equal(config.workerHandshakeTimeoutSecs, 5);
    assert.equal(config.discoveryBackend, 'etcd');
    assert.equal(config.requestPlane, 'tcp');
    assert.equal(config.eventPlane, 'nats');
    assert.equal(config.grpcMetricsPort, 8788);
    assert.equal(config.metricsPrefix, 'dynamo_frontend');
    assert.equal(config.dynChatProcessor, 'dynamo');
    assert.equal(config.dynPreprocessWorkers, 1);
    assert.equal(config.dynPreprocessInlineChars, 16384);
    assert.equal(config.httpBodyLimitMb, 45);
    assert.equal(config.httpGracefulShutdownTimeoutSecs, 5);
    assert.equal(config.httpOverloadStatusCode, 503);
    assert.equal(config.chatPath, '/v1/chat/completions');
    assert.equal(config.livePath, '/live');
  });

  test('CLI beats env beats default', () => {
    assert.equal(ok([], { DYN_HTTP_PORT: '9001' }).config.httpPort, 9001);
    assert.equal(ok(['--http-port', '9002'], { DYN_HTTP_PORT: '9001' }).config.httpPort, 9002);
    assert.equal(ok(['--http-port=9003']).config.httpPort, 9003);
    assert.equal(ok([], { DYN_ROUTER_MODE: 'kv' }).config.routerMode, 'kv');
  });

  test('the routing modes Dynamo added: least-loaded, power-of-two-choices (alias power-of-two)', () => {
    assert.equal(ok(['--router-mode', 'least-loaded']).config.routerMode, 'least-loaded');
    assert.equal(
      ok(['--router-mode', 'power-of-two-choices']).config.routerMode,
      'power-of-two-choices',
    );
    assert.equal(ok(['--router-mode', 'power-of-two']).config.routerMode, 'power-of-two-choices');
    assert.equal(
      ok([], { DYN_ROUTER_MODE: 'power-of-two' }).config.routerMode,
      'power-of-two-choices',
    );
    const [error] = errors(['--router-mode', 'fastest']);
    assert.match(error ?? '', /--router-mode .*least-loaded, power-of-two-choices/);
  });

  test('session affinity TTL and worker handshake deadline: flags and env vars', () => {
    const { config } = ok(['--router-session-affinity-ttl-secs', '0'], {
      DYN_WORKER_HANDSHAKE_TIMEOUT_SECS: '2.5',
    });
    assert.equal(config.routerSessionAffinityTtlSecs, 0);
    assert.equal(config.workerHandshakeTimeoutSecs, 2.5);
    assert.equal(
      ok([], { DYN_ROUTER_SESSION_AFFINITY_TTL_SECS: '60' }).config.routerSessionAffinityTtlSecs,
      60,
    );
    assert.match(errors(['--worker-handshake-timeout-secs', '0'])[0] ?? '', /handshake/);
  });

  test('--router-snapshot-threshold says in --help that it has no effect', () => {
    const option = OPTIONS.find((o) => o.flag === 'router-snapshot-threshold');
    assert.match(option?.description ?? '', /has no effect/);
  });

  test('boolean pairs: --x, --no-x, env spellings, and -i for --interactive', () => {
    assert.equal(ok(['--no-router-kv-events']).config.routerKvEvents, false);
    assert.equal(ok([], { DYN_ROUTER_USE_KV_EVENTS: 'false' }).config.routerKvEvents, false);
    assert.equal(
      ok(['--router-kv-events'], { DYN_ROUTER_USE_KV_EVENTS: '0' }).config.routerKvEvents,
      true,
    );
    assert.equal(ok([], { DYN_ENABLE_ANTHROPIC_API: 'YES' }).config.enableAnthropicApi, true);
    assert.equal(ok(['-i']).config.interactive, true);
    assert.equal(ok(['--interactive=false']).config.interactive, false);
  });

  test('every flag has an env var, a description, and parses from its own spelling', () => {
    for (const o of OPTIONS) {
      assert.ok(o.env.length > 0 && o.env[0]?.match(/^DYN_[A-Z0-9_]+$/), `${o.key} env`);
      assert.ok(o.description.length > 0, `${o.key} description`);
    }
    const flags = OPTIONS.filter((o) => o.flag).map((o) => o.flag);
    for (
      const flag of [
        'http-host',
        'http-port',
        'tls-cert-path',
        'tls-key-path',
        'router-mode',
        'router-kv-overlap-score-weight',
        'router-temperature',
        'router-kv-events',
        'router-ttl-secs',
        'router-max-tree-size',
        'router-prune-target-ratio',
        'router-replica-sync',
        'router-snapshot-threshold',
        'router-reset-states',
        'router-track-active-blocks',
        'router-assume-kv-reuse',
        'router-track-output-blocks',
        'router-event-threads',
        'router-queue-threshold',
        'router-session-affinity-ttl-secs',
        'enable-cache-control',
        'decode-fallback',
        'migration-limit',
        'worker-handshake-timeout-secs',
        'active-decode-blocks-threshold',
        'active-prefill-tokens-threshold',
        'active-prefill-tokens-threshold-frac',
        'namespace',
        'namespace-prefix',
        'model-name',
        'model-path',
        'kv-cache-block-size',
        'discovery-backend',
        'request-plane',
        'event-plane',
        'kserve-grpc-server',
        'kserve-grpc-port',
        'grpc-metrics-port',
        'metrics-prefix',
        'dump-config-to',
        'enable-anthropic-api',
        'dyn-chat-processor',
        'dyn-debug-perf',
        'dyn-preprocess-workers',
        'interactive',
        'router-durable-kv-events',
      ]
    ) assert.ok(flags.includes(flag), `missing --${flag}`);
  });

  test('reports every problem at once, naming the flag and its env var', () => {
    const found = errors([
      '--http-port',
      '70000',
      '--router-mode',
      'foo',
      '--tls-cert-path',
      'cert.pem',
    ], { DYN_ROUTER_PRUNE_TARGET_RATIO: '1.5' });
    assert.equal(found.length, 4, found.join('\n'));
    assert.match(found.join('\n'), /--http-port \(DYN_HTTP_PORT\): must be from 1 to 65535/);
    assert.match(
      found.join('\n'),
      /--router-mode \(DYN_ROUTER_MODE\): must be one of round-robin, random, kv, direct, least-loaded, power-of-two-choices \(got "foo"/,
    );
    assert.match(found.join('\n'), /DYN_ROUTER_PRUNE_TARGET_RATIO\): must be from 0 to 1/);
    assert.match(
      found.join('\n'),
      /--tls-key-path \(DYN_TLS_KEY_PATH\): required when --tls-cert-path/,
    );
  });

  test('a TLS key without a certificate is refused', () => {
    assert.match(errors(['--tls-key-path', 'k.pem']).join(), /--tls-cert-path .*required/);
    assert.equal(ok(['--tls-key-path', 'k.pem', '--tls-cert-path', 'c.pem']).ok, true);
  });

  test('fractions outside 0..1 and ports outside 1..65535 are refused', () => {
    assert.equal(errors(['--active-decode-blocks-threshold', '1.2']).length, 1);
    assert.equal(errors(['--active-prefill-tokens-threshold-frac', '-0.1']).length, 1);
    assert.equal(errors(['--http-port', '0']).length, 1);
    assert.equal(errors(['--grpc-metrics-port', '65536']).length, 1);
    assert.equal(errors(['--http-port', 'eighty']).length, 1);
    assert.equal(
      ok(['--active-decode-blocks-threshold', '1']).config.activeDecodeBlocksThreshold,
      1,
    );
  });

  test('--enable-cache-control needs --router-mode kv', () => {
    assert.match(errors(['--enable-cache-control']).join(), /requires --router-mode kv/);
    assert.equal(
      ok(['--enable-cache-control', '--router-mode', 'kv']).config.enableCacheControl,
      true,
    );
  });

  test('an unknown flag is refused with the nearest known one', () => {
    assert.deepEqual(errors(['--router-mod', 'kv']), [
      'Unknown flag "--router-mod"; did you mean --router-mode?',
    ]);
    assert.match(errors(['--no-router-kv-event']).join(), /did you mean --no-router-kv-events\?/);
    assert.match(errors(['--zzzzzzzzzz']).join(), /see --help/);
  });

  test('a flag missing its value is refused', () => {
    assert.match(errors(['--http-port']).join(), /--http-port \(DYN_HTTP_PORT\): needs a value/);
    assert.match(
      errors(['--model-name', '--http-port', '1']).join(),
      /--model-name .*needs a value/,
    );
  });

  test('--router-durable-kv-events is accepted with a deprecation warning', () => {
    const result = ok(['--router-durable-kv-events']);
    assert.equal(result.warnings.length, 1);
    assert.match(result.warnings[0] ?? '', /deprecated/);
    assert.deepEqual(ok([]).warnings, []);
  });

  test('path overrides read DYN_HTTP_SVC_*_PATH and the documented *_PATH_ENV spelling', () => {
    assert.equal(ok([], { DYN_HTTP_SVC_CHAT_PATH: '/chat' }).config.chatPath, '/chat');
    assert.equal(ok([], { DYN_HTTP_SVC_HEALTH_PATH_ENV: '/hz' }).config.healthPath, '/hz');
    assert.equal(ok([], { DYN_HTTP_SVC_LIVE_PATH_PATH_ENV: '/lz' }).config.livePath, '/lz');
    assert.match(errors([], { DYN_HTTP_SVC_MODELS_PATH: 'models' }).join(), /absolute URL path/);
  });

  test('worker inhibition reads DYN_RUNTIME_INHIBITED_DURATION_SECS or its short spelling', () => {
    assert.equal(ok([]).config.inhibitedDurationSecs, 5);
    assert.equal(
      ok([], { DYN_RUNTIME_INHIBITED_DURATION_SECS: '0' }).config.inhibitedDurationSecs,
      0,
    );
    assert.equal(ok([], { DYN_INHIBITED_DURATION_SECS: '1.5' }).config.inhibitedDurationSecs, 1.5);
    assert.match(errors([], { DYN_INHIBITED_DURATION_SECS: '-1' }).join(), /INHIBITED/);
  });

  test('an empty environment variable counts as unset', () => {
    assert.equal(ok([], { DYN_HTTP_PORT: '' }).config.httpPort, 8000);
  });

  test('--dyn-chat-processor vllm is refused with the reason; dynamo is the built-in one', () => {
    assert.equal(ok(['--dyn-chat-processor', 'dynamo']).config.dynChatProcessor, 'dynamo');
    for (
      const e of [
        errors(['--dyn-chat-processor', 'vllm']),
        errors([], { DYN_CHAT_PROCESSOR: 'vllm' }),
      ]
    ) {
      assert.match(
        e.join(),
        /--dyn-chat-processor \(DYN_CHAT_PROCESSOR\): "vllm" runs vLLM's own Python/,
      );
    }
  });
});

test('sanitizeMetricsPrefix() replaces characters Prometheus does not allow', () => {
  assert.equal(sanitizeMetricsPrefix('nv-llm/http service'), 'nv_llm_http_service');
  assert.equal(sanitizeMetricsPrefix('dynamo_frontend'), 'dynamo_frontend');
});
