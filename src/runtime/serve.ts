/** `serve()`: picks the HTTP server of the runtime we are on. */
import type { ServeOptions, ServerHandle } from './serve-types.ts';

export type RuntimeName = 'deno' | 'bun' | 'node';

export function detectRuntime(): RuntimeName {
  const g = globalThis as Record<string, unknown>;
  if (g.Deno !== undefined) return 'deno';
  if (g.Bun !== undefined) return 'bun';
  return 'node';
}

export async function serve(options: ServeOptions): Promise<ServerHandle> {
  switch (detectRuntime()) {
    case 'deno':
      return (await import('./serve-deno.ts')).serve(options);
    case 'bun':
      return (await import('./serve-bun.ts')).serve(options);
    default:
      return (await import('./serve-node.ts')).serve(options);
  }
}

export type { ServeOptions, ServerHandle } from './serve-types.ts';
