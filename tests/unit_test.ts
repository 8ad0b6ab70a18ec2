import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import {
  hashKeyOf,
  inHashKeyRange,
  InvalidArgumentError,
  type Snapshot,
  startingPosition,
} from "../mod.ts";
import { parseSnapshotKey } from "../format.ts";
import { describeChains, planGarbageCollection } from "../src/gc.ts";
import { deaggregate, isAggregated } from "../src/kinesis/kpl.ts";
import { parseStoreUrl } from "../src/store/store_url.ts";
import { ownsShard } from "../src/stream_snapshotter.ts";
import { parseDuration, UsageError } from "../src/cli/_common.ts";
import { parseWorker } from "../src/cli/snapshot.ts";
import { aggregate } from "./support/kpl.ts";

function snap(key: string, ageMs?: number): Snapshot {
  return {
    ...parseSnapshotKey(key)!,
    key,
    localFile: "",
    lastModified: ageMs === undefined ? undefined : new Date(Date.now() - ageMs),
  };
}

Deno.test("planGarbageCollection() never picks a shard's newest snapshot", async (t) => {
  const a = ["s/shardId-0/1.sqlite.zst", "s/shardId-0/10.sqlite.zst", "s/shardId-0/9.sqlite.zst"];
  const b = ["s/shardId-1/5.sqlite.zst", "s/shardId-1/5.final.sqlite.zst"];
  const all = [...a, ...b].map((k) => snap(k, 10 * 86_400_000));
  await t.step("keep 1 keeps the newest of each shard, by integer order", () => {
    const keys = planGarbageCollection(all, { retention: { keepPoints: 1 } }).doomed
      .map((s) => s.key).sort();
    assert.deepEqual(keys, [
      "s/shardId-0/1.sqlite.zst",
      "s/shardId-0/9.sqlite.zst",
      "s/shardId-1/5.sqlite.zst",
    ]);
  });
  await t.step("keep more than there are deletes nothing", () => {
    assert.deepEqual(planGarbageCollection(all, { retention: { keepPoints: 5 } }).doomed, []);
  });
  await t.step("an age limit spares young snapshots and those of unknown age", () => {
    const mixed = [
      snap("s/shardId-0/1.sqlite.zst", 10 * 86_400_000),
      snap("s/shardId-0/2.sqlite.zst", 60_000),
      snap("s/shardId-0/3.sqlite.zst"),
      snap("s/shardId-0/4.sqlite.zst", 10 * 86_400_000),
    ];
    const retention = { keepPoints: 1, retainMs: 86_400_000 };
    const keys = planGarbageCollection(mixed, { retention }).doomed.map((s) => s.key);
    assert.deepEqual(keys, ["s/shardId-0/1.sqlite.zst"]);
  });
  await t.step("keep below 1 is refused", () => {
    for (const keep of [0, -1, 1.5]) {
      assert.throws(
        () => planGarbageCollection(all, { retention: { keepPoints: keep } }),
        InvalidArgumentError,
      );
    }
  });
});

Deno.test("parseStoreUrl() accepts s3://, file:// and paths, and names bad URLs", () => {
  assert.deepEqual(parseStoreUrl("s3://my-bucket"), {
    kind: "s3",
    bucket: "my-bucket",
    prefix: "",
  });
  assert.deepEqual(parseStoreUrl("s3://my-bucket/a/b/"), {
    kind: "s3",
    bucket: "my-bucket",
    prefix: "a/b",
  });
  assert.deepEqual(parseStoreUrl("file:///srv/snaps"), { kind: "file", root: "/srv/snaps" });
  assert.equal(parseStoreUrl("./snaps").kind, "file");
  for (const bad of ["", "gs://bucket/x", "s3://", "s3://UPPER/x", "s3://b/../x", "http://x"]) {
    assert.throws(() => parseStoreUrl(bad), (e: Error) => {
      assert.ok(e instanceof InvalidArgumentError);
      assert.ok(e.message.includes(JSON.stringify(bad)), e.message);
      return true;
    });
  }
});

Deno.test("parseDuration() and parseWorker() read the CLI's forms", () => {
  assert.equal(parseDuration("x", "90s"), 90_000);
  assert.equal(parseDuration("x", "1h30m"), 5_400_000);
  assert.equal(parseDuration("x", "2w"), 1_209_600_000);
  for (const bad of ["", "7", "7 d", "1y", "-1d", "1d2"]) {
    assert.throws(() => parseDuration("x", bad), UsageError, bad);
  }
  assert.deepEqual(parseWorker("1/3"), { index: 1, count: 3 });
  for (const bad of ["3/3", "1/0", "a/2", "1-2", "/2"]) {
    assert.throws(() => parseWorker(bad), UsageError, bad);
  }
});

Deno.test("ownsShard() splits shards stably and completely among workers", () => {
  const shards = Array.from({ length: 200 }, (_, i) => `shardId-${String(i).padStart(12, "0")}`);
  for (const count of [1, 2, 3, 7]) {
    const owners = shards.map((s) =>
      Array.from({ length: count }, (_, index) => index).filter((index) =>
        ownsShard(s, { index, count })
      )
    );
    assert.ok(owners.every((o) => o.length === 1), "every shard has exactly one owner");
    for (let index = 0; index < count; index++) {
      const share = owners.filter((o) => o[0] === index).length;
      assert.ok(share > 200 / count / 2, `worker ${index}/${count} gets a fair share: ${share}`);
    }
  }
});

