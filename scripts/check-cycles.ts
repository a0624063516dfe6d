/**
 * Fails when the modules under a folder (default `src/`) import each other in a cycle.
 *
 *   node --import tsx scripts/check-cycles.ts [dir]
 *
 * Reads every non-test `.ts` file under `dir`, takes its relative static imports and re-exports
 * (`import ... from './x.ts'`, `import './x.ts'`, `export ... from './x.ts'`), builds the import
 * graph and prints each strongly connected component of more than one file (or a file importing
 * itself) with one cycle through it; exits 1 when there is any, 0 otherwise.
 *
 * `import type` counts: a type-only import creates no runtime cycle, but the point of the check
 * is that a reader can follow the modules one way (issue #13), and a type cycle breaks that as
 * surely. Dynamic `import()` does not count: it is how a module loads another lazily on purpose.
 * Bare specifiers (packages, `node:*`) are outside the graph.
 *
 * Dependency-free on purpose (no TypeScript API): the import syntax of this codebase is regular
 * enough for a scan that skips comments; `tests/scripts/check-cycles.test.ts` pins what it reads.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import process from 'node:process';

/** Every non-test `.ts` file under `dir`, absolute paths, sorted. */
function listModules(dir: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir).sort()) {
    if (name === 'node_modules' || name.startsWith('.')) continue;
    const path = join(dir, name);
    if (statSync(path).isDirectory()) out.push(...listModules(path));
    else if (name.endsWith('.ts') && !name.endsWith('.test.ts') && !name.endsWith('.d.ts')) {
      out.push(path);
    }
  }
  return out;
}

/** Source text with comments blanked out (strings and template literals kept as they are). */
function stripComments(text: string): string {
  let out = '';
  let i = 0;
  while (i < text.length) {
    const c = text[i];
    const next = text[i + 1];
    if (c === '/' && next === '/') {
      while (i < text.length && text[i] !== '\n') i++;
    } else if (c === '/' && next === '*') {
      const end = text.indexOf('*/', i + 2);
      const stop = end < 0 ? text.length : end + 2;
      out += text.slice(i, stop).replace(/[^\n]/g, ' ');
      i = stop;
    } else if (c === '"' || c === "'" || c === '`') {
      let j = i + 1;
      while (j < text.length && text[j] !== c) j += text[j] === '\\' ? 2 : 1;
      out += text.slice(i, j + 1);
      i = j + 1;
    } else {
      out += c;
      i++;
    }
  }
  return out;
}

/**
 * The relative specifiers a module imports statically. An import or export statement starts a
 * line; its clause (names, braces, `* as x`, `type`) holds no string, so the first `from '...'`
 * after it is its source.
 */
export function relativeImports(text: string): string[] {
  const code = stripComments(text);
  const specs: string[] = [];
  const statement =
    /^[ \t]*(?:import|export)\b(?:\s+type\b)?[\w\s{},*$]*?\bfrom\s*(['"])(\.[^'"]*)\1/gm;
  const bare = /^[ \t]*import\s*(['"])(\.[^'"]*)\1/gm;
  for (const m of code.matchAll(statement)) specs.push(m[2]!);
  for (const m of code.matchAll(bare)) specs.push(m[2]!);
  return specs;
}

/** One import cycle: the files of a strongly connected component and one path around it. */
export interface Cycle {
  /** The component's files, relative to the scanned folder, sorted. */
  files: string[];
  /** One cycle through the component: the first file again at the end. */
  path: string[];
}

/** The import cycles among the non-test modules under `dir` (empty when there are none). */
export function findCycles(dir: string): Cycle[] {
  const root = resolve(dir);
  const modules = listModules(root);
  const known = new Set(modules);
  const edges = new Map<string, string[]>();
  for (const file of modules) {
    const targets = relativeImports(readFileSync(file, 'utf8'))
      .map((spec) => resolve(dirname(file), spec))
      .filter((target) => known.has(target));
    edges.set(file, [...new Set(targets)].sort());
  }

  // Tarjan's strongly connected components, iterative (no recursion depth limit).
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const onStack = new Set<string>();
  const stack: string[] = [];
  const components: string[][] = [];
  let counter = 0;
  for (const start of modules) {
    if (index.has(start)) continue;
    const work: Array<{ node: string; next: number }> = [{ node: start, next: 0 }];
    index.set(start, counter);
    low.set(start, counter++);
    stack.push(start);
    onStack.add(start);
    while (work.length > 0) {
      const frame = work[work.length - 1]!;
      const targets = edges.get(frame.node)!;
      if (frame.next < targets.length) {
        const target = targets[frame.next++]!;
        if (!index.has(target)) {
          index.set(target, counter);
          low.set(target, counter++);
          stack.push(target);
          onStack.add(target);
          work.push({ node: target, next: 0 });
        } else if (onStack.has(target)) {
          low.set(frame.node, Math.min(low.get(frame.node)!, index.get(target)!));
        }
        continue;
      }
      work.pop();
      if (work.length > 0) {
        const parent = work[work.length - 1]!.node;
        low.set(parent, Math.min(low.get(parent)!, low.get(frame.node)!));
      }
      if (low.get(frame.node) === index.get(frame.node)) {
        const component: string[] = [];
        let member: string;
        do {
          member = stack.pop()!;
          onStack.delete(member);
          component.push(member);
        } while (member !== frame.node);
        const selfLoop = edges.get(frame.node)!.includes(frame.node);
        if (component.length > 1 || selfLoop) components.push(component);
      }
    }
  }

  const rel = (file: string) => relative(root, file);
  return components.map((component) => {
    const members = new Set(component);
    const first = [...component].sort()[0]!;
    return {
      files: component.map(rel).sort(),
      path: shortestCycle(first, members, edges).map(rel),
    };
  }).sort((a, b) => a.files[0]!.localeCompare(b.files[0]!));
}

/** The shortest import path from `start` back to itself inside one component (breadth first). */
function shortestCycle(
  start: string,
  members: Set<string>,
  edges: Map<string, string[]>,
): string[] {
  const from = new Map<string, string>();
  const queue = [start];
  for (let i = 0; i < queue.length; i++) {
    const node = queue[i]!;
    for (const target of edges.get(node)!) {
      if (!members.has(target)) continue;
      if (target === start) {
        const path = [start];
        for (let at = node; at !== start; at = from.get(at)!) path.splice(1, 0, at);
        return [...path, start];
      }
      if (!from.has(target)) {
        from.set(target, node);
        queue.push(target);
      }
    }
  }
  return [start, start];
}

if (import.meta.main ?? process.argv[1] === new URL(import.meta.url).pathname) {
  const dir = process.argv[2] ?? new URL('../src/', import.meta.url).pathname;
  const cycles = findCycles(dir);
  for (const cycle of cycles) {
    console.log(`import cycle among ${cycle.files.length} files:`);
    for (const file of cycle.files) console.log(`  ${file}`);
    console.log(`  e.g. ${cycle.path.join(' -> ')}`);
  }
  if (cycles.length > 0) {
    console.log(`${cycles.length} import cycle(s) under ${relative(process.cwd(), dir) || '.'}`);
    process.exit(1);
  }
  console.log(`no import cycle under ${relative(process.cwd(), dir) || '.'}`);
}
