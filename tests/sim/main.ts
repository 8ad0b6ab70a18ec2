/**
 * `deno task sim`: random schedules for `SIM_SECONDS` (default 60), or the one schedule named
 * by `SIM_SEED` and `SIM_PATH`. Prints schedules and steps run, and their rates; on a failure,
 * the shrunk schedule, the message and the one-line command that replays it (exit 1).
 *
 * Environment: `SIM_SECONDS`, `SIM_SEED`, `SIM_PATH`, `SIM_KNOWN_DEFECTS` (`skip`, or a comma
 * list of `defect-1`, `defect-2`, `defect-3`: steer around them), `SIM_MAX_COMMANDS` (40),
 * `SIM_VERBOSE`.
 *
 * @module
 */
import { parseKnownDefects, simulate } from "./run.ts";

function numberEnv(name: string, fallback?: number): number | undefined {
  const text = Deno.env.get(name);
  if (text === undefined || text === "") return fallback;
  const value = Number(text);
  if (!Number.isFinite(value)) {
    console.error(
      `Cannot run the simulation as ${name} is not a number: current value is "${text}"`,
    );
    Deno.exit(2);
  }
  return value;
}

const seconds = numberEnv("SIM_SECONDS", 60)!;
const seed = numberEnv("SIM_SEED");
const path = Deno.env.get("SIM_PATH") || undefined;
let skip;
try {
  skip = parseKnownDefects(Deno.env.get("SIM_KNOWN_DEFECTS"));
} catch (error) {
  console.error((error as Error).message);
  Deno.exit(2);
}
const result = await simulate({
  budgetMs: seconds * 1000,
  seed,
  path,
  replay: Deno.env.get("SIM_REPLAY") || undefined,
  skip,
  maxCommands: numberEnv("SIM_MAX_COMMANDS", 40),
  shrinkMs: numberEnv("SIM_SHRINK_SECONDS", 60)! * 1000,
  verbose: !!Deno.env.get("SIM_VERBOSE"),
});
const secs = result.elapsedMs / 1000;
console.log(
  `simulation: ${result.schedules} schedules, ${result.steps} steps in ${secs.toFixed(1)} s ` +
    `(${(result.schedules / secs).toFixed(2)} schedules/s, ${
      (result.steps / secs).toFixed(1)
    } steps/s), ` +
    `seed ${result.seed}${skip.size > 0 ? `, steering around ${[...skip].join(",")}` : ""}`,
);
if (result.failure) {
  console.log(`FAILED: ${result.failure.message}`);
  console.log(`schedule: ${result.failure.schedule}`);
  console.log(`replay: ${result.failure.replay}`);
  console.log(`steps (for tests/sim/regressions.json): ${JSON.stringify(result.failure.steps)}`);
  Deno.exit(1);
}
