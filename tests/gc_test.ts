/**
 * Garbage collection never leaves a delta that no kept chain reaches: `planGarbageCollection`
 * on its own, and `streambolt gc` on a file store (gc reads keys only, so the objects here hold
 * a few bytes each).
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import {
  DEFAULT_RETENTION,
  FileSnapshotStore,
  InvalidArgumentError,
  type Snapshot,
} from "../mod.ts";
import { parseSnapshotKey } from "../format.ts";
import { planGarbageCollection } from "../src/gc.ts";
import { type CliResult, runCli } from "./support/cli.ts";

const HOUR_MS = 3_600_000;

/** The shape a producer leaves when a chain grows past its policy: the delta of point 2, then
 * a full snapshot of the same point. */
const KEYS = [
  "s/shardId-0/1.sqlite.zst",
  "s/shardId-0/2.from-1.delta.zst",
  "s/shardId-0/2.sqlite.zst",
];

function snapshots(ageHours: number[]): Snapshot[] {
  const now = Date.now();
  return KEYS.map((key, i) => ({
    ...parseSnapshotKey(key)!,
    key,
    localFile: "",
    size: 100,
    lastModified: new Date(now - ageHours[i] * HOUR_MS),
  }));
}

const NOW = new Date("2026-12-02T00:00:00Z");
const keys = (plan: { doomed: Snapshot[] }) => plan.doomed.map((s) => s.key);

Deno.test("gc --keep 1 deletes the delta whose base it deletes", () => {
  const plan = planGarbageCollection(snapshots([3, 2, 1]), { retention: { keepPoints: 1 } });
  assert.deepEqual(keys(plan), [KEYS[0], KEYS[1]]);
  assert.equal(plan.why.get(KEYS[1]), "its base is deleted: no kept chain would reach it");
  assert.equal(plan.why.get(KEYS[2]), "the newest point");
});

Deno.test("gc keeps a base a delta too young to delete still needs", () => {
  // The full is older than the limit, its delta is not: deleting the full alone would leave
  // the delta unreachable, so both stay.
  const retention = { keepPoints: 1, retainMs: 24 * HOUR_MS };
  const young = planGarbageCollection(snapshots([48, 12, 11]), { retention });
  assert.deepEqual(keys(young), []);
  const old = planGarbageCollection(snapshots([50, 49, 48]), { retention });
  assert.deepEqual(keys(old), [KEYS[0], KEYS[1]]);
});

/** A chain by age: full 10 (72 h old), deltas 20 (50 h) and 30 (30 h), full 40 (26 h), deltas
 * 50 (20 h) and 60 (1 h); an object without an age when `unknown` names it. */
function chain(unknown?: string): Snapshot[] {
  const aged: Array<[string, number]> = [
    ["s/shardId-0/10.sqlite.zst", 72],
    ["s/shardId-0/20.from-10.delta.zst", 50],
    ["s/shardId-0/30.from-20.delta.zst", 30],
    ["s/shardId-0/40.sqlite.zst", 26],
    ["s/shardId-0/50.from-40.delta.zst", 20],
    ["s/shardId-0/60.from-50.delta.zst", 1],
  ];
  return aged.map(([key, hours]) => ({
    ...parseSnapshotKey(key)!,
    key,
    localFile: "",
    size: 100,
    lastModified: key === unknown ? undefined : new Date(NOW.getTime() - hours * HOUR_MS),
  }));
}
const OLD_CHAIN = [
  "s/shardId-0/10.sqlite.zst",
  "s/shardId-0/20.from-10.delta.zst",
  "s/shardId-0/30.from-20.delta.zst",
];

Deno.test("retainMs alone keeps every point younger than the age, with its chain", () => {
  const day = planGarbageCollection(chain(), { retention: { retainMs: 24 * HOUR_MS }, now: NOW });
  assert.deepEqual(keys(day), OLD_CHAIN, "points 50 and 60 stay, with full 40 they need");
  assert.equal(day.why.get("s/shardId-0/50.from-40.delta.zst"), "younger than 1d");
  assert.equal(day.why.get("s/shardId-0/40.sqlite.zst"), "needed by point 60");
  assert.equal(
    day.why.get("s/shardId-0/10.sqlite.zst"),
    "older than 1d and needed by no kept point",
  );
  // Point 30 is younger than 48 h: the 72 h old full and delta 20 it is restored from stay.
  const two = planGarbageCollection(chain(), { retention: { retainMs: 48 * HOUR_MS }, now: NOW });
  assert.deepEqual(keys(two), []);
  assert.equal(two.why.get("s/shardId-0/10.sqlite.zst"), "needed by point 30");
});

