import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  createDiscovery,
  createRecordTracker,
  decodeInstance,
  decodeModel,
  encodeInstanceValue,
  encodeModelValue,
  instanceCodec,
  instanceKey,
  matchesNamespace,
  matchesPrefix,
  modelKey,
  namespaceFilter,
  parseExactJson,
  parseInstanceKey,
  parseModelKey,
  queryPrefix,
  stringifyExactJson,
} from './discovery.ts';
import type { EndpointId, KvEntry, KvStore, KvWatchEvent } from './types.ts';

const EP: EndpointId = { namespace: 'dynamo', component: 'backend', endpoint: 'generate' };

/** A minimal in-memory KvStore whose watch replays a scripted list of events. */
function fakeStore(script: KvWatchEvent[] = []): KvStore & { data: Map<string, string> } {
  const data = new Map<string, string>();
  return {
    data,
    instanceId: '694d98147d54be25',
    create: (key, value) => {
      if (data.has(key)) return Promise.resolve(false);
      data.set(key, value);
      return Promise.resolve(true);
    },
    put: (key, value) => Promise.resolve(void data.set(key, value)),
    delete: (key) => Promise.resolve(void data.delete(key)),
    list: (prefix) =>
      Promise.resolve(
        [...data].filter(([k]) => matchesPrefix(k, prefix)).map(([key, value]) => ({ key, value })),
      ),
    async *watch() {
      yield* script;
    },
    close: () => Promise.resolve(),
  };
}

describe('discovery keys', () => {
  test('instanceKey() and modelKey() build Dynamo paths with lower-case hex ids', () => {
    assert.equal(
      instanceKey(EP, '694D98147D54BE25'),
      'v1/instances/dynamo/backend/generate/694d98147d54be25',
    );
    assert.equal(modelKey(EP, '1a'), 'v1/mdc/dynamo/backend/generate/1a');
    assert.equal(modelKey(EP, '1a', 'lora-x'), 'v1/mdc/dynamo/backend/generate/1a/lora-x');
  });

  test('key builders refuse ids that are not hex u64s and segments with "/"', () => {
    assert.throws(() => instanceKey(EP, 'xyz'), { name: 'DiscoveryError' });
    assert.throws(() => instanceKey(EP, '1ffffffffffffffff'), { name: 'DiscoveryError' });
    assert.throws(() => instanceKey({ ...EP, component: 'a/b' }, '1'), { name: 'DiscoveryError' });
    assert.throws(() => modelKey(EP, '1', ''), { name: 'DiscoveryError' });
  });

  test('parseInstanceKey() takes exactly 4 parts with a hex id', () => {
    assert.deepEqual(parseInstanceKey('v1/instances/dynamo/backend/generate/1a'), {
      key: 'v1/instances/dynamo/backend/generate/1a',
      endpoint: EP,
      instanceId: '1a',
    });
    for (
      const bad of [
        'v1/instances/dynamo/backend/generate',
        'v1/instances/dynamo/backend/generate/1a/x',
        'v1/instances/dynamo/backend/generate/xyz',
        'v1/instances/dynamo//generate/1a',
        'v1/mdc/dynamo/backend/generate/1a',
        'v1/instancesX/dynamo/backend/generate/1a',
      ]
    ) {
      assert.equal(parseInstanceKey(bad), undefined, bad);
    }
  });

  test('parseModelKey() takes 4 or 5 parts, the 5th being the suffix', () => {
    assert.equal(parseModelKey('v1/mdc/dynamo/backend/generate/1a')?.suffix, undefined);
    assert.equal(parseModelKey('v1/mdc/dynamo/backend/generate/1a/lora')?.suffix, 'lora');
    assert.equal(parseModelKey('v1/mdc/dynamo/backend/generate/1a/lora/x'), undefined);
    assert.equal(parseModelKey('v1/mdc/dynamo/backend/generate/zz'), undefined);
  });

  test('matchesPrefix() respects path boundaries', () => {
    assert.ok(matchesPrefix('v1/instances/ns/comp/ep/1', 'v1/instances/ns/comp'));
    assert.ok(matchesPrefix('v1/instances/ns/comp/ep/1', 'v1/instances/ns/comp/'));
    assert.ok(matchesPrefix('v1/instances/ns/comp', 'v1/instances/ns/comp'));
    assert.ok(!matchesPrefix('v1/instances/ns/comp2/ep/1', 'v1/instances/ns/comp'));
    assert.ok(matchesPrefix('anything', ''));
  });

  test('queryPrefix() scans all, a namespace, a component or an endpoint', () => {
    assert.equal(queryPrefix('v1/mdc', {}), 'v1/mdc');
    assert.equal(queryPrefix('v1/mdc', { namespace: 'ns' }), 'v1/mdc/ns');
    assert.equal(queryPrefix('v1/mdc', { namespace: 'ns', component: 'c' }), 'v1/mdc/ns/c');
    assert.equal(queryPrefix('v1/instances', EP), 'v1/instances/dynamo/backend/generate');
  });
});

