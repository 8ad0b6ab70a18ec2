import assert from "node:assert/strict";
import {
  assertName,
  assertSequenceNumber,
  BOOTSTRAP_SEQUENCE,
  compareSequenceNumbers,
  compareSnapshots,
  localSnapshotFile,
  parseSnapshotKey,
  snapshotKey,
} from "./snapshot_key.ts";
import { InvalidArgumentError } from "./errors.ts";

const SEQ_A = "49590338271490256608559692538361571095921575989136588898";
const SEQ_B = "49590338271490256608559692540925702759324208523137515618";

Deno.test("compareSequenceNumbers() compares as integers, not strings", () => {
  assert.ok(compareSequenceNumbers("9", "10") < 0);
  assert.ok(compareSequenceNumbers("10", "9") > 0);
  assert.equal(compareSequenceNumbers(SEQ_A, SEQ_A), 0);
  assert.ok(compareSequenceNumbers(SEQ_A, SEQ_B) < 0);
  assert.ok(compareSequenceNumbers(BOOTSTRAP_SEQUENCE, SEQ_A) < 0);
});

Deno.test("snapshotKey() and parseSnapshotKey() round-trip", async (t) => {
  for (const final of [false, true]) {
    for (const encoding of ["zstd", "none"] as const) {
      await t.step(`final=${final} encoding=${encoding}`, () => {
        const parts = {
          stream: "orders.v2",
          shardId: "shardId-000000000001",
          sequenceNumber: SEQ_B,
          final,
          encoding,
          kind: "full" as const,
        };
        const key = snapshotKey(parts);
        assert.ok(key.startsWith("orders.v2/shardId-000000000001/" + SEQ_B));
        assert.deepEqual(parseSnapshotKey(key), parts);
      });
    }
  }
  for (const encoding of ["zstd", "none"] as const) {
    await t.step(`delta encoding=${encoding}`, () => {
      const parts = {
        stream: "orders",
        shardId: "shardId-000000000001",
        sequenceNumber: SEQ_B,
        final: false,
        encoding,
        kind: "delta" as const,
        baseSequenceNumber: SEQ_A,
      };
      const key = snapshotKey(parts);
      assert.equal(
        key,
        `orders/shardId-000000000001/${SEQ_B}.from-${SEQ_A}.delta${
          encoding === "zstd" ? ".zst" : ""
        }`,
      );
      assert.deepEqual(parseSnapshotKey(key), parts);
    });
  }
});

Deno.test("a delta's key never reads as a full snapshot, and must move forward", () => {
  // Format 1 readers matched only this pattern: a delta must not.
  const formatOne = /^(0|[1-9][0-9]{0,127})(\.final)?\.sqlite(\.zst)?$/;
  const delta = snapshotKey({
    stream: "s",
    shardId: "shardId-0",
    sequenceNumber: "20",
    final: false,
    encoding: "zstd",
    kind: "delta",
    baseSequenceNumber: "10",
  });
  assert.equal(formatOne.test(delta.split("/")[2]), false);
  assert.throws(
    () =>
      snapshotKey({
        stream: "s",
        shardId: "shardId-0",
        sequenceNumber: "10",
        final: false,
        encoding: "zstd",
        kind: "delta",
        baseSequenceNumber: "10",
      }),
    InvalidArgumentError,
  );
  assert.equal(parseSnapshotKey("s/shardId-0/10.from-20.delta.zst"), undefined, "backwards");
  assert.equal(parseSnapshotKey("s/shardId-0/20.from-10.final.delta.zst"), undefined);
});

Deno.test("parseSnapshotKey() ignores keys that are not snapshots", () => {
  for (
    const key of [
      "orders/shardId-0/readme.txt",
      "orders/shardId-0/12.sqlite.tmp",
      "orders/shardId-0/012.sqlite",
      "orders/shardId-0/-1.sqlite",
      "orders/shardId-0/1e5.sqlite",
      "orders/12.sqlite",
      "orders/shardId-0/sub/12.sqlite",
      "../shardId-0/12.sqlite",
      "orders/../12.sqlite",
      "/orders/shardId-0/12.sqlite",
      "orders/shardId-0/12.sqlite.zst.meta.json",
      "",
    ]
  ) {
    assert.equal(parseSnapshotKey(key), undefined, key);
  }
});

Deno.test("compareSnapshots() puts a final snapshot after an open one at the same position", () => {
  const open = { sequenceNumber: "5", final: false };
  const final = { sequenceNumber: "5", final: true };
  assert.ok(compareSnapshots(open, final) < 0);
  assert.ok(compareSnapshots(final, { sequenceNumber: "6", final: false }) < 0);
});

Deno.test("assertName() and assertSequenceNumber() reject unsafe values, naming them", () => {
  for (const bad of ["", ".", "..", "a/b", "a\\b", "x".repeat(300), "a b"]) {
    assert.throws(() => assertName("stream", bad), (e: Error) => {
      assert.ok(e instanceof InvalidArgumentError);
      assert.ok(e.message.includes(JSON.stringify(bad)), e.message);
      return true;
    });
  }
  for (const bad of ["", "12a", "-1", "01", "1.5"]) {
    assert.throws(() => assertSequenceNumber(bad), InvalidArgumentError);
  }
  assert.equal(assertSequenceNumber(SEQ_A), SEQ_A);
});

Deno.test("localSnapshotFile() stays under its directory", () => {
  const file = localSnapshotFile("/data/local", {
    stream: "orders",
    shardId: "shardId-000000000000",
    sequenceNumber: "42",
    final: true,
  });
  assert.equal(file, "/data/local/orders/shardId-000000000000/42.final.sqlite");
  assert.throws(
    () =>
      localSnapshotFile("/data", {
        stream: "..",
        shardId: "x",
        sequenceNumber: "1",
        final: false,
      }),
    InvalidArgumentError,
  );
});
