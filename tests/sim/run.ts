/**
 * Runs schedules: random ones for a time budget, or one replayed from its seed and path. Each
 * schedule is a fast-check command sequence run against a fresh {@linkcode World}; a failure is
 * shrunk by fast-check to a short schedule and reported with the command that replays it.
 *
 * @module
 */
import fc from "fast-check";
import { commands, type Model, runChecked, type StepSpec } from "./commands.ts";
import { type KnownDefect, World } from "./world.ts";

/** Every known defect the schedules can steer around. */
export const KNOWN_DEFECTS: KnownDefect[] = [
  "defect-1",
  "defect-2",
  "defect-3",
  "vanished-base",
  "lost-race-copy",
];

/** Options for {@linkcode simulate}. */
export interface SimOptions {
  /** Random schedules for this long (ms), unless replaying. */
  budgetMs?: number;
  /** The seed: the first schedule's, or the one to replay. */
  seed?: number;
  /** With `seed`: the path of the schedule to replay (as printed). */
  path?: string;
  /** With `path`: the commands' replay path (as printed). */
  replay?: string;
  /** Defects whose commands are steered around. */
  skip?: Set<KnownDefect>;
  /** The longest schedule. Defaults to 40 steps. */
  maxCommands?: number;
  /** Print each schedule's steps when it fails. */
  verbose?: boolean;
}

/** What a simulation did. */
export interface SimResult {
  schedules: number;
  steps: number;
  elapsedMs: number;
  seed: number;
  /** The failure, if a schedule failed: the message and the replay command. */
  failure?: {
    message: string;
    seed: number;
    path: string;
    replayPath: string;
    schedule: string;
    /** The schedule as data, for the regression list. */
    steps: StepSpec[];
    replay: string;
  };
}

/** The one-line command that replays a schedule. */
export function replayCommand(
  seed: number,
  path: string,
  replayPath: string,
  skip: Set<KnownDefect>,
  maxCommands: number,
): string {
  const known = skip.size > 0 ? ` SIM_KNOWN_DEFECTS=${[...skip].join(",")}` : "";
  const max = maxCommands !== 40 ? ` SIM_MAX_COMMANDS=${maxCommands}` : "";
  return `SIM_SEED=${seed} SIM_PATH=${path} SIM_REPLAY='${replayPath}'${known}${max} deno task sim`;
}

interface Counters {
  schedules: number;
  steps: number;
  lastLog: string[];
}

/** One fast-check run: a search from `seed`, or the replay (and further shrinking) of `path`. */
async function check(
  options: SimOptions & { seed: number; limitMs?: number },
  counters: Counters,
): Promise<SimResult["failure"] & { interrupted: boolean } | undefined> {
  const skip = options.skip ?? new Set();
  const maxCommands = options.maxCommands ?? 40;
  const property = fc.asyncProperty(
    fc.commands(commands, { maxCommands, size: "max", replayPath: options.replay }),
    async (cmds) => {
      counters.schedules++;
      const world = await World.create(skip);
      try {
        await fc.asyncModelRun(() => ({ model: {} as Model, real: world }), cmds);
      } finally {
        counters.steps += world.steps;
        counters.lastLog = world.log;
        await world.dispose();
      }
    },
  );
  const details = await fc.check(property, {
    seed: options.seed,
    path: options.path,
    numRuns: 1_000_000_000,
    interruptAfterTimeLimit: options.limitMs,
    markInterruptAsFailure: false,
    verbose: options.verbose ? 1 : 0,
  });
  if (!details.failed) return undefined;
  const error = details.errorInstance as Error | undefined;
  const path = details.counterexamplePath ?? "";
  const schedule = String(details.counterexample?.[0] ?? counters.lastLog.join(", "));
  // fast-check's shrunk commands: wrappers of ours, marked when they ran.
  const shrunk = details.counterexample?.[0] as
    | Iterable<{ hasRan: boolean; cmd: { spec?: StepSpec } }>
    | undefined;
  const steps = shrunk
    ? [...shrunk].filter((c) => c.hasRan).map((c) => c.cmd.spec!)
    : counters.lastLog.map((l) => JSON.parse(l) as StepSpec);
  const replayPath = /replayPath="([^"]*)"/.exec(schedule)?.[1] ?? "";
  return {
    message: error?.message ??
      `${details.errorInstance} (${(details as { error?: string }).error ?? ""})`,
    seed: details.seed,
    path,
    replayPath,
    schedule: schedule.replace(/ \/\*replayPath=.*\*\//, ""),
    steps,
    replay: replayCommand(details.seed, path, replayPath, skip, maxCommands),
    interrupted: details.interrupted,
  };
}

/** Runs schedules (see {@linkcode SimOptions}); a failure found is shrunk for up to
 * `shrinkMs` more. */
export async function simulate(options: SimOptions & { shrinkMs?: number }): Promise<SimResult> {
  const seed = options.seed ?? (Date.now() ^ (Math.random() * 0x7fffffff)) | 0;
  const counters: Counters = { schedules: 0, steps: 0, lastLog: [] };
  const started = performance.now();
  const replaying = options.path !== undefined;
  let failure = await check(
    { ...options, seed, limitMs: replaying ? undefined : options.budgetMs ?? 60_000 },
    counters,
  );
  const result: SimResult = { ...counters, elapsedMs: performance.now() - started, seed };
  if (failure?.interrupted && (options.shrinkMs ?? 0) > 0) {
    // The budget ran out while shrinking: shrink on from where it stopped.
    const more = await check({
      ...options,
      seed: failure.seed,
      path: failure.path,
      replay: failure.replayPath,
      limitMs: options.shrinkMs,
    }, counters);
    if (more) failure = more;
  }
  if (failure) {
    const { interrupted: _, ...rest } = failure;
    result.failure = rest;
  }
  return result;
}

/** `SIM_KNOWN_DEFECTS`: `skip` (all), a comma list, or empty (exercise everything). */
export function parseKnownDefects(value: string | undefined): Set<KnownDefect> {
  if (!value) return new Set();
  if (value === "skip" || value === "all") return new Set(KNOWN_DEFECTS);
  const names = value.split(",").map((s) => s.trim()).filter(Boolean);
  for (const name of names) {
    if (!(KNOWN_DEFECTS as string[]).includes(name)) {
      throw new Error(
        `Cannot read SIM_KNOWN_DEFECTS as it names an unknown defect: current value is "${name}"`,
      );
    }
  }
  return new Set(names as KnownDefect[]);
}

/** Runs one schedule given as data in a fresh world.
 * @returns The failure message, or undefined when every invariant held. */
export async function runSchedule(
  steps: StepSpec[],
  skip: Set<KnownDefect>,
): Promise<string | undefined> {
  const world = await World.create(skip);
  try {
    for (const spec of steps) await runChecked(world, spec);
    return undefined;
  } catch (error) {
    return (error as Error)?.message ?? String(error);
  } finally {
    await world.dispose();
  }
}