describe('exact JSON', () => {
  test('encodeInstanceValue() writes the reference shape with an exact u64 instance_id', () => {
    assert.equal(
      encodeInstanceValue({ endpoint: EP, instanceId: 'ffffffffffffffff' }, {
        tcp: '10.0.0.1:5000/ffffffffffffffff/generate',
      }),
      '{"type":"Endpoint","namespace":"dynamo","component":"backend","endpoint":"generate",' +
        '"instance_id":18446744073709551615,' +
        '"transport":{"tcp":"10.0.0.1:5000/ffffffffffffffff/generate"}}',
    );
  });

  test('encodeModelValue() carries card_json and model_suffix', () => {
    const value = encodeModelValue({ endpoint: EP, instanceId: '20000000000001', suffix: 'l' }, {
      display_name: 'm',
    });
    assert.equal(
      value,
      '{"type":"Model","namespace":"dynamo","component":"backend","endpoint":"generate",' +
        '"instance_id":9007199254740993,"card_json":{"display_name":"m"},"model_suffix":"l"}',
    );
  });

  test('parseExactJson() keeps integers beyond 2^53 as bigint and everything else as JSON.parse', () => {
    const text =
      '{"big":18446744073709551615,"safe":9007199254740991,"neg":-9007199254740993,"f":1.5e3,' +
      '"s":"a\\"b\\u00e9\\n","arr":[true,false,null,{}],"__proto__":{"x":1}}';
    const parsed = parseExactJson(text) as Record<string, unknown>;
    assert.equal(parsed.big, 18446744073709551615n);
    assert.equal(parsed.safe, 9007199254740991);
    assert.equal(parsed.neg, -9007199254740993n);
    assert.equal(parsed.f, 1500);
    assert.equal(parsed.s, 'a"b\u00e9\n');
    assert.deepEqual(parsed.arr, [true, false, null, {}]);
    assert.deepEqual(Object.keys(parsed).at(-1), '__proto__');
    assert.equal(
      stringifyExactJson(parsed),
      text.replace('1.5e3', '1500').replace('\\u00e9', '\u00e9'),
    );
  });

  test('parseExactJson() rejects malformed text', () => {
    for (const bad of ['', '{', '{"a":1,}', '[1 2]', 'tru', '{"a":1} x', '01', '"\u0001"']) {
      assert.throws(() => parseExactJson(bad), SyntaxError, bad);
    }
  });
});

describe('records', () => {
  test('decodeInstance() takes the id from the key, never from the rounded number', () => {
    const key = instanceKey(EP, 'ffffffffffffffff');
    const value = encodeInstanceValue({ endpoint: EP, instanceId: 'ffffffffffffffff' }, {
      nats_tcp: 'dynamo_backend.generate-x',
    });
    const decoded = decodeInstance({ key, value });
    assert.ok(decoded.ok);
    assert.equal(decoded.record.instanceId, 'ffffffffffffffff');
    assert.deepEqual(decoded.record.transport, { nats_tcp: 'dynamo_backend.generate-x' });
  });

  test('decoders refuse values of the wrong type or shape', () => {
    const key = instanceKey(EP, '1');
    assert.equal(decodeInstance({ key, value: 'nope' }).ok, false);
    assert.equal(decodeInstance({ key, value: '{"type":"Model"}' }).ok, false);
    assert.equal(
      decodeInstance({ key, value: '{"type":"Endpoint","transport":{"x":1}}' }).ok,
      false,
    );
    assert.equal(decodeModel({ key: modelKey(EP, '1'), value: '{"type":"Model"}' }).ok, false);
  });
});

