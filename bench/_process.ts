/**
 * Whole-process figures for figures 11-13: a command's wall time, CPU (user + system) and
 * peak RSS as the operating system accounts them for the finished child, read through GNU
 * `time` (`/usr/bin/time -f`), so that start-up, module loading and exit are all counted.
 *
 * @module
 */
import { DENO } from "../tests/support/emulators.ts";
import { permissionFlags, tasks } from "../tests/support/cli.ts";
import { fromFileUrl } from "../tests/support/paths.ts";

/** GNU time, which reports a child's rusage. */
export const TIME = "/usr/bin/time";

/** The repository root, as a path ending in `/`. */
export const ROOT: string = fromFileUrl(new URL("../", import.meta.url));

/** One process's figures. */
export interface ProcessCost {
  /** Wall seconds. */
  wall: number;
  /** User + system CPU seconds. */
  cpu: number;
  /** Peak RSS in MB (MiB). */
  rssMb: number;
}

/** The medians of several runs' figures, and how many runs. */
export interface MedianCost extends ProcessCost {
  /** Runs counted. */
  runs: number;
}

const MARK = "@@cost";

/**
 * Runs a command once under GNU time.
 *
 * @param args The command and its arguments (`args[0]` is the program).
 * @param options Working directory and extra environment.
 * @returns Its figures, and its stdout.
 * @throws {Error} When it exits non-zero (its stderr is in the message).
 */
export async function measure(
  args: string[],
  options: { cwd: string; env?: Record<string, string> },
): Promise<ProcessCost & { stdout: string }> {
  const out = await new Deno.Command(TIME, {
    args: ["-f", `${MARK} %e %U %S %M`, ...args],
    cwd: options.cwd,
    env: { NO_COLOR: "1", ...options.env },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  const stderr = new TextDecoder().decode(out.stderr);
  const line = stderr.split("\n").findLast((l) => l.startsWith(MARK));
  if (!out.success || !line) {
    throw new Error(`Cannot measure ${args.join(" ")} as it failed: ${stderr.slice(-2000)}`);
  }
  const [wall, user, sys, kb] = line.slice(MARK.length).trim().split(/\s+/).map(Number);
  return {
    wall,
    cpu: user + sys,
    rssMb: kb / 1024,
    stdout: new TextDecoder().decode(out.stdout),
  };
}

/** The median of numbers. */
export function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

/** The medians of each figure over runs. */
export function medians(costs: ProcessCost[]): MedianCost {
  return {
    wall: median(costs.map((c) => c.wall)),
    cpu: median(costs.map((c) => c.cpu)),
    rssMb: median(costs.map((c) => c.rssMb)),
    runs: costs.length,
  };
}

/**
 * Runs several commands in turn, `runs` times each (A B C A B C ...), after one warm-up
 * round that is not counted, and returns each one's medians: alternating keeps the
 * comparison fair when the machine's load drifts.
 *
 * @param commands The commands by name, each with its working directory and environment.
 * @param runs Counted runs of each.
 * @returns The medians by name.
 */
export async function sideBySide(
  commands: Record<string, { args: string[]; cwd: string; env?: Record<string, string> }>,
  runs: number,
): Promise<Record<string, MedianCost>> {
  const costs: Record<string, ProcessCost[]> = {};
  for (let round = 0; round <= runs; round++) {
    for (const [name, c] of Object.entries(commands)) {
      const cost = await measure(c.args, c);
      if (round > 0) (costs[name] ??= []).push(cost);
    }
  }
  return Object.fromEntries(Object.entries(costs).map(([name, c]) => [name, medians(c)]));
}

/** `deno run` with the `cli` task's flags (permissions and V8 flags), for `script`. */
export async function cliArgs(script: string, extraRead: string[] = []): Promise<string[]> {
  const flags = permissionFlags((await tasks()).cli).map((flag) =>
    flag.startsWith("--allow-read=") && extraRead.length > 0
      ? `${flag},${extraRead.join(",")}`
      : flag
  );
  return [DENO, "run", "--quiet", "--config", `${ROOT}deno.json`, ...flags, script];
}
