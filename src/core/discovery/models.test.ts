import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { createModelRegistry } from './models.ts';
import { type ModelCard, modelTypesOf, parseModelCard } from './model-card.ts';

const ep = { namespace: 'dynamo', component: 'backend', endpoint: 'generate' };
const card = (name: string, blockSize = 16): ModelCard => ({
  display_name: name,
  kv_cache_block_size: blockSize,
  model_type: 'Chat | Completions',
  model_input: 'Tokens',
  runtime_config: { context_length: 8192 },
});

describe('ModelRegistry', () => {
  test('a model is listed from its first card until its last card goes', () => {
    let now = 100;
    const registry = createModelRegistry({ nowSeconds: () => now });
    assert.deepEqual(registry.list(), []);
    assert.equal(registry.addCard({ ...ep, instanceId: 'a' }, card('m')).ok, true);
    now = 200;
    assert.equal(registry.addCard({ ...ep, instanceId: 'b' }, card('m')).ok, true);
    assert.deepEqual(registry.list().map((m) => [m.name, m.created, m.contextLength]), [[
      'm',
      100,
      8192,
    ]]);
    registry.removeCard({ ...ep, instanceId: 'a' });
    assert.equal(registry.list().length, 1);
    registry.removeCard({ ...ep, instanceId: 'b' });
    assert.deepEqual(registry.list(), []);
  });

  test('instances() lists workers that have both a card and a transport address', () => {
    const registry = createModelRegistry();
    registry.addCard({ ...ep, instanceId: 'a' }, card('m'));
    registry.addCard({ ...ep, instanceId: 'b' }, card('m'));
    registry.setInstance({ instanceId: 'b', endpoint: ep, transport: { tcp: 'h:1/b/generate' } });
    registry.setInstance({ instanceId: 'c', endpoint: ep, transport: { tcp: 'h:1/c/generate' } });
    assert.deepEqual(registry.instances('m').map((i) => i.instanceId), ['b']);
    registry.setInstance({ instanceId: 'a', endpoint: ep, transport: { tcp: 'h:1/a/generate' } });
    assert.deepEqual(registry.instances('m').map((i) => i.instanceId), ['a', 'b']);
    registry.removeInstance(ep, 'a');
    assert.deepEqual(registry.instances('m').map((i) => i.instanceId), ['b']);
    assert.deepEqual(registry.instances('unknown'), []);
  });

  test('prefill workers form their own pool: not listed, not routed as the model', () => {
    const registry = createModelRegistry();
    const prefillEp = { ...ep, component: 'prefill' };
    const changes: string[][] = [];
    registry.onChange((names) => changes.push(names));
    registry.addCard({ ...ep, instanceId: 'd' }, card('m'));
    registry.addCard({ ...prefillEp, instanceId: 'p' }, { ...card('m'), model_type: 'Prefill' });
    registry.setInstance({ instanceId: 'd', endpoint: ep, transport: { tcp: 'h:1/d/generate' } });
    registry.setInstance({
      instanceId: 'p',
      endpoint: prefillEp,
      transport: { tcp: 'h:1/p/generate' },
    });
    assert.deepEqual(registry.list().map((m) => m.name), ['m']);
    assert.deepEqual(registry.instances('m').map((i) => i.instanceId), ['d']);
    assert.deepEqual(registry.prefillInstances('m').map((i) => i.instanceId), ['p']);
    assert.ok(changes.every((names) => names.every((n) => n === 'm')));
    registry.removeCard({ ...prefillEp, instanceId: 'p' });
    assert.deepEqual(registry.prefillInstances('m'), []);
    assert.deepEqual(registry.list().map((m) => m.name), ['m']);
  });

  test('a card that disagrees with the cards serving the name is refused, naming both', () => {
    const registry = createModelRegistry();
    registry.addCard({ ...ep, instanceId: 'a' }, card('m', 16));
    const refused = registry.addCard({ ...ep, instanceId: 'b' }, card('m', 32));
    assert.equal(refused.ok, false);
    assert.match(
      refused.ok ? '' : refused.reason,
      /dynamo\/backend\/generate\/b disagrees with the card of dynamo\/backend\/generate\/a/,
    );
    assert.equal(registry.get('m')?.card.kv_cache_block_size, 16);
    assert.deepEqual(registry.instances('m').map((i) => i.instanceId), []);
  });

  test('onChange() reports the model names a change touched', () => {
    const registry = createModelRegistry();
    const seen: string[][] = [];
    registry.onChange((names) => seen.push(names));
    registry.addCard({ ...ep, instanceId: 'a' }, card('m'));
    registry.setInstance({ instanceId: 'a', endpoint: ep, transport: { tcp: 'h:1/a/generate' } });
    registry.removeCard({ ...ep, instanceId: 'a' });
    assert.deepEqual(seen, [['m'], ['m'], ['m']]);
  });
});

