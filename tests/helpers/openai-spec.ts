/**
 * Validates values against a component schema of OpenAI's own OpenAPI document
 * (`tests/fixtures/openai/openapi.yaml`, pinned in the repository with its source and sha256 in
 * the README beside it; `OPENAI_SPEC` overrides the path), for conformance tests of what the
 * server sends.
 *
 *   const spec = loadOpenAISpec();            // throws when the document is missing
 *   assert.deepEqual(spec.validateAgainstSpec('CreateChatCompletionResponse', body), []);
 *
 * The document mixes OpenAPI 3.0 and 3.1 idioms, so before compiling with Ajv (JSON Schema
 * 2020-12) each `nullable: true` becomes `anyOf [schema, null]`, and each `oneOf` becomes `anyOf`:
 * OpenAI's unions overlap (an object can match two branches), which `oneOf` would reject. Formats
 * and vendor keywords (`x-*`, `discriminator`) are ignored.
 */
import { existsSync, mkdirSync, readFileSync, renameSync, statSync, writeFileSync } from 'node:fs';
import process from 'node:process';
import { fileURLToPath } from 'node:url';
import { Ajv2020 } from 'ajv/dist/2020.js';
import type { ValidateFunction } from 'ajv';
import { parse } from 'yaml';

export interface OpenAISpec {
  /** Ajv's errors as `"/path: message"` lines; empty when `value` conforms. */
  validateAgainstSpec(componentName: string, value: unknown): string[];
  /** Whether the document defines `componentName`. */
  has(componentName: string): boolean;
}

export interface LoadOpenAISpecOptions {
  /** The YAML document. @default $OPENAI_SPEC, else tests/fixtures/openai/openapi.yaml */
  path?: string;
}

/** The pinned copy in the repository. */
export const OPENAI_SPEC_FILE = fileURLToPath(
  new URL('../fixtures/openai/openapi.yaml', import.meta.url),
);

/** Where the document is: `$OPENAI_SPEC` when set, else the pinned copy. */
export function findOpenAISpecFile(): string {
  const path = process.env.OPENAI_SPEC || OPENAI_SPEC_FILE;
  if (!existsSync(path)) {
    throw new Error(
      `OpenAI's OpenAPI document is not at ${path} (the repository pins it at ${OPENAI_SPEC_FILE})`,
    );
  }
  return path;
}

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

function normalize(node: Json): Json {
  if (Array.isArray(node)) return node.map(normalize);
  if (node === null || typeof node !== 'object') return node;
  const out: { [key: string]: Json } = {};
  for (const [key, value] of Object.entries(node)) {
    if (key === 'nullable' || key === 'discriminator' || key.startsWith('x-')) continue;
    out[key === 'oneOf' ? 'anyOf' : key] = normalize(value);
  }
  if (node.nullable === true) return { anyOf: [out, { type: 'null' }] };
  return out;
}

const CACHE_DIR = fileURLToPath(new URL('../../node_modules/.cache/', import.meta.url));

/**
 * The document's normalized component schemas. Parsing the 3 MB YAML takes seconds, so the result
 * is cached as JSON under node_modules/.cache, keyed by the file's size and mtime.
 */
function componentSchemas(path: string): { [key: string]: Json } {
  const stat = statSync(path);
  const cache = `${CACHE_DIR}openai-spec-${stat.size}-${Math.trunc(stat.mtimeMs)}.json`;
  try {
    return JSON.parse(readFileSync(cache, 'utf8'));
  } catch {
    // Not cached yet.
  }
  const doc = parse(readFileSync(path, 'utf8')) as { components: { schemas: Json } };
  const schemas = normalize(doc.components.schemas) as { [key: string]: Json };
  try {
    mkdirSync(CACHE_DIR, { recursive: true });
    // Test files run in parallel: write aside, then rename, so no reader sees half a file.
    const temp = `${cache}.${process.pid}.tmp`;
    writeFileSync(temp, JSON.stringify(schemas));
    renameSync(temp, cache);
  } catch {
    // A read-only checkout still works, only slower.
  }
  return schemas;
}

/** Loads and prepares the document; compiles each component on first use. */
export function loadOpenAISpec(options: LoadOpenAISpecOptions = {}): OpenAISpec {
  const path = options.path ?? findOpenAISpecFile();
  const schemas = componentSchemas(path);
  const ajv = new Ajv2020({ strict: false, allErrors: true, validateFormats: false });
  ajv.addSchema({ $id: 'openai', components: { schemas } }, 'openai');
  const compiled = new Map<string, ValidateFunction>();

  return {
    has: (name) => name in schemas,
    validateAgainstSpec(componentName, value) {
      if (!(componentName in schemas)) throw new Error(`No component "${componentName}"`);
      let validate = compiled.get(componentName);
      if (!validate) {
        validate = ajv.compile({ $ref: `openai#/components/schemas/${componentName}` });
        compiled.set(componentName, validate);
      }
      if (validate(value)) return [];
      return (validate.errors ?? []).map((e) =>
        `${e.instancePath || '/'}: ${e.message ?? 'invalid'}${
          e.params && Object.keys(e.params).length > 0 ? ` ${JSON.stringify(e.params)}` : ''
        }`
      );
    },
  };
}
