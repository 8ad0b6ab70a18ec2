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

abstract class Step implements Cmd {
  check(): boolean {
    return true;
  }
  async run(_model: Model, world: World): Promise<void> {
    world.log.push(this.toString());
    await this.step(world);
    await world.checkAll();
  }
  abstract step(world: World): Promise<void>;
  abstract toString(): string;
}

const planText = (p: ViewPlan) =>
  [
    p.holdAt ? `hold@${p.holdAt}` : "",
    p.failRequest?.length ? `failRequest@${p.failRequest}` : "",
    p.failReply?.length ? `failReply@${p.failReply}` : "",
  ].filter(Boolean).join(",");

class Append extends Step {
  constructor(readonly entries: { key: number | null; value: number | null }[]) {
    super();
  }
  step(world: World): Promise<void> {
    world.append(this.entries);
    return Promise.resolve();
  }
  toString(): string {
    const text = this.entries.map((e) =>
      `${e.key === null ? "NULL" : `k${e.key}`}=${e.value === null ? "del" : e.value}`
    );
    return `append(${text.join(" ")})`;
  }
}

class Produce extends Step {
  constructor(readonly options: ProducerStep) {
    super();
  }
  step(world: World): Promise<void> {
    return world.producer(this.options);
  }
  toString(): string {
    const o = this.options;
    const what = o.follow ? `follow(stop@${o.stopAfterPages},every=${o.publishEveryMs})` : "run";
    return `p${o.pid}.${what}{retain=${o.retainChains},maxDeltas=${o.maxDeltas}${
      o.full ? ",full" : ""
    },page=${o.pageSize}${planText(o.plan) ? "," + planText(o.plan) : ""}}`;
  }
}

class Release extends Step {
  constructor(readonly slot: string) {
    super();
  }
  step(world: World): Promise<void> {
    return world.releaseSlot(this.slot);
  }
  toString(): string {
    return `release(${this.slot})`;
  }
}

class Kill extends Step {
  constructor(readonly slot: string) {
    super();
  }
  step(world: World): Promise<void> {
    world.killSlot(this.slot);
    return Promise.resolve();
  }
  toString(): string {
    return `kill(${this.slot})`;
  }
}

class NewRelease extends Step {
  step(world: World): Promise<void> {
    if (world.release < 4) world.release++;
    return Promise.resolve();
  }
  toString(): string {
    return "newGeneratorRelease";
  }
}

class Gc extends Step {
  constructor(readonly keep: number, readonly plan: ViewPlan) {
    super();
  }
  step(world: World): Promise<void> {
    return world.gc(this.keep, this.plan);
  }
  toString(): string {
    return `gc(keep=${this.keep}${planText(this.plan) ? "," + planText(this.plan) : ""})`;
  }
}

class Consume extends Step {
  constructor(readonly fallback: boolean, readonly refresh: boolean, readonly plan: ViewPlan) {
    super();
  }
  step(world: World): Promise<void> {
    return world.consumer(this.fallback, this.refresh, this.plan);
  }
  toString(): string {
    const flags = [
      this.fallback ? "fallback" : "",
      this.refresh ? "refresh" : "",
      planText(this.plan),
    ];
    return `consumer.downloadLatest(${flags.filter(Boolean).join(",")})`;
  }
}

class ReplicaStart extends Step {
  step(world: World): Promise<void> {
    return world.replicaStart();
  }
  toString(): string {
    return "replica.start";
  }
}

class ReplicaPoll extends Step {
  constructor(readonly plan: ViewPlan) {
    super();
  }
  step(world: World): Promise<void> {
    return world.replicaPoll(this.plan);
  }
  toString(): string {
    return `replica.poll(${planText(this.plan)})`;
  }
}

class Damage extends Step {
  constructor(readonly index: number, readonly kind: "flip" | "truncate" | "lose" | "mislabel") {
    super();
  }
  step(world: World): Promise<void> {
    return world.damage(this.index, this.kind);
  }
  toString(): string {
    return `damage(${this.kind}, object ${this.index})`;
  }
}

class DeadWorkDir extends Step {
  constructor(readonly pid: number) {
    super();
  }
  step(world: World): Promise<void> {
    return world.deadWorkDir(this.pid);
  }
  toString(): string {
    return `deadWorkDir(p${this.pid})`;
  }
}

const call = fc.integer({ min: 1, max: 8 });
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

const slot = fc.constantFrom("p0", "p1", "consumer", "gc", "replica");

/** Every command, weighted by how much of the system it moves. */
export const commands: fc.Arbitrary<Cmd>[] = [
  fc.array(entry, { minLength: 1, maxLength: 6 }).map((e) => new Append(e)),
  producer.map((o) => new Produce(o)),
  producer.map((o) => new Produce(o)),
  producer.map((o) => new Produce(o)),
  slot.map((s) => new Release(s)),
  slot.map((s) => new Release(s)),
  fc.constantFrom("p0", "p1", "consumer", "gc").map((s) => new Kill(s)),
  fc.constant(new NewRelease()),
  fc.tuple(fc.integer({ min: 1, max: 3 }), plan).map(([k, p]) => new Gc(k, p)),
  fc.tuple(fc.boolean(), fc.boolean(), holdOnly).map(([f, r, p]) => new Consume(f, r, p)),
  fc.constant(new ReplicaStart()),
  holdOnly.map((p) => new ReplicaPoll(p)),
  holdOnly.map((p) => new ReplicaPoll(p)),
  fc.tuple(
    fc.nat(20),
    fc.constantFrom("flip", "truncate", "lose", "mislabel") as fc.Arbitrary<
      "flip" | "truncate" | "lose" | "mislabel"
    >,
  ).map(([i, k]) => new Damage(i, k)),
  fc.integer({ min: 0, max: 1 }).map((p) => new DeadWorkDir(p)),
];
