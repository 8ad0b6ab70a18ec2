/**
 * Garbage collection never leaves a delta that no kept chain reaches: `planGarbageCollection`
 * on its own, and `streambolt gc` on a file store (gc reads keys only, so the objects here hold
 * a few bytes each).
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { FileSnapshotStore, type Snapshot } from "../mod.ts";
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

Deno.test("gc --keep 1 deletes the delta whose base it deletes", () => {
  const doomed = planGarbageCollection(snapshots([3, 2, 1]), { keep: 1 });
  assert.deepEqual(doomed.map((s) => s.key), [KEYS[0], KEYS[1]]);
});

Deno.test("gc keeps a base a delta too young to delete still needs", () => {
  // The full is older than the limit, its delta is not: deleting the full alone would leave
  // the delta unreachable, so both stay.
  const doomed = planGarbageCollection(snapshots([48, 12, 11]), {
    keep: 1,
    olderThanMs: 24 * HOUR_MS,
  });
  assert.deepEqual(doomed.map((s) => s.key), []);
  const old = planGarbageCollection(snapshots([50, 49, 48]), {
    keep: 1,
    olderThanMs: 24 * HOUR_MS,
  });
  assert.deepEqual(old.map((s) => s.key), [KEYS[0], KEYS[1]]);
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
