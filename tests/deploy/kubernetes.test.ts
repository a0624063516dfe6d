/**
 * deploy/kubernetes/: the DynamoWorkerMetadata CRD, the RBAC of the frontend and the workers, and
 * the frontend and worker examples. No kube-apiserver can be had on this machine (Debian ships
 * only kubectl, and no Go toolchain is installed to build one; docs/discovery.md), so this checks
 * what can be checked without one: `kubectl kustomize` builds the set; the CRD is a structural
 * schema that names what the adapter writes and accepts a CR the adapter really wrote (through the
 * fake API server); each role grants every verb its store was seen to use; the Deployments pass
 * the downward-API variables, use those service accounts, probe /health and /live, and their
 * flags resolve; the worker Service labels its EndpointSlices as the frontend selects them.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { parseAllDocuments } from 'yaml';
import {
  createKubernetesStore,
  DEFAULT_ENDPOINT_SLICE_SELECTOR,
  DWM_GROUP_VERSION,
  DWM_KIND,
  DWM_PLURAL,
} from '../../src/adapters/discovery/kubernetes.ts';
import { createDiscovery } from '../../src/core/discovery/discovery.ts';
import { resolveConfig } from '../../src/core/config.ts';
import { resolveMockerConfig } from '../../src/mocker/config.ts';
import { type FakeKubeApi, startFakeKubeApi } from '../contract/discovery-kubernetes-fake.ts';
import { ROOT } from '../helpers/process.ts';
import { waitFor } from '../helpers/wait.ts';

const DIR = join(ROOT, 'deploy/kubernetes');

// deno-lint-ignore no-explicit-any
type Doc = Record<string, any>;

// kustomization.yaml is kustomize's own file, not an object for the API server.
const files = (await readdir(DIR)).filter((f) => f.endsWith('.yaml') && f !== 'kustomization.yaml')
  .sort();
const docs: { file: string; doc: Doc }[] = [];
for (const file of files) {
  for (const parsed of parseAllDocuments(await readFile(join(DIR, file), 'utf8'))) {
    assert.deepEqual(parsed.errors, [], file);
    const doc = parsed.toJS() as Doc | null;
    if (doc) docs.push({ file, doc });
  }
}
const find = (kind: string, name: string): Doc => {
  const found = docs.find(({ doc }) => doc.kind === kind && doc.metadata?.name === name)?.doc;
  assert.ok(found, `${kind} ${name}`);
  return found;
};

function run(cmd: string, args: string[]): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => out += d.toString());
    child.stderr.on('data', (d: Buffer) => out += d.toString());
    child.once('error', reject);
    child.once('close', (code) => resolve({ code, out }));
  });
}

/**
 * Validates `value` against a structural OpenAPI v3 schema, the subset CRDs use here: `type`,
 * `properties`, `x-kubernetes-preserve-unknown-fields`. Returns the problems found.
 */
function validate(schema: Doc, value: unknown, path = ''): string[] {
  const problems: string[] = [];
  const type = schema.type as string;
  const actual = value === null ? 'null' : Array.isArray(value) ? 'array' : typeof value;
  if (type === 'object' && actual !== 'object') return [`${path || '.'}: ${actual}, not object`];
  if (type === 'string' && actual !== 'string') return [`${path}: ${actual}, not string`];
  if (type !== 'object') return problems;
  const properties = (schema.properties ?? {}) as Record<string, Doc>;
  for (const [key, child] of Object.entries(value as Record<string, unknown>)) {
    if (properties[key]) problems.push(...validate(properties[key], child, `${path}.${key}`));
    else if (!schema['x-kubernetes-preserve-unknown-fields'] && path !== '.metadata') {
      problems.push(`${path}.${key}: not in the schema (the API server would prune it)`);
    }
  }
  return problems;
}

/** Every schema node has a type, and objects either list properties or keep unknown fields. */
function structural(schema: Doc, path = ''): string[] {
  const problems: string[] = [];
  if (typeof schema.type !== 'string') problems.push(`${path || '.'}: no type`);
  for (const [key, child] of Object.entries((schema.properties ?? {}) as Record<string, Doc>)) {
    problems.push(...structural(child, `${path}.${key}`));
  }
  return problems;
}

/** RBAC verbs of a request the fake API server saw (`METHOD path?query`). */
function verbOf(request: string): { resource: string; verb: string } {
  const [method, url] = request.split(' ') as [string, string];
  const [path, query = ''] = url.split('?') as [string, string?];
  const parts = path.split('/').filter(Boolean);
  const at = parts.findIndex((p) => p === DWM_PLURAL || p === 'endpointslices');
  const resource = parts[at] as string;
  const named = parts.length > at + 1;
  const verb = method === 'GET'
    ? named ? 'get' : query.includes('watch=') ? 'watch' : 'list'
    : method.toLowerCase();
  return { resource, verb };
}

