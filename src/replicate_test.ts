import assert from "node:assert/strict";
import { replicaPlan } from "./_replica_shard.ts";
import type { Snapshot } from "./snapshot_key.ts";

function object(kind: "full" | "delta", seq: string, size: number, base?: string): Snapshot {
  return {
    stream: "s",
    shardId: "shardId-000000000000",
    sequenceNumber: seq,
    final: false,
    key: `${seq}.${kind}${base ? `.from-${base}` : ""}`,
    kind,
    baseSequenceNumber: base,
    encoding: "zstd",
    localFile: "",
    size,
  };
}

Deno.test("replicaPlan() brings a file forward by deltas even where a full would be cheaper", () => {
  // A small state: restoring the full at 30 costs less than a large delta from 10 to 30.
  const objects = [
    object("full", "10", 1_000),
    object("delta", "30", 50_000, "10"),
    object("full", "30", 1_000),
  ];
  assert.deepEqual(replicaPlan(objects, "10")?.path.map((o) => o.kind), ["delta"]);
  // No file yet: the cheapest plan.
  assert.deepEqual(replicaPlan(objects)?.path.map((o) => o.key), ["30.full"]);
});

Deno.test("replicaPlan() takes a full only when no delta leads to the newest point", () => {
  const objects = [
    object("full", "10", 1_000),
    object("delta", "20", 100, "10"),
    object("full", "40", 1_000), // published whole only: a gap for the deltas
  ];
  const plan = replicaPlan(objects, "10");
  assert.equal(plan?.sequenceNumber, "40");
  assert.deepEqual(plan?.path.map((o) => o.kind), ["full"]);
  // Already at the newest point: nothing to do.
  assert.deepEqual(replicaPlan(objects, "40")?.path, []);
});
