/**
 * The simulator in CI: every schedule of the regression list (tests/sim/regressions.json), then
 * random schedules for `SIM_CI_SECONDS` (default 120). See docs/simulation.md.
 *
 * A regression case marked `known` reproduces a defect not fixed yet: it must still fail (the
 * test says so visibly), and once it passes the test fails until the mark is removed, so a fix
 * turns its case into a guard. The random search steers around the defects in
 * {@linkcode STEER_AROUND} (their commands would fail every run until fixed); empty that list
 * when the fixes are merged.
 */
import assert from "node:assert/strict";
import type { StepSpec } from "./sim/commands.ts";
import { runSchedule, simulate } from "./sim/run.ts";
import type { KnownDefect } from "./sim/world.ts";

/** Defects the random search steers around until their fixes are merged. */
const STEER_AROUND: KnownDefect[] = [];

interface Regression {
  /** What the schedule found. */
  name: string;
  /** Set while the defect it reproduces is not fixed: the case must still fail. */
  known?: KnownDefect;
  /** Defects the schedule was found steering around. */
  skip: KnownDefect[];
  /** The failure it produced when found. */
  message: string;
  /** The run that found it: its replay command (valid while the command set is unchanged). */
  replay: string;
  steps: StepSpec[];
}

const regressions: Regression[] = JSON.parse(
  await Deno.readTextFile(new URL("./sim/regressions.json", import.meta.url)),
);

for (const regression of regressions) {
  Deno.test(`simulation regression: ${regression.name}`, async () => {
    const failure = await runSchedule(regression.steps, new Set(regression.skip));
    if (regression.known) {
      assert.ok(
        failure !== undefined,
        `the schedule for ${regression.known} passes now: remove its "known" mark in tests/sim/regressions.json`,
      );
      console.log(`  known ${regression.known} still reproduces: ${failure.split("\n")[0]}`);
      return;
    }
    assert.equal(failure, undefined, `replay: ${regression.replay}`);
  });
}

Deno.test("simulation: random schedules for SIM_CI_SECONDS", async () => {
  const seconds = Number(Deno.env.get("SIM_CI_SECONDS") ?? 120);
  // A fixed seed, so that CI is deterministic: a red run means a change broke a schedule that
  // passed before. Its first 3,881 schedules passed a 10-minute soak; `deno task sim` (a new
  // seed each run, or SIM_SEED) is how new schedules are searched.
  const seed = Deno.env.get("SIM_SEED") ?? "1814440971";
  const result = await simulate({
    budgetMs: seconds * 1000,
    seed: seed ? Number(seed) : undefined,
    skip: new Set(STEER_AROUND),
    shrinkMs: 60_000,
  });
  const secs = result.elapsedMs / 1000;
  console.log(
    `  simulation: ${result.schedules} schedules, ${result.steps} steps in ${secs.toFixed(1)} s ` +
      `(${(result.schedules / secs).toFixed(2)} schedules/s, ${
        (result.steps / secs).toFixed(1)
      } steps/s), seed ${result.seed}`,
  );
  if (result.failure) {
    assert.fail(
      `${result.failure.message}\nschedule: ${result.failure.schedule}\nreplay: ${result.failure.replay}\n` +
        `steps (add to tests/sim/regressions.json): ${JSON.stringify(result.failure.steps)}`,
    );
  }
});
