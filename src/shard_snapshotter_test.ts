import assert from "node:assert/strict";
import { join } from "node:path";
import type { KinesisClientLike } from "./aws_client.ts";
import { logGenerator } from "./generators/log.ts";
import type { ShardPage, ShardRecord } from "./records.ts";
import { scriptedSource } from "./scripted_source.ts";
import { type FollowOptions, type RecordSource, ShardSnapshotter } from "./shard_snapshotter.ts";
import { FileSnapshotStore } from "./store/file_store.ts";
import type { PutOptions } from "./store/snapshot_store.ts";
import { listSnapshots, ShardSnapshotFinder } from "./finder.ts";
import { DatabaseSync } from "node:sqlite";

const STREAM = "follow-stop";
const SHARD = "shardId-000000000000";
const ALL_KEYS = { startingHashKey: "0", endingHashKey: String(2n ** 128n - 1n) };
/** Never called: every record comes from the source. */
const NO_KINESIS = {} as KinesisClientLike;

function records(count: number): ShardRecord[] {
  return Array.from({ length: count }, (_, i) => ({
    sequenceNumber: String(i + 1),
    partitionKey: `k${i}`,
    data: new TextEncoder().encode(`v${i}`),
  }));
}

/**
 * Plays `batch`, then empty pages for as long as the signal it was handed is not aborted — but
 * at most three after `stopped` aborted: a follower that was told to stop and keeps asking for
 * pages has not passed the stop on to its reading.
 */
function untilStopped(batch: ShardRecord[], stopped: AbortSignal): RecordSource {
  return async function* (_kinesis, read): AsyncGenerator<ShardPage> {
    const page = { shardId: SHARD, millisBehindLatest: 0, fullPage: false, closed: false };
    yield { ...page, records: batch, childShards: [] };
    for (let late = 0; !read.signal?.aborted; late += stopped.aborted ? 1 : 0) {
      if (late === 3) throw new Error("follow() kept reading after it was told to stop");
      yield { ...page, records: [], childShards: [] };
    }
  };
}

/** Follows a scripted shard, stopping (with `how`) once its two records are applied. */
async function followUntilApplied(how: (stop: AbortSignal) => FollowOptions) {
  const root = await Deno.makeTempDir({ prefix: "streambolt-follow-stop-" });
  try {
    const store = new FileSnapshotStore({ root: join(root, "store") });
    const stop = new AbortController();
    const point = await new ShardSnapshotter({
      stream: STREAM,
      shardId: SHARD,
      kinesis: NO_KINESIS,
      store,
      localPath: join(root, "work"),
      generator: logGenerator(),
      hashKeyRange: ALL_KEYS,
      source: untilStopped(records(2), stop.signal),
      onProgress: (p) => {
        if (p.phase === "catch-up" && p.sequenceNumber === "2") stop.abort();
      },
    }).follow(how(stop.signal));
    const stored = await listSnapshots(store, STREAM);
    return { point, stored: stored.map((s) => s.sequenceNumber) };
  } finally {
    await Deno.remove(root, { recursive: true });
  }
}

Deno.test("ShardSnapshotter.follow({ stop }) publishes what it applied, then returns", async () => {
  const { point, stored } = await followUntilApplied((stop) => ({
    publishEveryMs: 3_600_000,
    stop,
  }));
  assert.equal(point?.sequenceNumber, "2");
  assert.deepEqual(stored, ["2"]);
});

Deno.test("ShardSnapshotter.follow({ signal }) still stops the same way (deprecated)", async () => {
  const { point, stored } = await followUntilApplied((signal) => ({
    publishEveryMs: 3_600_000,
    signal,
  }));
  assert.equal(point?.sequenceNumber, "2");
  assert.deepEqual(stored, ["2"]);
});

Deno.test("scriptedSource() plays the records after `after`, in pages of `limit`", async () => {
  const source = scriptedSource(records(5), { closed: true });
  const read = { stream: STREAM, shardId: SHARD, after: "1", limit: 3 };
  const pages = [];
  for await (const page of source(NO_KINESIS, read)) pages.push(page);
  assert.deepEqual(
    pages.map((p) => [p.records.map((r) => r.sequenceNumber), p.fullPage, p.closed]),
    [[["2", "3", "4"], true, false], [["5"], false, true]],
  );
  const caughtUp = [];
  for await (const page of source(NO_KINESIS, { ...read, after: "5" })) caughtUp.push(page);
  assert.deepEqual(caughtUp.map((p) => [p.records.length, p.closed]), [[0, true]]);
});

Deno.test("a producer fed by scriptedSource() publishes the shard's final snapshot", async () => {
  const root = await Deno.makeTempDir({ prefix: "streambolt-scripted-" });
  try {
    const store = new FileSnapshotStore({ root: join(root, "store") });
    const point = await new ShardSnapshotter({
      stream: STREAM,
      shardId: SHARD,
      kinesis: NO_KINESIS,
      store,
      localPath: join(root, "work"),
      generator: logGenerator(),
      hashKeyRange: ALL_KEYS,
      source: scriptedSource(records(3), { closed: true }),
    }).snapshotShard();
    assert.equal(point.sequenceNumber, "3");
    assert.equal(point.final, true);
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

/** The sequence numbers a `log` snapshot holds, in order. */
function logOf(file: string): string[] {
  const db = new DatabaseSync(file, { readOnly: true });
  try {
    const rows = db.prepare(
      "SELECT sequence_number FROM log ORDER BY CAST(sequence_number AS INTEGER)",
    ).all();
    return rows.map((r) => String(r.sequence_number));
  } finally {
    db.close();
  }
}

/** A file store that refuses to put deltas while `refusing` is set. */
class RefusesDeltas extends FileSnapshotStore {
  refusing = true;
  override put(key: string, file: string, options: PutOptions): Promise<void> {
    if (this.refusing && options.metadata.kind === "delta") {
      return Promise.reject(new Error("the store refused the delta"));
    }
    return super.put(key, file, options);
  }
}

Deno.test(
  "a run whose delta is refused (its database flushing meanwhile) keeps no copy of the point, and the next run publishes it",
  async () => {
    const root = await Deno.makeTempDir({ prefix: "streambolt-refused-delta-" });
    try {
      const store = new RefusesDeltas({ root: join(root, "store") });
      const run = (count: number) =>
        new ShardSnapshotter({
          stream: STREAM,
          shardId: SHARD,
          kinesis: NO_KINESIS,
          store,
          localPath: join(root, "work"),
          generator: logGenerator(),
          hashKeyRange: ALL_KEYS,
          chain: { maxDeltas: 1_000, maxRestoreRatio: Infinity },
          source: scriptedSource(records(count)),
        }).snapshotShard();
      assert.equal((await run(3)).kind, "full");
      // The run starts flushing its database before it publishes, and waits for that before it
      // fails; the point stays unpublished, and no local copy claims it.
      await assert.rejects(run(5), /refused the delta/);
      assert.deepEqual((await listSnapshots(store, STREAM)).map((s) => s.sequenceNumber), ["3"]);
      store.refusing = false;
      const point = await run(5);
      assert.equal(point.kind, "delta");
      // The producer's copy and a consumer's restore hold the same five records.
      const restored = await new ShardSnapshotFinder({
        store,
        stream: STREAM,
        shardId: SHARD,
        localPath: join(root, "consumer"),
      }).downloadLatestSnapshot();
      for (const file of [point.localFile!, restored!.localFile!]) {
        assert.deepEqual(logOf(file), ["1", "2", "3", "4", "5"]);
      }
    } finally {
      await Deno.remove(root, { recursive: true });
    }
  },
);
