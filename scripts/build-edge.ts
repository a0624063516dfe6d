/**
 * Bundles the Cloudflare Workers entry (`deploy/cloudflare/worker.ts`, which wraps `src/commands/edge.ts`)
 * into one ES module for workerd and wrangler, with esbuild: browser platform,
 * `workerd`/`worker`/`browser` export conditions, no Node built-ins. Also writes `xxhash3.wasm`
 * beside it: hash-wasm's XXH3 module, which Workers must receive precompiled.
 *
 *   node --import tsx scripts/build-edge.ts [outdir]    # default .tmp/edge
 */
import { build } from 'esbuild';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import process from 'node:process';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('../', import.meta.url));

/** hash-wasm's embedded XXH3 WebAssembly module. */
async function xxh3Wasm(): Promise<Uint8Array> {
  const source = await readFile(join(root, 'node_modules/hash-wasm/dist/index.esm.js'), 'utf8');
  const match = /var name\$(\d+) = "xxhash3";\s*var data\$\1 = "([^"]+)"/.exec(source);
  if (!match?.[2]) throw new Error('hash-wasm: the xxhash3 module was not found');
  return Uint8Array.from(atob(match[2]), (c) => c.charCodeAt(0));
}

/** Writes `worker.js` and `xxhash3.wasm` into `outdir`; returns the bundle's size in bytes. */
export async function buildEdgeBundle(outdir: string): Promise<number> {
  await mkdir(outdir, { recursive: true });
  const wasm = await xxh3Wasm();
  await writeFile(join(outdir, 'xxhash3.wasm'), wasm);
  const result = await build({
    entryPoints: [join(root, 'deploy/cloudflare/worker.ts')],
    outfile: join(outdir, 'worker.js'),
    bundle: true,
    format: 'esm',
    platform: 'browser',
    target: 'es2022',
    conditions: ['workerd', 'worker', 'browser'],
    external: ['./xxhash3.wasm'],
    define: { XXH3_WASM_BYTES: String(wasm.byteLength) },
    metafile: true,
    logLevel: 'warning',
  });
  return Object.values(result.metafile.outputs).reduce((n, o) => n + o.bytes, 0);
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const out = process.argv[2] ?? join(root, '.tmp/edge');
  const bytes = await buildEdgeBundle(out);
  console.log(`${out}/worker.js: ${(bytes / 1024).toFixed(0)} KiB`);
}
