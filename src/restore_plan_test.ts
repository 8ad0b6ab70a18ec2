import assert from "node:assert/strict";
import { planRestore, planRestorePaths, restorablePoints } from "./restore_plan.ts";
import type { Snapshot } from "./snapshot_key.ts";

/** A seeded shard history: fulls, deltas on recent points (some on a point no object makes,
 * some forked), a final full, sizes that make some chains cheaper than their fulls. */
function history(seed: number, objects: number): Snapshot[] {
  let x = seed;
  const random = () => (x = (x * 1_103_515_245 + 12_345) % 2 ** 31) / 2 ** 31;
  const list: Snapshot[] = [];
  const points: string[] = [];
  for (let i = 0; i < objects; i++) {
    const sequenceNumber = String(1_000 + i * 10);
    const common = {
      stream: "s",
      shardId: "shardId-000000000000",
      sequenceNumber,
      final: false,
      encoding: "zstd" as const,
      localFile: "",
    };
    if (points.length === 0 || random() < 0.2) {
      list.push({ ...common, key: `f-${sequenceNumber}`, kind: "full", size: 100_000 });
    } else {
      const back = Math.min(points.length, 1 + Math.floor(random() * 3));
      const base = random() < 0.05 ? "999" : points[points.length - back];
      list.push({
        ...common,
        key: `d-${sequenceNumber}`,
        kind: "delta",
        baseSequenceNumber: base,
        size: Math.floor(random() * 20_000),
      });
    }
    points.push(sequenceNumber);
  }
  const last = points.at(-1)!;
  list.push({
    stream: "s",
    shardId: "shardId-000000000000",
    sequenceNumber: last,
    final: true,
    encoding: "zstd",
    localFile: "",
    key: `f-${last}.final`,
    kind: "full",
    size: 100_000,
  });
  return list;
}

Deno.test("planRestorePaths plans, in one pass, the path planRestore plans for each point", () => {
  for (let seed = 1; seed <= 40; seed++) {
    const list = history(seed, 60);
    const points = restorablePoints(list);
    const paths = planRestorePaths(list, points);
    assert.equal(paths.size, points.length, `seed ${seed}`);
    for (const point of points) {
      const id = `${point.sequenceNumber}${point.final ? ".final" : ""}`;
      const one = planRestore(list, { target: point })!;
      assert.deepEqual(
        paths.get(id)!.map((s) => s.key),
        one.path.map((s) => s.key),
        `seed ${seed}`,
      );
    }
    // A point no chain reaches has no path.
    assert.equal(planRestorePaths(list, [{ sequenceNumber: "999" }]).size, 0);
  }
});
