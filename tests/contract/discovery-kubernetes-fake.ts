/**
 * A small fake Kubernetes API server for the kubernetes discovery backend: just enough of
 * `DynamoWorkerMetadata` CRs (get, list, watch, server-side apply, merge patch, delete) and
 * EndpointSlices (list, watch) to exercise the adapter. No cluster runs here, so this is all the
 * backend is tested against. Served with the project's own `serve()` on every runtime.
 */
import { parseExactJson, stringifyExactJson } from '../../src/core/discovery/discovery.ts';
import { serve, type ServerHandle } from '../../src/runtime/serve.ts';

type Json = Record<string, unknown>;
type Resource = 'crs' | 'slices';

export interface FakeKubeApiOptions {
  /** Requests without `Authorization: Bearer {token}` get 401. @default 'test-token' */
  token?: string;
  /** @default 'dynamo' */
  namespace?: string;
  /** Mark a pod Ready in the EndpointSlice as soon as its CR appears. @default false */
  autoReady?: boolean;
}

export interface FakeKubeApi {
  readonly url: string;
  readonly token: string;
  readonly namespace: string;
  /** Labels of the one EndpointSlice the fake serves. */
  readonly sliceLabels: Readonly<Record<string, string>>;
  /** Sets a pod's Ready condition in the EndpointSlice (adding the pod if needed). */
  setPodReady(pod: string, ready: boolean): void;
  /** A CR as stored (u64 numbers as bigint), or undefined. */
  getCr(name: string): Json | undefined;
  /** Every request seen, as `METHOD path`. */
  readonly requests: string[];
  /** Ends every open watch, as the API server does when a watch times out. */
  endWatches(): void;
  /** Forgets the event history: watches from older resource versions get 410 Gone. */
  compact(): void;
  stop(): Promise<void>;
}

const SLICE_NAME = 'workers-abcde';

function mergePatch(target: unknown, patch: unknown): unknown {
  if (typeof patch !== 'object' || patch === null || Array.isArray(patch)) return patch;
  const out: Json = typeof target === 'object' && target !== null && !Array.isArray(target)
    ? { ...(target as Json) }
    : {};
  for (const [k, v] of Object.entries(patch)) {
    if (v === null) delete out[k];
    else out[k] = mergePatch(out[k], v);
  }
  return out;
}

const status = (code: number, message: string) =>
  new Response(
    JSON.stringify({ kind: 'Status', apiVersion: 'v1', status: 'Failure', message, code }),
    { status: code, headers: { 'content-type': 'application/json' } },
  );
const json = (body: unknown, code = 200) =>
  new Response(stringifyExactJson(body), {
    status: code,
    headers: { 'content-type': 'application/json' },
  });