describe('model cards', () => {
  test('parseModelCard() accepts a Dynamo card and keeps unknown fields', () => {
    const parsed = parseModelCard({
      display_name: 'Qwen/Qwen3-0.6B',
      slug: 'qwen--qwen3-0_6b',
      kv_cache_block_size: 64,
      model_type: 'Chat | Completions',
      model_input: 'Tokens',
      runtime_config: { total_kv_blocks: 16384, max_num_seqs: 256, future_field: 1 },
      mdcsum: 'abc',
    });
    assert.equal(parsed.ok, true);
    if (!parsed.ok) return;
    assert.equal(parsed.card.runtime_config.total_kv_blocks, 16384);
    assert.equal((parsed.card as Record<string, unknown>).mdcsum, 'abc');
    assert.deepEqual(modelTypesOf(parsed.card), ['Chat', 'Completions']);
  });

  test('parseModelCard() names the bad field', () => {
    const parsed = parseModelCard({ display_name: 'x', model_type: 'Chat', model_input: 'Pixels' });
    assert.equal(parsed.ok, false);
    assert.match(parsed.ok ? '' : parsed.error, /kv_cache_block_size|model_input/);
  });
});

describe('ModelRegistry aliases and LoRA cards', () => {
  test('an alias resolves to its model everywhere, which keeps its primary name', () => {
    const registry = createModelRegistry();
    registry.addCard({ ...ep, instanceId: 'a' }, { ...card('qwen'), aliases: ['q', 'small'] });
    registry.setInstance({ instanceId: 'a', endpoint: ep, transport: { tcp: 'h:1/a/generate' } });
    assert.equal(registry.get('q')?.name, 'qwen');
    assert.deepEqual(registry.instances('small').map((i) => i.instanceId), ['a']);
    assert.deepEqual(registry.aliases().map((a) => [a.alias, a.model.name]), [
      ['q', 'qwen'],
      ['small', 'qwen'],
    ]);
    assert.deepEqual(registry.list().map((m) => m.name), ['qwen'], 'aliases are not models');
    assert.equal(registry.get('unknown'), undefined);
    registry.removeCard({ ...ep, instanceId: 'a' });
    assert.equal(registry.get('q'), undefined, 'an alias goes with its model');
  });

  test("a primary name always wins over another model's alias of the same name", () => {
    const registry = createModelRegistry();
    registry.addCard({ ...ep, instanceId: 'a' }, { ...card('big'), aliases: ['small'] });
    registry.addCard({ ...ep, component: 'other', instanceId: 'b' }, card('small'));
    assert.equal(registry.get('small')?.name, 'small');
    assert.deepEqual(registry.aliases(), []);
  });

  test('a LoRA card is its own model, served only by the workers that registered it', () => {
    const registry = createModelRegistry();
    const base = card('base');
    const lora = { ...card('base-sql'), lora: { name: 'sql-adapter' } };
    registry.addCard({ ...ep, instanceId: 'a' }, base);
    registry.addCard({ ...ep, instanceId: 'b' }, base);
    registry.addCard({ ...ep, instanceId: 'b', suffix: 'sql-adapter' }, lora);
    for (const id of ['a', 'b']) {
      registry.setInstance({ instanceId: id, endpoint: ep, transport: { tcp: `h:1/${id}/g` } });
    }
    assert.deepEqual(registry.instances('base').map((i) => i.instanceId), ['a', 'b']);
    assert.deepEqual(registry.instances('base-sql').map((i) => i.instanceId), ['b']);
    assert.equal(registry.get('base-sql')?.card.lora?.name, 'sql-adapter');
  });
});
