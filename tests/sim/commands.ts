/**
 * The steps a schedule is made of, as fast-check commands: each runs one thing in the
 * {@linkcode World} (records arrive, a producer runs or follows, a held request is released or
 * its process killed, a release of the generator, gc, a consumer, the replica's poll, damage to
 * a stored object, a dead working directory), then checks every invariant. fast-check picks,
 * replays and shrinks the sequences.
 *
 * @module
 */
import fc from "fast-check";
import type { ViewPlan } from "./sim_store.ts";
import type { ProducerStep, World } from "./world.ts";

/** The model fast-check threads through: the world checks itself, so nothing is needed. */
export type Model = Record<string, never>;
type Cmd = fc.AsyncCommand<Model, World>;

/** One step of a schedule, as plain data (a regression case keeps its schedule as these). */
export type StepSpec =
  | { op: "append"; entries: { key: number | null; value: number | null }[] }
  | ({ op: "produce" } & ProducerStep)
  | { op: "release" | "kill"; slot: string }
  | { op: "releaseHeld" | "killHeld"; index: number }
  | { op: "newGeneratorRelease" }
  | { op: "gc"; keep: number; plan: ViewPlan }
  | { op: "consume"; fallback: boolean; refresh: boolean; plan: ViewPlan }
  | { op: "replicaStart" }
  | { op: "status"; plan: ViewPlan }
  | { op: "replicaPoll"; plan: ViewPlan }
  | { op: "damage"; index: number; kind: "flip" | "truncate" | "lose" | "mislabel" }
  | { op: "deadWorkDir"; pid: number }
  | { op: "stopFollow"; pid: number };

/** Runs one step in the world (without the checks). */
export function runStep(world: World, spec: StepSpec): Promise<void> {
  switch (spec.op) {
    case "append":
      world.append(spec.entries);
      return Promise.resolve();
    case "produce":
      return world.producer(spec);
    case "release":
      return world.releaseSlot(spec.slot);
    case "kill":
      world.killSlot(spec.slot);
      return Promise.resolve();
    case "releaseHeld":
    case "killHeld": {
      const held = world.heldSlots();
      if (held.length === 0) return Promise.resolve();
      const slot = held[spec.index % held.length];
      if (spec.op === "killHeld") return Promise.resolve(world.killSlot(slot));
      return world.releaseSlot(slot);
    }
    case "newGeneratorRelease":
      if (world.release < 4) world.release++;
      return Promise.resolve();
    case "gc":
      return world.gc(spec.keep, spec.plan);
    case "consume":
      return world.consumer(spec.fallback, spec.refresh, spec.plan);
    case "replicaStart":
      return world.replicaStart();
    case "status":
      return world.status(spec.plan);
    case "replicaPoll":
      return world.replicaPoll(spec.plan);
    case "damage":
      return world.damage(spec.index, spec.kind);
    case "deadWorkDir":
      return world.deadWorkDir(spec.pid);
    case "stopFollow":
      world.stopFollow(spec.pid);
      return Promise.resolve();
  }
}

/** Runs a step and then checks every invariant. */
export async function runChecked(world: World, spec: StepSpec): Promise<void> {
  world.log.push(JSON.stringify(spec));
  await runStep(world, spec);
  await world.checkAll();
}

const planText = (p: ViewPlan) =>
  [
    p.holdAt ? `hold@${p.holdAt}` : "",
    p.failRequest?.length ? `failRequest@${p.failRequest}` : "",
    p.failReply?.length ? `failReply@${p.failReply}` : "",
  ].filter(Boolean).join(",");

/** A step, readably. */
export function describeStep(spec: StepSpec): string {
  switch (spec.op) {
    case "append":
      return `append(${
        spec.entries.map((e) =>
          `${e.key === null ? "NULL" : `k${e.key}`}=${e.value === null ? "del" : e.value}`
        ).join(" ")
      })`;
    case "produce": {
      const what = spec.follow
        ? `follow(stop@${spec.stopAfterPages},every=${spec.publishEveryMs})`
        : "run";
      const plan = planText(spec.plan);
      return `p${spec.pid}.${what}{retain=${spec.retainChains},maxDeltas=${spec.maxDeltas}${
        spec.full ? ",full" : ""
      },page=${spec.pageSize}${plan ? "," + plan : ""}}`;
    }
    case "release":
    case "kill":
      return `${spec.op}(${spec.slot})`;
    case "releaseHeld":
    case "killHeld":
      return `${spec.op}(#${spec.index})`;
    case "gc":
      return `gc(keep=${spec.keep}${planText(spec.plan) ? "," + planText(spec.plan) : ""})`;
    case "consume": {
      const flags = [spec.fallback ? "fallback" : "", spec.refresh ? "refresh" : ""];
      return `consumer.downloadLatest(${[...flags, planText(spec.plan)].filter(Boolean)})`;
    }
    case "replicaPoll":
      return `replica.poll(${planText(spec.plan)})`;
    case "status":
      return `status(${planText(spec.plan)})`;
    case "damage":
      return `damage(${spec.kind}, object ${spec.index})`;
    case "deadWorkDir":
      return `deadWorkDir(p${spec.pid})`;
    case "stopFollow":
      return `stopFollow(p${spec.pid})`;
    default:
      return spec.op;
  }
}