export async function startFakeKubeApi(options: FakeKubeApiOptions = {}): Promise<FakeKubeApi> {
  const token = options.token ?? 'test-token';
  const namespace = options.namespace ?? 'dynamo';
  const sliceLabels = {
    'nvidia.com/dynamo-discovery-backend': 'kubernetes',
    'nvidia.com/dynamo-discovery-enabled': 'true',
    'kubernetes.io/service-name': 'workers',
  };
  const store: Record<Resource, Map<string, Json>> = { crs: new Map(), slices: new Map() };
  const history: { rv: number; resource: Resource; type: string; object: Json }[] = [];
  const watches = new Set<{ resource: Resource; send(line: string): void; end(): void }>();
  const requests: string[] = [];
  let version = 100;
  let compactedBelow = 0;
  let uid = 0;
  const encoder = new TextEncoder();

  function record(resource: Resource, type: 'ADDED' | 'MODIFIED' | 'DELETED', object: Json) {
    const rv = ++version;
    const metadata: Json = { ...(object.metadata as Json), resourceVersion: String(rv) };
    const stored = { ...object, metadata };
    if (type === 'DELETED') store[resource].delete(String(metadata.name));
    else store[resource].set(String(metadata.name), stored);
    history.push({ rv, resource, type, object: stored });
    const line = `${stringifyExactJson({ type, object: stored })}\n`;
    for (const w of watches) if (w.resource === resource) w.send(line);
    if (resource === 'crs' && options.autoReady && type === 'ADDED') {
      setPodReady(String(metadata.name), true);
    }
  }

  function setPodReady(pod: string, ready: boolean) {
    const current = store.slices.get(SLICE_NAME);
    const endpoints = ((current?.endpoints ?? []) as Json[])
      .filter((e) => (e.targetRef as Json).name !== pod);
    endpoints.push({
      addresses: [`10.0.0.${endpoints.length + 1}`],
      conditions: { ready },
      targetRef: { kind: 'Pod', name: pod, namespace },
    });
    record('slices', current ? 'MODIFIED' : 'ADDED', {
      apiVersion: 'discovery.k8s.io/v1',
      kind: 'EndpointSlice',
      metadata: { name: SLICE_NAME, namespace, labels: sliceLabels },
      addressType: 'IPv4',
      endpoints,
    });
  }

  function list(resource: Resource, kind: string) {
    return json({
      apiVersion: resource === 'crs' ? 'nvidia.com/v1alpha1' : 'discovery.k8s.io/v1',
      kind,
      metadata: { resourceVersion: String(version) },
      items: [...store[resource].values()],
    });
  }

  function watch(resource: Resource, from: string | null): Response {
    const since = Number(from ?? version);
    let entry: { resource: Resource; send(line: string): void; end(): void } | undefined;
    const body = new ReadableStream<Uint8Array>({
      start(controller) {
        if (since < compactedBelow) {
          const gone = {
            type: 'ERROR',
            object: { kind: 'Status', status: 'Failure', reason: 'Expired', code: 410 },
          };
          controller.enqueue(encoder.encode(`${JSON.stringify(gone)}\n`));
          controller.close();
          return;
        }
        for (const h of history) {
          if (h.resource === resource && h.rv > since) {
            controller.enqueue(
              encoder.encode(`${stringifyExactJson({ type: h.type, object: h.object })}\n`),
            );
          }
        }
        const self = {
          resource,
          send: (line: string) => controller.enqueue(encoder.encode(line)),
          end: () => {
            watches.delete(self);
            controller.close();
          },
        };
        entry = self;
        watches.add(self);
      },
      cancel() {
        if (entry) watches.delete(entry);
      },
    });
    return new Response(body, { headers: { 'content-type': 'application/json' } });
  }

  function matchesSelector(selector: string | null): boolean {
    if (!selector) return true;
    return selector.split(',').every((term) => {
      const [k, v] = term.split('=');
      return (sliceLabels as Record<string, string>)[k ?? ''] === v;
    });
  }

  async function handle(request: Request): Promise<Response> {
    const url = new URL(request.url);
    requests.push(`${request.method} ${url.pathname}${url.search}`);
    if (request.headers.get('authorization') !== `Bearer ${token}`) {
      return status(401, 'Unauthorized');
    }
    const crs = `/apis/nvidia.com/v1alpha1/namespaces/${namespace}/dynamoworkermetadatas`;
    const slices = `/apis/discovery.k8s.io/v1/namespaces/${namespace}/endpointslices`;
    const watching = url.searchParams.get('watch') === '1' ||
      url.searchParams.get('watch') === 'true';
    const from = url.searchParams.get('resourceVersion');

    if (url.pathname === slices && request.method === 'GET') {
      if (!matchesSelector(url.searchParams.get('labelSelector'))) {
        return watching ? watch('slices', '999999999') : json({ items: [], metadata: {} });
      }
      return watching ? watch('slices', from) : list('slices', 'EndpointSliceList');
    }
    if (url.pathname === crs && request.method === 'GET') {
      return watching ? watch('crs', from) : list('crs', 'DynamoWorkerMetadataList');
    }
    if (!url.pathname.startsWith(`${crs}/`)) return status(404, `No route ${url.pathname}`);
    const name = decodeURIComponent(url.pathname.slice(crs.length + 1));
    const existing = store.crs.get(name);

    switch (request.method) {
      case 'GET':
        return existing ? json(existing) : status(404, `"${name}" not found`);
      case 'DELETE':
        if (!existing) return status(404, `"${name}" not found`);
        record('crs', 'DELETED', existing);
        return json(existing);
      case 'PATCH': {
        const type = request.headers.get('content-type');
        const patch = parseExactJson(await request.text()) as Json;
        if (type === 'application/apply-patch+yaml') {
          if (url.searchParams.get('fieldManager') === null) {
            return status(422, 'fieldManager is required for apply patch');
          }
          const metadata = {
            ...(existing?.metadata as Json | undefined),
            ...(patch.metadata as Json),
            name,
            namespace,
            uid: (existing?.metadata as Json | undefined)?.uid ?? `uid-${++uid}`,
          };
          record('crs', existing ? 'MODIFIED' : 'ADDED', { ...patch, metadata });
          return json(store.crs.get(name));
        }
        if (type === 'application/merge-patch+json') {
          if (!existing) return status(404, `"${name}" not found`);
          record('crs', 'MODIFIED', mergePatch(existing, patch) as Json);
          return json(store.crs.get(name));
        }
        return status(415, `Unsupported patch type ${type}`);
      }
    }
    return status(405, `${request.method} not allowed`);
  }

  const server: ServerHandle = await serve({ fetch: handle, hostname: '127.0.0.1', port: 0 });
  const endWatches = () => {
    for (const w of [...watches]) w.end();
  };
  return {
    url: `http://127.0.0.1:${server.port}`,
    token,
    namespace,
    sliceLabels,
    setPodReady,
    getCr: (name) => store.crs.get(name),
    requests,
    endWatches,
    compact() {
      compactedBelow = version;
      history.length = 0;
    },
    async stop() {
      endWatches();
      // Cut kept-alive client connections too, or Node waits for them to time out.
      await server.forceClose();
      await server.drain();
    },
  };
}
