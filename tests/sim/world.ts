/**
 * One simulated world, built fresh for each schedule: a file store behind
 * {@linkcode SimStore}, the scripted records, two producers (two hosts, each with its own local
 * directory), a consumer, `gc`, a store-following {@linkcode LiveReplica} on the virtual clock,
 * and the invariants checked after every step ({@linkcode World.checkAll}).
 *
 * Every actor's operation runs against its own store view. An operation started with a held
 * call waits in its slot until the schedule releases it (everything else overtakes it) or kills
 * it (the process is gone; its call never answers and its working directory stays locked).
 *
 * @module
 */
import { join } from "node:path";
import {
  collectGarbage,
  LiveReplica,
  ShardSnapshotFinder,
  ShardSnapshotter,
  type Snapshot,
  type SnapshotStore,
  type StreamStatus,
  streamStatus,
} from "../../mod.ts";
import { parseSnapshotKey } from "../../format.ts";
import { VirtualClock } from "./clock.ts";
import {
  dumpDb,
  dumpFile,
  modelDump,
  sequenceOf,
  simGenerator,
  type SimRecord,
} from "./generator.ts";
import { SimStore, type StoreView, type ViewPlan } from "./sim_store.ts";
import { NO_KINESIS, scriptedSource, sequenceNumber, statusKinesis } from "./source.ts";
import { SwitchStore } from "./switch_store.ts";

/** The simulated stream and shard. */
export const STREAM = "sim";
export const SHARD = "shardId-000000000000";

const realSetTimeout = globalThis.setTimeout as unknown as (
  f: (...a: unknown[]) => void,
  ms: number,
) => number;
const realClearTimeout = globalThis.clearTimeout as unknown as (id?: number) => void;
/** A step that takes this long (real time) is a hang. */
const HANG_MS = 60_000;

/** The defects the schedule may steer around (`SIM_KNOWN_DEFECTS`). */
export type KnownDefect =
  | "defect-1"
  | "defect-2"
  | "defect-3"
  | "vanished-base"
  | "lost-race-copy";

/** An invariant broke: the message says which and how. */
export class SimInvariantError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "SimInvariantError";
  }
}

/** Options of one producer operation, as the schedule chose them. */
export interface ProducerStep {
  pid: number;
  follow: boolean;
  /** Following: pages read before the stop. */
  stopAfterPages: number;
  publishEveryMs: number;
  retainChains: number;
  maxDeltas: number;
  full: boolean;
  pageSize: number;
  plan: ViewPlan;
}

interface Op {
  slot: string;
  view: StoreView;
  settled: Promise<void>;
  done: boolean;
  startedAt: number;
  check: () => Promise<void>;
}

/** Which errors an operation may end with, by name. */
const ALWAYS_ALLOWED = new Set(["SimStoreError", "SimKilledError"]);