/** Whether `role` grants `verb` on `resource`. */
function grants(role: Doc, resource: string, verb: string): boolean {
  return (role.rules as Doc[]).some((rule) =>
    (rule.resources as string[]).includes(resource) && (rule.verbs as string[]).includes(verb)
  );
}

const envOf = (container: Doc): Record<string, Doc> =>
  Object.fromEntries((container.env as Doc[]).map((e) => [e.name as string, e]));

describe('Kubernetes manifests deploy/kubernetes/', () => {
  let api: FakeKubeApi;
  before(async () => {
    api = await startFakeKubeApi({ autoReady: true });
  });
  after(async () => {
    await api?.stop();
  });

  test('`kubectl kustomize` builds them (no API server needed) into the expected objects', async () => {
    const built = await run('kubectl', ['kustomize', DIR]);
    assert.equal(built.code, 0, built.out);
    const kinds = [...built.out.matchAll(/^kind: (\S+)$/gm)].map((m) => m[1]).sort();
    assert.deepEqual(kinds, [
      'CustomResourceDefinition',
      'Deployment',
      'Deployment',
      'Namespace',
      'Role',
      'Role',
      'RoleBinding',
      'RoleBinding',
      'Service',
      'Service',
      'ServiceAccount',
      'ServiceAccount',
    ]);
    for (const { file, doc } of docs) {
      assert.ok(doc.apiVersion && doc.kind && doc.metadata?.name, file);
      if (!['Namespace', 'CustomResourceDefinition'].includes(doc.kind)) {
        assert.equal(doc.metadata.namespace, 'switchboard', `${file} ${doc.kind}`);
      }
    }
  });

  test('the CRD names what the adapter writes, its schema is structural and accepts a CR the adapter wrote', async () => {
    const crd = find('CustomResourceDefinition', `${DWM_PLURAL}.nvidia.com`);
    const [group, version] = DWM_GROUP_VERSION.split('/');
    assert.equal(crd.spec.group, group);
    assert.equal(crd.spec.names.kind, DWM_KIND);
    assert.equal(crd.spec.names.plural, DWM_PLURAL);
    assert.equal(crd.spec.scope, 'Namespaced');
    const served = (crd.spec.versions as Doc[]).find((v) => v.name === version);
    assert.ok(served?.served && served.storage);
    const schema = served.schema.openAPIV3Schema as Doc;
    assert.deepEqual(structural(schema), []);
    assert.deepEqual(
      Object.keys(schema.properties.spec.properties.data.properties).sort(),
      ['endpoints', 'event_channels', 'model_cards'],
    );

    const store = await createKubernetesStore({
      baseUrl: api.url,
      token: api.token,
      namespace: api.namespace,
      podName: 'crd-check-pod',
      podUid: 'uid-1',
    });
    try {
      const discovery = createDiscovery(store);
      const ep = { namespace: 'dynamo', component: 'backend', endpoint: 'generate' };
      await discovery.registerEndpoint(ep, { tcp: '10.0.0.7:5000/x/generate' });
      await discovery.registerModel(ep, { display_name: 'm', kv_cache_block_size: 16 });
      const written = api.getCr('crd-check-pod');
      assert.ok(written);
      const cr = JSON.parse(
        JSON.stringify(written, (_k, v) => typeof v === 'bigint' ? Number(v) : v),
      ) as Doc;
      assert.deepEqual(validate(schema, cr), []);
      assert.equal(Object.keys(cr.spec.data.endpoints).length, 1);
      // The check can fail: a field the schema does not know is reported.
      assert.notDeepEqual(validate(schema, { ...cr, spec: { ...cr.spec, other: 1 } }), []);
    } finally {
      await store.close();
    }
  });

  test('each role grants every verb its store uses (a worker writes, a frontend reads)', async () => {
    const reader = find('Role', 'switchboard-discovery-reader');
    const writer = find('Role', 'switchboard-discovery-writer');
    const lifetime = async (pod: string, write: boolean) => {
      const from = api.requests.length;
      const store = await createKubernetesStore({
        baseUrl: api.url,
        token: api.token,
        namespace: api.namespace,
        podName: pod,
        podUid: `uid-${pod}`,
      });
      const discovery = createDiscovery(store);
      const ep = { namespace: 'dynamo', component: 'backend', endpoint: 'generate' };
      if (write) {
        await discovery.registerEndpoint(ep, { tcp: '10.0.0.8:5000/x/generate' });
        await discovery.unregisterEndpoint(ep);
      }
      const watching = new AbortController();
      const events = store.watch('v1/', watching.signal)[Symbol.asyncIterator]();
      await events.next();
      // The first event comes from the initial list; the watch request follows it, and aborting
      // before it reached the API server would leave its verb out (a flake seen on Bun).
      await waitFor(() => api.requests.slice(from).some((r) => verbOf(r).verb === 'watch'), {
        timeoutMs: 10_000,
        intervalMs: 5,
        what: `the watch request of ${pod}`,
      });
      watching.abort();
      await store.list('v1/mdc/');
      await store.close();
      return api.requests.slice(from).map(verbOf);
    };
    const used = {
      worker: await lifetime('rbac-worker', true),
      frontend: await lifetime('rbac-frontend', false),
    };
    assert.ok(used.worker.some((u) => u.verb === 'patch'), 'the worker store applied its CR');
    assert.ok(used.worker.some((u) => u.verb === 'delete'), 'and deleted it');
    assert.ok(used.frontend.some((u) => u.verb === 'watch'));
    for (const { resource, verb } of used.worker) {
      assert.ok(grants(writer, resource, verb), `worker: ${verb} ${resource}`);
    }
    for (const { resource, verb } of used.frontend) {
      assert.ok(grants(reader, resource, verb), `frontend: ${verb} ${resource}`);
    }
    // And the bindings give those roles to the service accounts the Deployments run as.
    const binding = (role: string) =>
      docs.find(({ doc }) => doc.kind === 'RoleBinding' && doc.roleRef.name === role)?.doc;
    const sa = (name: string) =>
      find('Deployment', name).spec.template.spec.serviceAccountName as string;
    assert.equal(
      binding('switchboard-discovery-reader')?.subjects[0].name,
      sa('switchboard-frontend'),
    );
    assert.equal(
      binding('switchboard-discovery-writer')?.subjects[0].name,
      sa('switchboard-worker'),
    );
    find('ServiceAccount', sa('switchboard-frontend'));
    find('ServiceAccount', sa('switchboard-worker'));
  });

  test('the Deployments pass the downward-API variables, their flags resolve, probes and Services line up', () => {
    for (const name of ['switchboard-frontend', 'switchboard-worker']) {
      const deployment = find('Deployment', name);
      const pod = deployment.spec.template;
      assert.deepEqual(deployment.spec.selector.matchLabels, pod.metadata.labels, name);
      const container = pod.spec.containers[0] as Doc;
      const env = envOf(container);
      for (
        const [variable, field] of [
          ['POD_NAME', 'metadata.name'],
          ['POD_NAMESPACE', 'metadata.namespace'],
          ['POD_UID', 'metadata.uid'],
        ]
      ) {
        assert.equal(env[variable!]?.valueFrom?.fieldRef?.fieldPath, field, `${name} ${variable}`);
      }
      assert.match(env.DENO_CERT?.value, /serviceaccount\/ca\.crt$/);
      assert.match(env.NATS_SERVER?.value, /^nats:\/\//);
      const args = container.args as string[];
      assert.equal(args[args.indexOf('--discovery-backend') + 1], 'kubernetes', name);
      const service = find('Service', name);
      assert.deepEqual(service.spec.selector, pod.metadata.labels, `${name} Service`);
    }

    const frontend = find('Deployment', 'switchboard-frontend').spec.template.spec.containers[0];
    const resolved = resolveConfig({ argv: frontend.args, env: {} });
    assert.ok(resolved.ok, resolved.ok ? '' : resolved.errors.join('\n'));
    assert.equal(resolved.config.discoveryBackend, 'kubernetes');
    assert.equal(frontend.ports[0].containerPort, resolved.config.httpPort);
    assert.equal(frontend.readinessProbe.httpGet.path, '/health');
    assert.equal(frontend.livenessProbe.httpGet.path, '/live');

    const worker = find('Deployment', 'switchboard-worker').spec.template.spec.containers[0];
    assert.equal(worker.args[0], 'mocker');
    const mocker = resolveMockerConfig({ argv: worker.args.slice(1), env: {} });
    assert.ok(mocker.ok, mocker.ok ? '' : mocker.errors.join('\n'));
    assert.equal(envOf(worker).DYN_TCP_RPC_HOST?.valueFrom?.fieldRef?.fieldPath, 'status.podIP');

    // The worker Service's labels go onto its EndpointSlices: the frontend's default selector.
    const labels = find('Service', 'switchboard-worker').metadata.labels as Record<string, string>;
    for (const pair of DEFAULT_ENDPOINT_SLICE_SELECTOR.split(',')) {
      const [key, value] = pair.split('=') as [string, string];
      assert.equal(labels[key], value, key);
    }
  });
});