Deno.test("keepPoints alone counts points whatever their age", () => {
  const young = chain().map((s) => ({ ...s, lastModified: NOW }));
  const plan = planGarbageCollection(young, { retention: { keepPoints: 2 }, now: NOW });
  assert.deepEqual(keys(plan), OLD_CHAIN);
  assert.equal(plan.why.get("s/shardId-0/50.from-40.delta.zst"), "one of the newest 2 points");
});

Deno.test("keepPoints and retainMs together keep what either keeps", () => {
  const both = (keepPoints: number) =>
    keys(
      planGarbageCollection(chain(), {
        retention: { keepPoints, retainMs: 24 * HOUR_MS },
        now: NOW,
      }),
    );
  assert.deepEqual(both(2), OLD_CHAIN, "the age keeps 50 and 60, so does the count");
  assert.deepEqual(both(4), [], "the count reaches point 30, which needs the old chain");
});

Deno.test("without a retention gc keeps a day and the newest point", () => {
  assert.deepEqual(DEFAULT_RETENTION, { retainMs: 24 * HOUR_MS, keepPoints: 1 });
  // Eight hours earlier, point 30 was 22 hours old: it stays, with the chain it needs.
  const earlier = new Date(NOW.getTime() - 8 * HOUR_MS);
  assert.deepEqual(keys(planGarbageCollection(chain(), { now: earlier })), []);
  assert.deepEqual(keys(planGarbageCollection(chain(), { now: NOW })), OLD_CHAIN);
  const later = new Date(NOW.getTime() + 48 * HOUR_MS);
  const plan = planGarbageCollection(chain(), { now: later });
  assert.deepEqual(keys(plan), OLD_CHAIN, "two days on, the newest point and its chain stay");
  assert.equal(plan.why.get("s/shardId-0/50.from-40.delta.zst"), "needed by point 60");
});

Deno.test("a point of unknown age is kept while ages count, and retainMs Infinity keeps all", () => {
  const unknown = chain("s/shardId-0/30.from-20.delta.zst");
  const day = planGarbageCollection(unknown, { retention: { retainMs: 24 * HOUR_MS }, now: NOW });
  assert.deepEqual(keys(day), []);
  assert.equal(day.why.get("s/shardId-0/30.from-20.delta.zst"), "of unknown age");
  const count = planGarbageCollection(unknown, { retention: { keepPoints: 1 }, now: NOW });
  assert.deepEqual(keys(count), OLD_CHAIN, "by count alone ages do not matter");
  const later = new Date(NOW.getTime() + 1_000 * HOUR_MS);
  const forever = planGarbageCollection(chain(), { retention: { retainMs: Infinity }, now: later });
  assert.deepEqual(keys(forever), []);
});

Deno.test("a bad retention is refused, naming the value", () => {
  for (const retention of [{ keepPoints: 0 }, { keepPoints: 1.5 }, { retainMs: -1 }]) {
    assert.throws(
      () => planGarbageCollection(chain(), { retention }),
      (error: Error) =>
        error instanceof InvalidArgumentError && /current value is -?[\d.]+$/.test(error.message),
    );
  }
});

function ok(result: CliResult): CliResult {
  assert.equal(result.code, 0, `exit ${result.code}\nstdout: ${result.stdout}\n${result.stderr}`);
  return result;
}

