/**
 * Cloudflare Workers entry: the edge handler, plus one shim. Workers refuse to compile
 * WebAssembly from bytes at run time ("Wasm code generation disallowed by embedder"), which is
 * how `hash-wasm` loads XXH3 (KV block hashing). `scripts/build-edge.ts` extracts that module
 * into `xxhash3.wasm`, which the host compiles at deploy time and hands over as a
 * `WebAssembly.Module`; `WebAssembly.compile` of those exact bytes returns it.
 */
import xxh3 from './xxhash3.wasm';
import edge from '../../src/commands/edge.ts';

declare const XXH3_WASM_BYTES: number;

const compile = WebAssembly.compile.bind(WebAssembly);
WebAssembly.compile = (bytes: BufferSource) =>
  bytes.byteLength === XXH3_WASM_BYTES ? Promise.resolve(xxh3) : compile(bytes);

export default edge;