describe('createRecordTracker()', () => {
  const entry = (id: string, port: number): KvEntry => ({
    key: instanceKey(EP, id),
    value: encodeInstanceValue({ endpoint: EP, instanceId: id }, {
      tcp: `h:${port}/${id}/generate`,
    }),
  });
  const tracker = () => createRecordTracker(instanceCodec);

  test('diffs a snapshot against what it reported: removed for missing, added for new or changed', () => {
    const t = tracker();
    const first = t.apply({ kind: 'snapshot', entries: [entry('a', 1), entry('b', 1)] });
    assert.deepEqual(first.map((e) => e.kind), ['added', 'added']);
    const second = t.apply({
      kind: 'snapshot',
      entries: [entry('b', 2), entry('c', 1)],
    });
    assert.deepEqual(
      second.map((e) => e.kind === 'added' ? `+${e.record.instanceId}` : `-${e.id.instanceId}`),
      ['-a', '+b', '+c'],
    );
    assert.deepEqual(t.apply({ kind: 'snapshot', entries: [entry('b', 2), entry('c', 1)] }), []);
  });

  test('a value that fails to decode keeps the previous record', () => {
    const t = tracker();
    t.apply({ kind: 'put', ...entry('a', 1) });
    assert.deepEqual(t.apply({ kind: 'put', key: instanceKey(EP, 'a'), value: '{' }), []);
    assert.equal(t.known.get(instanceKey(EP, 'a'))?.value, entry('a', 1).value);
  });

  test('a delete of a key it never reported is ignored; a known one is removed by key', () => {
    const t = tracker();
    assert.deepEqual(t.apply({ kind: 'delete', key: instanceKey(EP, 'a') }), []);
    t.apply({ kind: 'put', ...entry('a', 1) });
    assert.deepEqual(t.apply({ kind: 'delete', key: instanceKey(EP, 'a') }), [
      { kind: 'removed', id: { key: instanceKey(EP, 'a'), endpoint: EP, instanceId: 'a' } },
    ]);
  });
});

describe('namespace filter', () => {
  test('empty or "dynamo" is global; the prefix wins over the namespace', () => {
    assert.deepEqual(namespaceFilter({}), { kind: 'global' });
    assert.deepEqual(namespaceFilter({ namespace: '' }), { kind: 'global' });
    assert.deepEqual(namespaceFilter({ namespace: 'dynamo' }), { kind: 'global' });
    assert.deepEqual(namespaceFilter({ namespace: 'a' }), { kind: 'exact', namespace: 'a' });
    assert.deepEqual(namespaceFilter({ namespace: 'a', namespacePrefix: 'b' }), {
      kind: 'prefix',
      prefix: 'b',
    });
    assert.deepEqual(namespaceFilter({ namespace: 'a', namespacePrefix: 'dynamo' }), {
      kind: 'global',
    });
  });

  test('matches exact names, prefixes, and strict worker generations', () => {
    assert.ok(matchesNamespace({ kind: 'global' }, 'x'));
    assert.ok(matchesNamespace({ kind: 'exact', namespace: 'a' }, 'a'));
    assert.ok(!matchesNamespace({ kind: 'exact', namespace: 'a' }, 'ab'));
    assert.ok(matchesNamespace({ kind: 'prefix', prefix: 'default-qwen' }, 'default-qwen-x'));
    const strict = namespaceFilter({ namespacePrefix: 'default-qwen-decode', strictPrefix: true });
    assert.ok(matchesNamespace(strict, 'default-qwen-decode'));
    assert.ok(matchesNamespace(strict, 'default-qwen-decode-db6b6891'));
    assert.ok(!matchesNamespace(strict, 'default-qwen-decode-db6b689'));
    assert.ok(!matchesNamespace(strict, 'default-qwen-decode-DB6B6891'));
    assert.ok(!matchesNamespace(strict, 'default-qwen-decoder'));
  });
});

describe('createDiscovery()', () => {
  test('watchInstances() turns a store watch into added/removed events within the query', async () => {
    const a = instanceKey(EP, 'a');
    const other = instanceKey({ ...EP, component: 'backend2' }, 'b');
    const value = encodeInstanceValue({ endpoint: EP, instanceId: 'a' }, { tcp: 'h:1/a/generate' });
    const store = fakeStore([
      { kind: 'snapshot', entries: [{ key: a, value }, { key: other, value }] },
      { kind: 'put', key: a, value },
      { kind: 'delete', key: a },
    ]);
    const events = [];
    const discovery = createDiscovery(store);
    for await (
      const e of discovery.watchInstances(
        { namespace: 'dynamo', component: 'backend' },
        new AbortController().signal,
      )
    ) {
      events.push(e.kind === 'added' ? `+${e.record.key}` : `-${e.id.key}`);
    }
    assert.deepEqual(events, [`+${a}`, `-${a}`]);
  });

  test('registerModel() rolls back when another display name already serves the endpoint', async () => {
    const store = fakeStore();
    const other = modelKey(EP, 'b');
    await store.put(
      other,
      encodeModelValue({ endpoint: EP, instanceId: 'b' }, { display_name: 'mistral' }),
    );
    const discovery = createDiscovery(store);
    await assert.rejects(discovery.registerModel(EP, { display_name: 'llama' }), {
      name: 'ModelConflictError',
      message: /Model "llama" cannot be registered on "dynamo\/backend\/generate"/,
    });
    assert.deepEqual([...store.data.keys()], [other]);
    // A LoRA card (with a suffix) is not held to the base model's name.
    await discovery.registerModel(EP, { display_name: 'lora-1' }, 'lora-1');
    assert.equal(store.data.size, 2);
  });
});