Deno.test("streambolt gc leaves no delta without a base, and --dry-run says which goes", async () => {
  const cwd = await Deno.makeTempDir({ prefix: "streambolt-gc-" });
  try {
    const store = new FileSnapshotStore({ root: join(cwd, "snaps") });
    const body = join(cwd, "body");
    await Deno.writeTextFile(body, "not read by gc");
    for (const key of KEYS) await store.put(key, body, { metadata: {} });
    const cli = (...args: string[]) => runCli(args, { cwd });
    const common = ["--stream", "s", "--store", "snaps", "--keep", "1"];
    const dry = ok(await cli("gc", ...common, "--dry-run")).stdout;
    assert.match(dry, /would delete\s+shardId-0\s+chain 1\s+delta\s+2\s/);
    assert.doesNotMatch(dry, /no base/);
    ok(await cli("gc", ...common, "-q"));
    const left = JSON.parse(
      ok(await cli("list", "--stream", "s", "--store", "snaps", "--json")).stdout,
    );
    assert.deepEqual(left.map((s: Snapshot) => s.key), [KEYS[2]]);
    const after = ok(await cli("gc", ...common, "--dry-run")).stdout;
    assert.doesNotMatch(after, /no base/);
  } finally {
    await Deno.remove(cwd, { recursive: true });
  }
});

/** A file store holding the aged chain of {@linkcode chain} (gc reads keys and ages only). */
async function agedStore(cwd: string): Promise<void> {
  const store = new FileSnapshotStore({ root: join(cwd, "snaps") });
  const body = join(cwd, "body");
  await Deno.writeTextFile(body, "not read by gc");
  const now = Date.now();
  for (const s of chain()) {
    await store.put(s.key, body, { metadata: {} });
    const mtime = new Date(now - (NOW.getTime() - s.lastModified!.getTime()));
    await Deno.utime(join(store.root, ...s.key.split("/")), mtime, mtime);
  }
}

Deno.test("streambolt gc --retain keeps the young points, and --dry-run says why", async () => {
  const cwd = await Deno.makeTempDir({ prefix: "streambolt-gc-" });
  try {
    await agedStore(cwd);
    const cli = (...args: string[]) =>
      runCli(["gc", "--stream", "s", "--store", "snaps", ...args], { cwd });
    const dry = ok(await cli("--retain", "24h", "--dry-run")).stdout;
    assert.match(dry, /would delete\s+shardId-0\s+chain 1\s+full\s+10\s+\S+\s+older than 1d/);
    assert.match(dry, /keep\s+shardId-0\s+chain 2\s+full\s+40\s+\S+\s+needed by point 60/);
    assert.match(dry, /keep\s+shardId-0\s+chain 2\s+delta\s+60\s+\S+\s+the newest point/);
    const json = JSON.parse(ok(await cli("--dry-run", "--json")).stdout);
    assert.deepEqual(json.deleted.map((s: Snapshot) => s.key), OLD_CHAIN, "the default: a day");
    assert.equal(json.chains[1].why["s/shardId-0/50.from-40.delta.zst"], "younger than 1d");
    ok(await cli("--retain", "forever", "-q"));
    const all = JSON.parse(ok(await cli("--keep", "6", "--dry-run", "--json")).stdout);
    assert.equal(all.deleted.length, 0, "forever deleted nothing");
    ok(await cli("--retain", "2d", "--keep", "1", "-q"));
    const left = JSON.parse(ok(await cli("--keep", "6", "--dry-run", "--json")).stdout);
    assert.equal(left.kept, 6, "point 30 is younger than 2d: its chain stays");
    ok(await cli("--keep", "2", "-q"));
    const two = JSON.parse(ok(await cli("--keep", "6", "--dry-run", "--json")).stdout);
    assert.equal(two.kept, 3, "by count: points 60 and 50, and full 40");
  } finally {
    await Deno.remove(cwd, { recursive: true });
  }
});

Deno.test("a bad --retain or --keep is one line naming the value", async () => {
  const cwd = await Deno.makeTempDir({ prefix: "streambolt-gc-" });
  try {
    const runs = [
      ["gc", "--stream", "s", "--store", "snaps", "--retain", "1x"],
      ["gc", "--stream", "s", "--store", "snaps", "--keep", "0"],
      ["snapshot", "--stream", "s", "--store", "snaps", "--retain", "soon"],
      ["snapshot", "--stream", "s", "--store", "snaps", "--keep", "-1"],
    ];
    for (const args of runs) {
      const result = await runCli(args, { cwd });
      assert.notEqual(result.code, 0, args.join(" "));
      const lines = result.stderr.trim().split("\n");
      assert.equal(lines.length, 1, result.stderr);
      assert.match(lines[0], new RegExp(`--(retain|keep) .*current value is "${args.at(-1)}"$`));
    }
  } finally {
    await Deno.remove(cwd, { recursive: true });
  }
});