/** One schedule's world. */
export class World {
  readonly dir: string;
  readonly store: SimStore;
  readonly records: SimRecord[] = [];
  readonly clock = new VirtualClock();
  readonly skip: Set<KnownDefect>;
  release = 1;
  steps = 0;
  log: string[] = [];
  #damaged = false;
  #lost = false;
  /** The step of the last loss: operations started before it planned with the lost object. */
  #lostAt = -1;
  /** The dump of each stored object checked, by key and SHA-256: one key may hold different
   * objects over time (see `#checkStore`). */
  #verified = new Map<string, string>();
  /** Every state each point was ever published with (a lost point may be published again). */
  #points = new Map<string, Set<string>>();
  #latest = -1n;
  #ops = new Map<string, Op>();
  /** The stop signals of following producers, by slot. */
  #stops = new Map<string, AbortController>();
  #zombies: Op[] = [];
  #deadDirAt = new Map<number, number>();
  #publisherRelease = new Map<string, number>();
  /** `slot:seq` of every point a producer found already published when it put it. */
  #lostRaces = new Set<string>();
  #unhandled: string[] = [];
  #replica?: LiveReplica;
  #replicaStore?: SwitchStore;
  #replicaError?: unknown;
  #replicaEnd?: Promise<void>;
  #checks = 0;
  #onUnhandled = (event: PromiseRejectionEvent) => {
    event.preventDefault();
    const reason = event.reason as Error;
    this.#unhandled.push(`${reason?.name}: ${reason?.message ?? String(reason)}`);
  };

  private constructor(dir: string, skip: Set<KnownDefect>) {
    this.dir = dir;
    this.skip = skip;
    this.store = new SimStore(join(dir, "store"));
  }

  /** A fresh world in a new temporary directory, the clock and listener installed. */
  static async create(skip: Set<KnownDefect>): Promise<World> {
    const world = new World(await Deno.makeTempDir({ prefix: "streambolt-sim-" }), skip);
    world.clock.install();
    globalThis.addEventListener("unhandledrejection", world.#onUnhandled);
    return world;
  }

  /** Kills whatever is still held, stops the replica, removes the world. */
  async dispose(): Promise<void> {
    try {
      this.store.killAll();
      await Promise.all([...this.#ops.values(), ...this.#zombies].map((op) => op.settled));
      await this.#replica?.stop();
      // Let rejections of the torn-down operations surface before the listener goes.
      await new Promise((r) => realSetTimeout(r, 0));
    } finally {
      this.clock.uninstall();
      globalThis.removeEventListener("unhandledrejection", this.#onUnhandled);
      await Deno.remove(this.dir, { recursive: true }).catch(() => {});
    }
  }

  fail(message: string): never {
    throw new SimInvariantError(message);
  }

  // ---- records and releases ----

  /** Appends scripted records. */
  append(entries: { key: number | null; value: number | null }[]): void {
    for (const e of entries) {
      const i = this.records.length;
      const key = e.key === null && !this.skip.has("defect-2") ? null : `k${e.key ?? 0}`;
      this.records.push({
        seq: sequenceNumber(i + 1),
        key,
        value: e.value === null ? null : `v${e.value}`,
      });
    }
  }

  // ---- producers ----

  #producerDir(pid: number): string {
    return join(this.dir, `producer-${pid}`);
  }

  /** Starts a producer's run or follow; runs it to its held call or to its end. */
  async producer(step: ProducerStep): Promise<void> {
    const slot = `p${step.pid}`;
    if (this.#ops.has(slot)) return;
    let follow = step.follow;
    if (follow && this.skip.has("defect-1") && await this.#releaseChangedSinceLatest()) {
      follow = false; // defect 1: follow() keeps an unpublished copy when onStart changed it
    }
    const release = this.release;
    const view = this.store.view(`${slot}#${this.steps}`, step.plan);
    const stop = new AbortController();
    if (follow) this.#stops.set(slot, stop);
    const snapshotter = new ShardSnapshotter({
      kinesis: NO_KINESIS,
      store: new PublishTracker(view, (key, lost) => {
        if (!lost) return void this.#publisherRelease.set(key, release);
        const seq = parseSnapshotKey(key)?.sequenceNumber;
        if (seq) this.#lostRaces.add(`${slot}:${seq}`);
      }),
      stream: STREAM,
      shardId: SHARD,
      localPath: this.#producerDir(step.pid),
      generator: simGenerator(release),
      source: scriptedSource(this.records, {
        pageSize: step.pageSize,
        stop: follow ? { controller: stop, afterPages: step.stopAfterPages } : undefined,
      }),
      // retain N: the newest N points, whatever their age; 0: keep everything.
      retention: step.retainChains === 0
        ? { retainMs: Infinity }
        : { keepPoints: step.retainChains, retainMs: 0 },
      chain: { maxDeltas: step.maxDeltas, maxRestoreRatio: Infinity },
      full: step.full,
      encoding: "zstd",
    });
    const work = follow
      ? () => snapshotter.follow({ publishEveryMs: step.publishEveryMs, signal: stop.signal })
      : () => snapshotter.snapshotShard();
    await this.#start(slot, view, work, (outcome) => {
      const e = outcome.error as Error | undefined;
      // vanished-base: a run whose planned base objects are deleted before it downloads them
      // fails with the file store's raw NotFound.
      if (e?.name === "NotFound" && this.skip.has("vanished-base")) return Promise.resolve();
      return this.#checkOutcome(slot, outcome);
    });
  }

  async #releaseChangedSinceLatest(): Promise<boolean> {
    const latest = await this.#finder(this.store.inner, "check").findLatestSnapshot();
    if (!latest) return false;
    return (this.#publisherRelease.get(latest.key) ?? 0) !== this.release;
  }

  // ---- operations in slots ----

  async #start<T>(
    slot: string,
    view: StoreView,
    work: () => Promise<T>,
    check: (outcome: { value?: T; error?: unknown }) => Promise<void>,
  ): Promise<void> {
    let outcome: { value?: T; error?: unknown } = {};
    const op: Op = {
      slot,
      view,
      done: false,
      startedAt: this.steps,
      settled: Promise.resolve(),
      check: () => check(outcome),
    };
    op.settled = work().then(
      (value) => void (outcome = { value }),
      (error) => void (outcome = { error }),
    ).finally(() => (op.done = true));
    this.#ops.set(slot, op);
    await this.#deadline(Promise.race([view.reached, op.settled]), `${slot} to start`);
    if (op.done) await this.#finish(op);
  }

  async #finish(op: Op): Promise<void> {
    this.#ops.delete(op.slot);
    // An operation that listed before a loss acted on what it listed (its retention deleting
    // what the lost object superseded): the newest point may go back with it.
    if (op.startedAt <= this.#lostAt) this.#lost = true;
    const pid = op.slot === "p0" ? 0 : op.slot === "p1" ? 1 : undefined;
    const dead = pid === undefined ? undefined : this.#deadDirAt.get(pid);
    if (dead !== undefined && op.startedAt > dead) this.#deadDirAt.delete(pid!);
    await op.check();
  }

  /** Lets a held operation go on, and waits for its end (or its next hold: none). */
  async releaseSlot(slot: string): Promise<void> {
    if (slot === "replica") return await this.#releaseReplica();
    const op = this.#ops.get(slot);
    if (!op) return;
    op.view.release();
    await this.#deadline(op.settled, `${slot} to finish`);
    await this.#finish(op);
  }

  /** SIGTERM to a held following producer: its stop aborts while its call waits. */
  stopFollow(pid: number): void {
    const slot = `p${pid}`;
    if (this.#ops.has(slot)) this.#stops.get(slot)?.abort();
  }

  /** The slots whose operation is held now, in a fixed order. */
  heldSlots(): string[] {
    const slots = [...this.#ops.keys()].sort();
    if (this.#replicaStore?.view.held) slots.push("replica");
    return slots;
  }

  /** The process behind a held operation is killed: it never hears from the store again. */
  killSlot(slot: string): void {
    const op = this.#ops.get(slot);
    if (!op || slot === "replica") return;
    this.#ops.delete(slot);
    this.#zombies.push(op);
  }

  #checkOutcome(what: string, outcome: { error?: unknown }): Promise<void> {
    if (outcome.error === undefined) return Promise.resolve();
    const error = outcome.error as Error;
    const allowed = ALWAYS_ALLOWED.has(error?.name) ||
      (this.#damaged && error?.name === "SnapshotIntegrityError");
    if (!allowed) {
      this.fail(`${what} failed with an error it should not: ${error?.name}: ${error?.message}`);
    }
    return Promise.resolve();
  }

  // ---- consumers ----

  #finder(store: SnapshotStore, localDir: string): ShardSnapshotFinder {
    return new ShardSnapshotFinder({
      store,
      stream: STREAM,
      shardId: SHARD,
      localPath: join(this.dir, localDir),
    });
  }

  /** A consumer downloads the newest point (with fallback, refreshing or not). */
  async consumer(fallback: boolean, refresh: boolean, plan: ViewPlan): Promise<void> {
    if (this.#ops.has("consumer")) return;
    const held = this.skip.has("defect-3") ? { ...plan, holdAt: undefined } : plan;
    const view = this.store.view(`consumer#${this.steps}`, held);
    const finder = this.#finder(view, "consumer");
    await this.#start(
      "consumer",
      view,
      () => finder.downloadLatestSnapshot({ fallback, refresh }),
      async (outcome) => {
        await this.#checkOutcome("the consumer's download", outcome);
        const dir = join(this.dir, "consumer", STREAM, SHARD);
        const left = (await Array.fromAsync(Deno.readDir(dir)).catch(() => []))
          .filter((e) => e.name.startsWith(".")).map((e) => e.name);
        if (left.length > 0) this.fail(`the consumer left working files: ${left.join(", ")}`);
        const snapshot = outcome.value as Snapshot | undefined;
        if (snapshot) {
          this.#checkHeld("the consumer", snapshot.sequenceNumber, dumpFile(snapshot.localFile));
        }
      },
    );
  }

  /** `status`: the shard's newest point as `streamStatus` reports it must be the finder's. */
  async status(plan: ViewPlan): Promise<void> {
    if (this.#ops.has("status")) return;
    const view = this.store.view(`status#${this.steps}`, plan);
    await this.#start(
      "status",
      view,
      () =>
        streamStatus({
          kinesis: statusKinesis(SHARD),
          store: view,
          stream: STREAM,
          maxAgeMs: 1e12,
        }),
      async (outcome) => {
        await this.#checkOutcome("status", outcome);
        const row = (outcome.value as StreamStatus | undefined)?.shards[0];
        if (!row) return;
        const latest = await this.#finder(this.store.inner, "check").findLatestSnapshot();
        if (!view.wasHeld && row.sequenceNumber !== latest?.sequenceNumber) {
          this.fail(
            `status reports point ${row.sequenceNumber} where the newest is ${latest?.sequenceNumber}`,
          );
        }
        const missing = row.problems.includes("missing");
        if (missing !== (row.sequenceNumber === undefined)) {
          this.fail(`status says ${row.problems.join(",") || "ok"} of point ${row.sequenceNumber}`);
        }
      },
    );
  }

  /** `gc --keep N`. */
  async gc(keep: number, plan: ViewPlan): Promise<void> {
    if (this.#ops.has("gc")) return;
    const view = this.store.view(`gc#${this.steps}`, plan);
    await this.#start(
      "gc",
      view,
      () => collectGarbage(view, STREAM, { retention: { keepPoints: keep, retainMs: 0 } }),
      (outcome) => this.#checkOutcome("gc", outcome),
    );
  }

  // ---- the replica ----

  /** Starts a store-following replica (when none runs). */
  async replicaStart(): Promise<void> {
    if (this.#replica && this.#replica.state === "running") return;
    await this.#replica?.stop();
    this.#replicaStore = new SwitchStore(this.store.view(`replica#${this.steps}`));
    const replica = new LiveReplica({
      follow: "store",
      store: this.#replicaStore,
      stream: STREAM,
      shardId: SHARD,
      localPath: join(this.dir, "replica"),
      pollIntervalMs: 200,
    });
    replica.addEventListener("error", (e) => (this.#replicaError = e.detail));
    // Resolves when the replica stops on its own (an error, or its shard closed).
    this.#replicaEnd = new Promise((resolve) => {
      replica.addEventListener("error", () => resolve(), { once: true });
      replica.addEventListener("closed", () => resolve(), { once: true });
    });
    this.#replica = replica;
    this.#replicaError = undefined;
    try {
      await this.#deadline(replica.start(), "the replica to start");
    } catch (error) {
      const e = error as Error;
      if (e?.name === "InvalidArgumentError" && /no snapshot yet/.test(e.message)) return;
      await this.#checkOutcome("the replica's start", { error });
      return;
    }
    await this.#checkReplica();
  }

  /** The replica's poll timer fires; it lists and applies (or holds at call `plan.holdAt`). */
  async replicaPoll(plan: ViewPlan): Promise<void> {
    const replica = this.#replica;
    if (!replica || replica.state !== "running" || this.#replicaStore?.view.held) return;
    const held = this.skip.has("defect-3") ? { ...plan, holdAt: undefined } : plan;
    const view = this.store.view(`replica#${this.steps}`, held);
    this.#replicaStore!.view = view;
    const next = this.clock.nextTimerSet();
    if (!this.clock.fireNext()) return;
    await this.#deadline(
      Promise.race([next, view.reached, this.#replicaEnd]),
      "the replica's poll",
    );
    if (!view.held) await this.#afterPoll();
  }

  async #releaseReplica(): Promise<void> {
    const view = this.#replicaStore?.view;
    if (!view?.held) return;
    const next = this.clock.nextTimerSet();
    view.release();
    await this.#deadline(Promise.race([next, this.#replicaEnd]), "the replica's poll");
    await this.#afterPoll();
  }

  async #afterPoll(): Promise<void> {
    if (this.#replica?.state === "failed") {
      const error = this.#replicaError ?? this.#replica.error;
      await this.#checkOutcome("the store-following replica", { error });
      await this.#replica.stop();
      this.#replica = undefined;
      return;
    }
    await this.#checkReplica();
  }

  async #checkReplica(): Promise<void> {
    const replica = this.#replica;
    if (!replica || (replica.state !== "running" && replica.state !== "closed")) return;
    const dump = await replica.query((db) => dumpDb(db));
    this.#checkHeld("the replica", replica.sequenceNumber, dump);
  }

  // ---- damage ----

  /** Flips, truncates, loses or mislabels the `index`th stored object. */
  async damage(index: number, kind: "flip" | "truncate" | "lose" | "mislabel"): Promise<void> {
    const keys = (await Array.fromAsync(this.store.inner.list(`${STREAM}/`))).map((o) => o.key)
      .sort();
    if (keys.length === 0) return;
    const key = keys[index % keys.length];
    const file = join(this.store.inner.root, ...key.split("/"));
    // Damaged bytes keep their stored checksum: check the object again.
    for (const id of this.#verified.keys()) {
      if (id.startsWith(`${key}#`)) this.#verified.delete(id);
    }
    // A consumer holding a lost point cannot chain onto its re-publication: refusing it (an
    // integrity error) is right from here on.
    this.#damaged = true;
    if (kind === "lose") {
      await this.store.inner.delete([key]);
      this.#lost = true;
      this.#lostAt = this.steps;
      return;
    }
    if (kind === "mislabel") {
      const other = keys[(index + 1) % keys.length];
      if (other === key) return;
      const from = join(this.store.inner.root, ...other.split("/"));
      await Deno.copyFile(from, file);
      await Deno.copyFile(`${from}.meta.json`, `${file}.meta.json`);
      return;
    }
    const bytes = await Deno.readFile(file);
    if (bytes.length === 0) return;
    if (kind === "flip") bytes[(index * 7919) % bytes.length] ^= 0x5a;
    await Deno.writeFile(file, kind === "flip" ? bytes : bytes.subarray(0, bytes.length >> 1));
  }

  /** A working directory a killed run (kill -9) left behind: unlocked, half written. */
  async deadWorkDir(pid: number): Promise<void> {
    const dir = join(
      this.#producerDir(pid),
      ".streambolt",
      `${STREAM}.${SHARD}.${crypto.randomUUID()}`,
    );
    await Deno.mkdir(dir, { recursive: true });
    await Deno.writeTextFile(join(dir, ".lock"), "");
    await Deno.writeTextFile(join(dir, "snapshot.sqlite"), "half a database");
    this.#deadDirAt.set(pid, this.steps);
  }

  // ---- invariants ----

  async #deadline<T>(promise: Promise<T>, what: string): Promise<T> {
    let timer: number | undefined;
    const hang = new Promise<never>((_, reject) => {
      timer = realSetTimeout(
        () => reject(new SimInvariantError(`Hang: waited ${HANG_MS} ms for ${what}`)),
        HANG_MS,
      );
    });
    try {
      return await Promise.race([promise, hang]);
    } finally {
      realClearTimeout(timer);
    }
  }

  /** What a consumer holds must be a state a published point holds. */
  #checkHeld(who: string, seq: string, dump: string): void {
    const published = this.#points.get(seq);
    if (published !== undefined) {
      if (!published.has(dump)) {
        const [point] = published;
        this.fail(`${who} holds point ${seq} unlike the published point:\n${diff(point, dump)}`);
      }
      return;
    }
    this.#matchModel(`${who}'s point ${seq}`, seq, dump);
  }

  #matchModel(what: string, seq: string, dump: string): void {
    let closest = "";
    for (let release = 1; release <= 4; release++) {
      const model = modelDump(this.records, seq, release);
      if (model === dump) return;
      if (!closest || diff(model, dump).length < diff(closest, dump).length) closest = model;
    }
    this.fail(`${what} matches no release of the model (closest shown):\n${diff(closest, dump)}`);
  }

  /** Every invariant, after a step. */
  async checkAll(): Promise<void> {
    this.steps++;
    this.#checks++;
    if (this.#unhandled.length > 0) {
      this.fail(`unhandled rejection: ${this.#unhandled.join("; ")}`);
    }
    await this.#checkStore();
    await this.#checkLatest();
    for (const pid of [0, 1]) await this.#checkProducer(pid);
  }

  async #checkStore(): Promise<void> {
    const finder = this.#finder(this.store.inner, `check-${this.#checks}`);
    const listed = await finder.findSnapshots();
    // An object is known by its key and its SHA-256, not by its key alone. Retention and gc
    // delete points a newer one supersedes; once the newer ones are lost, a producer rebuilds
    // (from the stream, or from an older point that survived) and publishes the same point
    // again, under the same key. That is legitimate: every producer publishes only states the
    // records and its release make (the model's), and the point stands as the store now holds
    // it, so a consumer that downloads it holds a published state. The new object may differ
    // from the earlier one (a newer release's onStart added an index): both are states the
    // point was published with. What must never happen is a consumer building on the earlier
    // one with deltas made on the later one; a delta names the publication it applies to, so
    // such a consumer downloads the point again instead (tests/republish_test.ts).
    const objectIds = new Map<string, string>();
    for (const snapshot of listed) {
      const head = await this.store.inner.head(snapshot.key);
      const id = `${snapshot.key}#${head?.metadata.sha256 ?? "gone"}`;
      objectIds.set(snapshot.key, id);
      if (this.#verified.has(id)) continue;
      const dump = await this.#restoreForCheck(finder, snapshot);
      this.#verified.set(id, dump ?? "");
      if (dump === undefined) continue;
      this.#matchModel(`stored point ${snapshot.key}`, snapshot.sequenceNumber, dump);
      const versions = this.#points.get(snapshot.sequenceNumber) ?? new Set();
      this.#points.set(snapshot.sequenceNumber, versions.add(dump));
    }
    // Two objects of one point that a chain reaches now (a full beside a delta, two producers'
    // deltas) must restore to one state.
    const reachable = reachableKeys(listed);
    const bySeq = new Map<string, { key: string; dump: string }>();
    for (const snapshot of listed.filter((s) => reachable.has(s.key))) {
      const dump = this.#verified.get(objectIds.get(snapshot.key)!);
      if (!dump) continue;
      const other = bySeq.get(snapshot.sequenceNumber);
      if (other && other.dump !== dump) {
        this.fail(
          `${other.key} and ${snapshot.key} restore differently:\n${diff(other.dump, dump)}`,
        );
      }
      bySeq.set(snapshot.sequenceNumber, { key: snapshot.key, dump });
    }
    await Deno.remove(join(this.dir, `check-${this.#checks}`), { recursive: true }).catch(() => {});
  }

  /** A stored object's point, restored; undefined when no chain reaches it or it is damaged. */
  async #restoreForCheck(
    finder: ShardSnapshotFinder,
    snapshot: Snapshot,
  ): Promise<string | undefined> {
    try {
      await finder.downloadSnapshot(snapshot);
    } catch (error) {
      const e = error as Error;
      const unreachable = /no chain of verified objects reaches it/.test(e?.message);
      if (e?.name === "SnapshotIntegrityError" && (unreachable || this.#damaged)) return undefined;
      this.fail(`stored point ${snapshot.key} does not restore: ${e?.name}: ${e?.message}`);
    }
    const seq = sequenceOf(snapshot.localFile);
    if (seq !== snapshot.sequenceNumber) {
      this.fail(`${snapshot.key} restores to sequence number ${seq}`);
    }
    return dumpFile(snapshot.localFile);
  }

  async #checkLatest(): Promise<void> {
    const latest = await this.#finder(this.store.inner, "check").findLatestSnapshot();
    const seq = latest ? BigInt(latest.sequenceNumber) : -1n;
    if (seq < this.#latest && !this.#lost) {
      this.fail(`the newest restorable point went back from ${this.#latest} to ${seq}`);
    }
    this.#lost = false;
    this.#latest = seq;
  }

  async #checkProducer(pid: number): Promise<void> {
    const slot = `p${pid}`;
    if (this.#ops.has(slot)) return;
    const base = this.#producerDir(pid);
    const cacheDir = join(base, STREAM, SHARD);
    const entries = await Array.fromAsync(Deno.readDir(cacheDir)).catch(() => []);
    for (const entry of entries) {
      const match = /^(\d+)\.sqlite\.json$/.exec(entry.name);
      if (!match) continue;
      const file = join(cacheDir, `${match[1]}.sqlite`);
      const seq = sequenceOf(file);
      if (seq !== match[1]) this.fail(`${slot}'s local copy ${match[1]} is at ${seq}`);
      // lost-race-copy: a producer whose put of a point found the other's already there keeps
      // its own database as the local copy of the other's point.
      if (this.skip.has("lost-race-copy") && this.#lostRaces.has(`${slot}:${seq}`)) continue;
      this.#checkHeld(`${slot}'s local copy`, seq, dumpFile(file));
    }
    if (this.#zombies.some((z) => z.slot === slot) || this.#deadDirAt.has(pid)) return;
    const work = await Array.fromAsync(Deno.readDir(join(base, ".streambolt"))).catch(() => []);
    if (work.length > 0) {
      this.fail(`${slot} left working files: ${work.map((e) => e.name).join(", ")}`);
    }
  }
}

function diff(expected: string, actual: string): string {
  const a = new Set(expected.split("\n"));
  const b = new Set(actual.split("\n"));
  const missing = [...a].filter((l) => !b.has(l)).map((l) => `  missing:    ${l}`);
  const extra = [...b].filter((l) => !a.has(l)).map((l) => `  unexpected: ${l}`);
  return [...missing, ...extra].join("\n");
}

/** The objects a chain reaches: every full, and every delta whose base point one reaches. */
function reachableKeys(objects: Snapshot[]): Set<string> {
  const points = new Set<string>();
  const keys = new Set<string>();
  const ordered = [...objects].sort((a, b) => {
    const d = BigInt(a.sequenceNumber) - BigInt(b.sequenceNumber);
    return d < 0n ? -1 : d > 0n ? 1 : a.kind === b.kind ? 0 : a.kind === "full" ? -1 : 1;
  });
  for (const s of ordered) {
    if (s.kind === "full" || (s.baseSequenceNumber && points.has(s.baseSequenceNumber))) {
      points.add(s.sequenceNumber);
      keys.add(s.key);
    }
  }
  return keys;
}

/** A store that tells who published each key (the release behind it), and which puts lost a
 * race (the key was there already). */
class PublishTracker implements SnapshotStore {
  readonly url: string;
  #inner: StoreView;
  #onPut: (key: string, lost: boolean) => void;
  constructor(inner: StoreView, onPut: (key: string, lost: boolean) => void) {
    this.#inner = inner;
    this.url = inner.url;
    this.#onPut = onPut;
  }
  list: SnapshotStore["list"] = (prefix, options) => this.#inner.list(prefix, options);
  put: SnapshotStore["put"] = async (key, file, options) => {
    try {
      await this.#inner.put(key, file, options);
    } catch (error) {
      if ((error as Error)?.name === "ObjectExistsError") this.#onPut(key, true);
      throw error;
    }
    this.#onPut(key, false);
  };
  download: SnapshotStore["download"] = (key, file, options) =>
    this.#inner.download(key, file, options);
  delete: SnapshotStore["delete"] = (keys, options) => this.#inner.delete(keys, options);
  head: NonNullable<SnapshotStore["head"]> = (key, options) => this.#inner.head(key, options);
}
