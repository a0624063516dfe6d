/** Reading the three test runners' output: counts and skipped tests (scripts/test.ts). */

export const RUNTIMES = ['node', 'bun', 'deno'] as const;
export type Runtime = typeof RUNTIMES[number];

export interface Skip {
  name: string;
  /** The reason the runner printed (Node only), else undefined. */
  reason?: string;
}

// deno-lint-ignore no-control-regex
const stripAnsi = (s: string) => s.replace(/\x1b\[[0-9;]*m/g, '');

/** Counts and skipped tests from a runner's output for one file. */
export function parseOutput(
  runtime: Runtime,
  output: string,
): { passed: number; failed: number; skips: Skip[] } {
  const text = stripAnsi(output);
  const last = (re: RegExp) => {
    const all = [...text.matchAll(re)];
    return Number(all[all.length - 1]?.[1] ?? 0);
  };
  const skips: Skip[] = [];
  switch (runtime) {
    case 'node': {
      // "﹣ name (1.2ms) # reason" (a skipped test or suite; "# SKIP" when no reason was given)
      for (const m of text.matchAll(/^\s*﹣ (.+?) \([\d.]+m?s\)(?: # (.*))?$/gm)) {
        const reason = m[2]?.trim();
        skips.push({ name: m[1]!, reason: reason && reason !== 'SKIP' ? reason : undefined });
      }
      return {
        passed: last(/^[ℹ#] pass (\d+)/gm),
        // A test past its deadline is "cancelled".
        failed: last(/^[ℹ#] fail (\d+)/gm) + last(/^[ℹ#] cancelled (\d+)/gm),
        skips,
      };
    }
    case 'bun':
      // "(skip) suite > name"; Bun prints no reason (and nothing for the tests of a skipped
      // describe: a file whose tests all skip shows as "ran zero tests").
      for (const m of text.matchAll(/^\(skip\) (.+?)(?: \[[\d.]+m?s\])?$/gm)) {
        skips.push({ name: m[1]! });
      }
      return {
        passed: last(/^\s*(\d+) pass$/gm),
        failed: last(/^\s*(\d+) fail$/gm),
        skips,
      };
    case 'deno':
      // "name ... ignored (0ms)"; Deno prints no reason.
      for (const m of text.matchAll(/^\s*(.+?) \.\.\. ignored/gm)) skips.push({ name: m[1]! });
      return {
        passed: last(/(\d+) passed(?: \(\d+ steps?\))? \| \d+ failed/g),
        failed: last(/\d+ passed(?: \(\d+ steps?\))? \| (\d+) failed/g),
        skips,
      };
  }
}

/**
 * The lines of a failed file's output that say what failed (the failing tests' names and their
 * errors' first lines), at most `max`: the summary at the end of a run repeats them, so a log
 * that keeps only its tail (a CI report) still says why.
 */
export function failureExcerpt(output: string, max = 12): string[] {
  const lines: string[] = [];
  for (const raw of stripAnsi(output).split('\n')) {
    const line = raw.trim();
    if (
      !/^(?:\(fail\)|✖|not ok\b|error:|FAILED\b|(?:\w+)?Error(?: \[\w+\])?:)/.test(line) ||
      lines.includes(line)
    ) continue;
    lines.push(line.length > 240 ? `${line.slice(0, 240)}…` : line);
    if (lines.length >= max) break;
  }
  return lines;
}
