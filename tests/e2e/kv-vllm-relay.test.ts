/**
 * Plain OpenAI-compatible engines with KV events (vLLM's `--kv-events-config`): two fixture
 * servers publish vLLM-format ZMQ events for the blocks they "cache"; `switchboard register
 * --kv-events-endpoint` relays them; the frontend in `--router-mode kv` sends a repeated prompt
 * to the server that holds it.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { encodeEngineBatch, encodeEngineMessage } from '../../src/adapters/events/engine-events.ts';
import { createZmqPublisher, type ZmqPublisher } from '../../src/adapters/events/zmtp/socket.ts';
import { type Registration, startRegistration } from '../../src/commands/register.ts';
import { createNodeNetwork } from '../../src/runtime/net.ts';
import { resolveRegisterConfig } from '../../src/worker/register-config.ts';
import { type FixtureServer, startOpenAIServer } from '../fixtures/openai-server.ts';
import { currentRuntime } from '../helpers/process.ts';
import { MODEL_PATH, type Stack, startStack } from '../helpers/stack.ts';
import { waitFor } from '../helpers/wait.ts';

const SERVED = 'fixture/vllm';
const UPSTREAM = 'upstream-vllm';
const BLOCK = 16;

/** A fake engine: every prompt's full blocks become a BlockStored event on its PUB socket. */
async function fakeEngine(index: number) {
  const pub = await createZmqPublisher({ network: createNodeNetwork(), port: 0 });
  let seq = 0n;
  const server = await startOpenAIServer({
    modelId: UPSTREAM,
    onRequest: (body) => {
      const tokens = body.prompt;
      if (!Array.isArray(tokens)) return;
      const blocks = Math.floor(tokens.length / BLOCK);
      if (blocks === 0) return;
      // Engine hashes are opaque to the router: any stable ids will do.
      const hashes = Array.from(
        { length: blocks },
        (_, i) =>
          BigInt(index + 1) * 1_000_000n + BigInt(tokens[i * BLOCK] as number) * 64n + BigInt(i),
      );
      const payload = encodeEngineBatch({
        ts: Date.now() / 1000,
        events: [{
          type: 'BlockStored',
          block_hashes: hashes,
          parent_block_hash: null,
          token_ids: (tokens as number[]).slice(0, blocks * BLOCK),
          block_size: BLOCK,
        }],
        dp_rank: 0,
      });
      pub.send(encodeEngineMessage('kv', seq++, payload));
    },
  });
  return { pub, server };
}

describe(`vLLM KV events through the register relay on ${currentRuntime()}`, () => {
  test('a repeated prompt goes to the engine whose events say it holds the prefix', async () => {
    let stack: Stack | undefined;
    const engines: Array<{ pub: ZmqPublisher; server: FixtureServer }> = [];
    const registrations: Registration[] = [];
    try {
      stack = await startStack({ frontendArgs: ['--router-mode', 'kv'], mockers: [] });
      for (let i = 0; i < 2; i++) {
        const engine = await fakeEngine(i);
        engines.push(engine);
        const resolved = resolveRegisterConfig({
          argv: [
            '--url',
            engine.server.url,
            '--model-name',
            SERVED,
            '--upstream-model',
            UPSTREAM,
            '--model-input',
            'tokens',
            '--model-path',
            MODEL_PATH,
            '--kv-events-endpoint',
            engine.pub.endpoint,
            '--block-size',
            String(BLOCK),
            '--discovery-backend',
            'mem',
          ],
          env: {},
        });
        if (!resolved.ok) throw new Error(resolved.errors.join('\n'));
        registrations.push(
          await startRegistration(resolved.config, {
            env: {},
            logger: stack.logger,
            local: stack.bus,
          }),
        );
        await engine.pub.waitForSubscriber('kv', 10_000);
      }
      const core = stack.frontend.core;
      await waitFor(() => core.models.instances(SERVED).length === 2, {
        timeoutMs: 10_000,
        what: 'both engines in discovery',
      });
      const text = Array.from({ length: 150 }, (_, i) => `relay${i}`).join(' ');
      const complete = async () => {
        const res = await stack!.post('/v1/completions', {
          model: SERVED,
          prompt: text,
          max_tokens: 2,
        });
        assert.equal(res.status, 200, await res.text());
      };
      const counts = () => engines.map((e) => e.server.requests.length);
      await complete();
      const owner = counts().indexOf(1);
      assert.ok(owner >= 0, `one engine served it: ${counts()}`);
      await waitFor(() => (core.kv?.indexerOf(SERVED)?.currentSize() ?? 0) >= 8, {
        timeoutMs: 10_000,
        what: 'the relayed events in the index',
      });
      for (let i = 0; i < 3; i++) await complete();
      assert.equal(counts()[owner], 4, `every repeat on engine ${owner}: ${counts()}`);
    } finally {
      await Promise.allSettled(registrations.map((r) => r.close()));
      await Promise.allSettled(engines.map((e) => Promise.all([e.server.close(), e.pub.close()])));
      await stack?.close();
    }
  });
});
