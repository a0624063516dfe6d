/**
 * One bundled entry per program the tests spawn on Node, so a child starts without tsx
 * transforming its TypeScript on the way (about half a second of CPU per child on these
 * machines). `scripts/test.ts` builds the bundles once per run and hands their paths to the test
 * files in `SWITCHBOARD_TEST_BUNDLES` (JSON: entry -> bundle); `runtimeCommand()` in
 * tests/helpers/process.ts uses a bundle when there is one and tsx otherwise (a test file run by
 * hand gets tsx). Bun and Deno run TypeScript themselves and get no bundle.
 *
 * esbuild (tsx's own transformer) bundles the repository's code; npm packages stay imports
 * (`packages: 'external'`), resolved from node_modules as usual. Each module's `import.meta.url`
 * becomes its source file's URL, so assets and worker entries found relative to it (the .proto
 * file, the worker-thread entries) resolve exactly as they do unbundled.
 */
import { mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

/** The entries bundled: what the tests spawn. */
export const BUNDLED_ENTRIES = ['src/main.ts', 'tests/fixtures/slow-frontend.ts'];

export const BUNDLES_ENV = 'SWITCHBOARD_TEST_BUNDLES';

/**
 * Bundles each entry into `outDir`; resolves with entry -> bundle path, or with the reason when
 * esbuild is not available (the tests then fall back to tsx).
 */
export async function buildTestBundles(
  root: string,
  outDir: string,
): Promise<{ bundles: Record<string, string> } | { error: string }> {
  let esbuild: typeof import('esbuild');
  try {
    esbuild = await import('esbuild');
  } catch (error) {
    return { error: `esbuild is not installed (${(error as Error).message})` };
  }
  await mkdir(outDir, { recursive: true });
  const bundles: Record<string, string> = {};
  try {
    for (const entry of BUNDLED_ENTRIES) {
      const outfile = join(outDir, `${entry.replaceAll('/', '__').replace(/\.ts$/, '')}.mjs`);
      await esbuild.build({
        absWorkingDir: root,
        entryPoints: [entry],
        outfile,
        bundle: true,
        platform: 'node',
        format: 'esm',
        target: 'node20',
        packages: 'external',
        sourcemap: true,
        logLevel: 'error',
        plugins: [{
          name: 'source-import-meta-url',
          setup(build) {
            build.onLoad({ filter: /\.ts$/ }, async (args) => ({
              contents: (await readFile(args.path, 'utf8')).replaceAll(
                'import.meta.url',
                JSON.stringify(pathToFileURL(args.path).href),
              ),
              loader: 'ts',
            }));
          },
        }],
      });
      bundles[entry] = outfile;
    }
  } catch (error) {
    return { error: `esbuild failed: ${(error as Error).message}` };
  }
  return { bundles };
}