/** A step as a fast-check command. */
class Step implements Cmd {
  constructor(readonly spec: StepSpec) {}
  check(): boolean {
    return true;
  }
  run(_model: Model, world: World): Promise<void> {
    return runChecked(world, this.spec);
  }
  toString(): string {
    return describeStep(this.spec);
  }
}

/** A call number: mostly the first few (a run's listing, its first downloads). */
const call = fc.oneof(
  { weight: 3, arbitrary: fc.integer({ min: 1, max: 3 }) },
  { weight: 1, arbitrary: fc.integer({ min: 4, max: 8 }) },
);
/** Mostly clean; sometimes a lost request or reply, or a call held. */
const plan: fc.Arbitrary<ViewPlan> = fc.oneof(
  { weight: 6, arbitrary: fc.constant({}) },
  { weight: 1, arbitrary: call.map((n) => ({ failRequest: [n] })) },
  { weight: 1, arbitrary: call.map((n) => ({ failReply: [n] })) },
  { weight: 3, arbitrary: call.map((n) => ({ holdAt: n })) },
);
const holdOnly: fc.Arbitrary<ViewPlan> = fc.oneof(
  { weight: 2, arbitrary: fc.constant({}) },
  { weight: 2, arbitrary: call.map((n) => ({ holdAt: n })) },
  { weight: 1, arbitrary: call.map((n) => ({ failRequest: [n] })) },
);

const entry = fc.record({
  key: fc.oneof({ weight: 8, arbitrary: fc.integer({ min: 0, max: 5 }) }, {
    weight: 1,
    arbitrary: fc.constant(null),
  }),
  value: fc.oneof({ weight: 5, arbitrary: fc.nat(99) }, {
    weight: 1,
    arbitrary: fc.constant(null),
  }),
});

const producer: fc.Arbitrary<ProducerStep> = fc.record({
  pid: fc.integer({ min: 0, max: 1 }),
  follow: fc.boolean(),
  stopAfterPages: fc.integer({ min: 0, max: 4 }),
  publishEveryMs: fc.constantFrom(0, 1e9),
  retainChains: fc.constantFrom(0, 1, 2),
  maxDeltas: fc.integer({ min: 1, max: 4 }),
  full: fc.oneof({ weight: 6, arbitrary: fc.constant(false) }, {
    weight: 1,
    arbitrary: fc.constant(true),
  }),
  pageSize: fc.integer({ min: 1, max: 4 }),
  plan,
});

const step = (spec: fc.Arbitrary<StepSpec>) => spec.map((s) => new Step(s));

/** Every command, weighted (by repetition) by how much of the system it moves. */
export const commands: fc.Arbitrary<Cmd>[] = [
  ...Array(2).fill(step(
    fc.array(entry, { minLength: 1, maxLength: 6 }).map((entries) => ({
      op: "append" as const,
      entries,
    })),
  )),
  ...Array(4).fill(step(producer.map((o) => ({ op: "produce" as const, ...o })))),
  ...Array(3).fill(step(fc.nat(3).map((index) => ({ op: "releaseHeld" as const, index })))),
  step(fc.nat(3).map((index) => ({ op: "killHeld" as const, index }))),
  step(fc.constant({ op: "newGeneratorRelease" as const })),
  step(
    fc.tuple(fc.integer({ min: 1, max: 3 }), plan).map(([keep, plan]) => ({
      op: "gc" as const,
      keep,
      plan,
    })),
  ),
  ...Array(2).fill(step(
    fc.tuple(fc.boolean(), fc.boolean(), holdOnly).map(([fallback, refresh, plan]) => ({
      op: "consume" as const,
      fallback,
      refresh,
      plan,
    })),
  )),
  step(fc.constant({ op: "replicaStart" as const })),
  step(holdOnly.map((plan) => ({ op: "status" as const, plan }))),
  ...Array(2).fill(step(holdOnly.map((plan) => ({ op: "replicaPoll" as const, plan })))),
  step(
    fc.tuple(
      fc.nat(20),
      fc.constantFrom("flip", "truncate", "lose", "mislabel") as fc.Arbitrary<
        "flip" | "truncate" | "lose" | "mislabel"
      >,
    ).map(([index, kind]) => ({ op: "damage" as const, index, kind })),
  ),
  step(fc.integer({ min: 0, max: 1 }).map((pid) => ({ op: "deadWorkDir" as const, pid }))),
  step(fc.integer({ min: 0, max: 1 }).map((pid) => ({ op: "stopFollow" as const, pid }))),
];