Deno.test("hashKeyOf() routes like Kinesis: MD5 of the partition key, or the explicit key", () => {
  const md5 = BigInt("0x" + createHash("md5").update("user-1").digest("hex"));
  assert.equal(hashKeyOf("user-1"), md5);
  assert.equal(hashKeyOf("user-1", "42"), 42n);
  const range = { startingHashKey: "10", endingHashKey: "20" };
  assert.ok(inHashKeyRange(10n, range) && inHashKeyRange(20n, range));
  assert.ok(!inHashKeyRange(9n, range) && !inHashKeyRange(21n, range));
  assert.deepEqual(startingPosition({ sequenceNumber: "0" }), {
    ShardIteratorType: "TRIM_HORIZON",
  });
});

Deno.test("deaggregate() splits KPL aggregates and passes anything else through", async () => {
  const users = [
    { partitionKey: "a", data: new TextEncoder().encode("one") },
    { partitionKey: "b", data: new TextEncoder().encode("two"), explicitHashKey: "123" },
    { partitionKey: "a", data: new TextEncoder().encode("three") },
  ];
  const [aggregated] = await aggregate(users);
  assert.ok(isAggregated(aggregated.data));
  const record = {
    sequenceNumber: "77",
    partitionKey: aggregated.partitionKey,
    data: aggregated.data,
  };
  const out = deaggregate(record);
  assert.deepEqual(
    out.map((r) => [r.sequenceNumber, r.subSequenceNumber, r.partitionKey, r.explicitHashKey]),
    [["77", 0, "a", undefined], ["77", 1, "b", "123"], ["77", 2, "a", undefined]],
  );
  assert.deepEqual(out.map((r) => new TextDecoder().decode(r.data)), ["one", "two", "three"]);
  // A flipped byte breaks the MD5: the record passes through as it is.
  const broken = aggregated.data.slice();
  broken[10] ^= 1;
  assert.deepEqual(deaggregate({ ...record, data: broken }), [{ ...record, data: broken }]);
  const plain = { sequenceNumber: "1", partitionKey: "p", data: new Uint8Array([1, 2, 3]) };
  assert.deepEqual(deaggregate(plain), [plain]);
});

Deno.test("planGarbageCollection() keeps every object the kept points need", async (t) => {
  const keys = [
    "s/shardId-0/10.sqlite.zst",
    "s/shardId-0/20.from-10.delta.zst",
    "s/shardId-0/30.from-20.delta.zst",
    "s/shardId-0/30.sqlite.zst",
    "s/shardId-0/40.from-30.delta.zst",
    "s/shardId-0/50.from-40.delta.zst",
  ];
  const all = keys.map((k) => ({ ...snap(k, 10 * 86_400_000), size: 1_000 }));
  const deleted = (keep: number) =>
    planGarbageCollection(all, { retention: { keepPoints: keep } }).doomed.map((s) => s.key)
      .sort();
  await t.step("keep 1: the newest point's chain (the newer full and its deltas)", () => {
    assert.deepEqual(deleted(1), [
      "s/shardId-0/10.sqlite.zst",
      "s/shardId-0/20.from-10.delta.zst",
      "s/shardId-0/30.from-20.delta.zst",
    ]);
  });
  await t.step("keep 3 counts points 50, 40 and 30: the older chain goes", () => {
    // With it goes the delta of point 30 (full 30 restores that point): its base is gone.
    assert.deepEqual(deleted(3), [
      "s/shardId-0/10.sqlite.zst",
      "s/shardId-0/20.from-10.delta.zst",
      "s/shardId-0/30.from-20.delta.zst",
    ]);
  });
  await t.step("keep 5 reaches point 20: its chain stays", () => {
    assert.deepEqual(deleted(5), []);
  });
  await t.step("a gap: deltas after it are never what keeps a point restorable", () => {
    const gap = all.filter((s) => !s.key.endsWith("/40.from-30.delta.zst"));
    const doomed = planGarbageCollection(gap, { retention: { keepPoints: 1 } }).doomed
      .map((s) => s.key).sort();
    // Point 30 is the newest restorable one; the orphan delta 50 is newer and left alone (no
    // chain reached it before either); the delta of point 30 goes with its base.
    assert.deepEqual(doomed, [
      "s/shardId-0/10.sqlite.zst",
      "s/shardId-0/20.from-10.delta.zst",
      "s/shardId-0/30.from-20.delta.zst",
    ]);
  });
});

Deno.test("describeChains() groups each full snapshot with the deltas restored from it", () => {
  const keys = [
    "s/shardId-0/10.sqlite.zst",
    "s/shardId-0/20.from-10.delta.zst",
    "s/shardId-0/30.sqlite.zst",
    "s/shardId-0/40.from-30.delta.zst",
    "s/shardId-0/70.from-60.delta.zst",
  ];
  const chains = describeChains(keys.map((k) => ({ ...snap(k), size: 1_000 })));
  assert.deepEqual(
    chains.map((c) => [c.full?.key, c.deltas.map((d) => d.key)]),
    [
      ["s/shardId-0/10.sqlite.zst", ["s/shardId-0/20.from-10.delta.zst"]],
      ["s/shardId-0/30.sqlite.zst", ["s/shardId-0/40.from-30.delta.zst"]],
      [undefined, ["s/shardId-0/70.from-60.delta.zst"]],
    ],
  );
});
