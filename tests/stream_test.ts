import assert from "node:assert/strict";
import { join } from "node:path";
import { DatabaseSync } from "node:sqlite";
import {
  type KinesisClient,
  MergeShardsCommand,
  PutRecordCommand,
  SplitShardCommand,
  waitUntilStreamExists,
} from "@aws-sdk/client-kinesis";
import {
  FileSnapshotStore,
  hashKeyOf,
  inHashKeyRange,
  kvGenerator,
  listStreamShards,
  LiveReplica,
  logGenerator,
  ShardSnapshotFinder,
  ShardSnapshotter,
  type Snapshot,
  type SnapshotGenerator,
  SnapshotGeneratorError,
  startingPosition,
  type StreamShard,
  StreamSnapshotter,
} from "../mod.ts";
import { readSnapshotMetadata } from "../format.ts";
import { runCli } from "./support/cli.ts";
import { makeRecords, putRecords, type PutResult, type TestRecord } from "./support/data.ts";
import { createStream } from "./support/emulators.ts";
import { sharedKinesis, SHARES_EMULATORS } from "./support/fixture.ts";
import { aggregate } from "./support/kpl.ts";

const emulators = sharedKinesis("streambolt-stream-");
Deno.test.afterAll(() => emulators.stop());

async function waitActive(kinesis: KinesisClient, stream: string): Promise<void> {
  await waitUntilStreamExists({ client: kinesis, maxWaitTime: 60, minDelay: 1 }, {
    StreamName: stream,
  });
}

function rows<T>(file: string, sql: string): T[] {
  const db = new DatabaseSync(file, { readOnly: true });
  try {
    return db.prepare(sql).all() as T[];
  } finally {
    db.close();
  }
}

async function until(what: string, check: () => boolean | Promise<boolean>, ms = 30_000) {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** The resharded stream the three reshard cases read (and never change). */
interface Resharded {
  stream: string;
  logStore: FileSnapshotStore;
  kvStore: FileSnapshotStore;
  records: TestRecord[];
  put: PutResult[];
  /** The last log run's snapshots, one per shard. */
  logSnaps: Snapshot[];
  /** The shards after the split and the merge. */
  shards: StreamShard[];
}

let resharded: Promise<Resharded> | undefined;

/**
 * A four-shard stream snapshotted (log and kv), then one shard split and two merged, then
 * snapshotted again. Built once, by whichever reshard case runs first.
 */
function reshardedStream(): Promise<Resharded> {
  return resharded ??= (async () => {
    const { kinesis, writer, temp } = await emulators.get();
    const stream = "reshard";
    await createStream(kinesis, stream, 4);
    const logStore = new FileSnapshotStore({ root: join(temp, "reshard-log") });
    const kvStore = new FileSnapshotStore({ root: join(temp, "reshard-kv") });
    const run = (store: FileSnapshotStore, generator: SnapshotGenerator) =>
      new StreamSnapshotter({
        kinesis,
        store,
        stream,
        localPath: join(temp, `reshard-work-${store === logStore ? "log" : "kv"}`),
        generator,
        concurrency: 3,
      }).snapshotStream();
    const records: TestRecord[] = [];
    const put: PutResult[] = [];
    const write = async (n: number, seed: number) => {
      const batch = makeRecords(n, { keys: 150, seed });
      records.push(...batch);
      put.push(...await putRecords(writer, stream, batch));
    };
    await write(800, 1);
    await run(logStore, logGenerator());
    await run(kvStore, kvGenerator());
    await write(400, 2);

    const before = await listStreamShards(kinesis, stream);
    const [s0, , s2, s3] = before;
    const mid = (BigInt(s0.hashKeyRange.startingHashKey) + BigInt(s0.hashKeyRange.endingHashKey)) /
      2n;
    await kinesis.send(
      new SplitShardCommand({
        StreamName: stream,
        ShardToSplit: s0.shardId,
        NewStartingHashKey: mid.toString(),
      }),
    );
    await waitActive(kinesis, stream);
    await kinesis.send(
      new MergeShardsCommand({
        StreamName: stream,
        ShardToMerge: s2.shardId,
        AdjacentShardToMerge: s3.shardId,
      }),
    );
    await waitActive(kinesis, stream);
    await write(600, 3);

    const logSnaps = await run(logStore, logGenerator());
    await run(kvStore, kvGenerator());
    const shards = await listStreamShards(kinesis, stream);
    return { stream, logStore, kvStore, records, put, logSnaps, shards };
  })();
}

/** What a consumer sees: a snapshot downloaded (and verified) into `dir`; its local file. */
async function download(
  store: FileSnapshotStore,
  snap: Snapshot,
  dir: string,
): Promise<string> {
  const finder = new ShardSnapshotFinder({
    store,
    stream: snap.stream,
    shardId: snap.shardId,
    localPath: dir,
  });
  const copy = { ...snap };
  await finder.downloadSnapshot(copy);
  return copy.localFile;
}

Deno.test(
  "StreamSnapshotter applies every record exactly once across a split and a merge",
  SHARES_EMULATORS,
  async () => {
    const { temp } = await emulators.get();
    const { logStore, put, logSnaps } = await reshardedStream();
    const consumer = await Deno.makeTempDir({ dir: temp });
    // Every record exactly once across the shards' own rows.
    const seen = new Map<string, number>();
    const files = new Map<string, string>();
    for (const snap of logSnaps) files.set(snap.shardId, await download(logStore, snap, consumer));
    for (const snap of logSnaps) {
      const own = rows<{ sequence_number: string }>(
        files.get(snap.shardId)!,
        `SELECT sequence_number FROM log WHERE shard_id = '${snap.shardId}'`,
      );
      for (const r of own) seen.set(r.sequence_number, (seen.get(r.sequence_number) ?? 0) + 1);
    }
    assert.equal(seen.size, put.length);
    for (const p of put) assert.equal(seen.get(p.sequenceNumber), 1, p.sequenceNumber);
  },
);

Deno.test(
  "StreamSnapshotter records the lineage of a split and a merge in the snapshots",
  SHARES_EMULATORS,
  async () => {
    const { temp } = await emulators.get();
    const { logStore, logSnaps, shards } = await reshardedStream();
    assert.equal(shards.length, 7, "4 + 2 children of the split + 1 of the merge");
    const consumer = await Deno.makeTempDir({ dir: temp });
    const files = new Map<string, string>();
    for (const snap of logSnaps) files.set(snap.shardId, await download(logStore, snap, consumer));
    // Lineage: parents final naming their children, children naming their parents.
    const byShard = new Map(logSnaps.map((s) => [s.shardId, s]));
    for (const shard of shards) {
      const snap = byShard.get(shard.shardId)!;
      assert.equal(snap.final, shard.closed, shard.shardId);
      const db = new DatabaseSync(files.get(shard.shardId)!, { readOnly: true });
      const meta = readSnapshotMetadata(db)!;
      db.close();
      assert.deepEqual(meta.parentShards.sort(), [...shard.parentShards].sort());
      if (shard.closed) {
        const children = shards.filter((c) => c.parentShards.includes(shard.shardId));
        assert.deepEqual(
          meta.childShards.map((c) => c.shardId).sort(),
          children.map((c) => c.shardId).sort(),
        );
      }
    }
  },
);

Deno.test(
  "after a reshard the open shards' kv snapshots hold the newest value of every key, once",
  SHARES_EMULATORS,
  async () => {
    const { temp } = await emulators.get();
    const { stream, kvStore, records, put, shards } = await reshardedStream();
    const consumer = await Deno.makeTempDir({ dir: temp });
    // kv: the open shards' latest snapshots together hold the newest value of every key, once.
    const expected = new Map<string, { seq: bigint; data: string }>();
    records.forEach((r, i) => {
      const seq = BigInt(put[i].sequenceNumber);
      const cur = expected.get(r.partitionKey);
      // Sequence numbers of one key only grow, also across a reshard (children after parents).
      if (!cur || seq > cur.seq) {
        expected.set(r.partitionKey, { seq, data: new TextDecoder().decode(r.data) });
      }
    });
    const held = new Map<string, string>();
    for (const shard of shards.filter((s) => !s.closed)) {
      const snap = (await new ShardSnapshotFinder({
        store: kvStore,
        stream,
        shardId: shard.shardId,
        localPath: temp,
      }).findLatestSnapshot())!;
      const file = await download(kvStore, snap, consumer);
      for (
        const r of rows<{ key: string; value: Uint8Array }>(
          file,
          "SELECT key, value FROM kv",
        )
      ) {
        assert.ok(!held.has(r.key), `${r.key} is held by one open shard only`);
        assert.ok(inHashKeyRange(hashKeyOf(r.key), shard.hashKeyRange));
        held.set(r.key, new TextDecoder().decode(r.value));
      }
    }
    assert.deepEqual(held, new Map([...expected].map(([k, v]) => [k, v.data])));
  },
);

Deno.test(
  "ShardSnapshotter stores KPL aggregated records as user records",
  SHARES_EMULATORS,
  async () => {
    const { kinesis, temp } = await emulators.get();
    const stream = "kpl";
    await createStream(kinesis, stream, 2);
    const [low, high] = await listStreamShards(kinesis, stream);
    const users = Array.from({ length: 120 }, (_, i) => ({
      partitionKey: `user-${i}`,
      data: new TextEncoder().encode(`payload ${i}`),
      // A few with explicit hash keys inside the low shard's range.
      explicitHashKey: i % 10 === 0
        ? String(BigInt(low.hashKeyRange.endingHashKey) - BigInt(i))
        : undefined,
    }));
    const aggregated = await aggregate(users);
    assert.ok(aggregated.length >= 1);
    for (const a of aggregated) {
      // Route every aggregate into the low shard, whatever its own partition key says.
      await kinesis.send(
        new PutRecordCommand({
          StreamName: stream,
          PartitionKey: a.partitionKey,
          ExplicitHashKey: "0",
          Data: a.data,
        }),
      );
    }
    // A record that only looks aggregated (bad MD5) passes through untouched.
    const fake = new Uint8Array([0xf3, 0x89, 0x9a, 0xc2, ...new Uint8Array(40).fill(7)]);
    await kinesis.send(
      new PutRecordCommand({
        StreamName: stream,
        PartitionKey: "fake",
        ExplicitHashKey: "0",
        Data: fake,
      }),
    );
    const store = new FileSnapshotStore({ root: join(temp, "kpl") });
    const snap = await new ShardSnapshotter({
      kinesis,
      store,
      stream,
      shardId: low.shardId,
      localPath: join(temp, "kpl-work"),
      generator: logGenerator(),
    }).snapshotShard();
    const got = rows<{
      partition_key: string;
      explicit_hash_key: string | null;
      sub_sequence_number: number;
      data: Uint8Array;
    }>(snap.localFile, "SELECT * FROM log ORDER BY sequence_number, sub_sequence_number");
    const passthrough = got.filter((r) => r.partition_key === "fake");
    assert.equal(passthrough.length, 1);
    assert.deepEqual(new Uint8Array(passthrough[0].data), fake);
    const userRows = got.filter((r) => r.partition_key !== "fake");
    // Only the user records that hash into the low shard stay (the KCL's rule after a reshard).
    const inLow = users.filter((u) =>
      inHashKeyRange(hashKeyOf(u.partitionKey, u.explicitHashKey), low.hashKeyRange)
    );
    assert.ok(inLow.length > 0 && inLow.length < users.length);
    assert.deepEqual(
      userRows.map((
        r,
      ) => [r.partition_key, r.explicit_hash_key ?? undefined, new TextDecoder().decode(r.data)]),
      inLow.map((u) => [u.partitionKey, u.explicitHashKey, new TextDecoder().decode(u.data)]),
    );
    assert.ok(userRows.some((r) => r.sub_sequence_number > 0));
    assert.ok(high.shardId);
  },
);

Deno.test(
  "two --worker i/2 runs together cover every shard exactly once",
  SHARES_EMULATORS,
  async () => {
    const { kinesis, writer, temp, env } = await emulators.get();
    const stream = "workers";
    await createStream(kinesis, stream, 6);
    await putRecords(writer, stream, makeRecords(300, { seed: 8 }));
    const cwd = await Deno.makeTempDir({ dir: temp });
    const results = await Promise.all([
      runCli([
        "snapshot",
        "--stream",
        stream,
        "--store",
        "snaps",
        "--worker",
        "0/2",
        "--json",
        "-q",
      ], { cwd, env }),
      runCli([
        "snapshot",
        "--stream",
        stream,
        "--store",
        "snaps",
        "--worker",
        "auto/2",
        "--json",
        "-q",
      ], {
        cwd,
        env: { ...env, JOB_COMPLETION_INDEX: "1" },
      }),
    ]);
    const done: string[] = [];
    for (const r of results) {
      assert.equal(r.code, 0, r.stderr);
      for (const s of JSON.parse(r.stdout)) {
        assert.equal(s.status, "done");
        done.push(s.shardId);
      }
    }
    const all = (await listStreamShards(kinesis, stream)).map((s) => s.shardId);
    assert.deepEqual(done.sort(), all.sort());
    assert.ok(
      JSON.parse(results[0].stdout).length > 0 && JSON.parse(results[1].stdout).length > 0,
    );
    const bad = await runCli([
      "snapshot",
      "--stream",
      stream,
      "--store",
      "snaps",
      "--worker",
      "2/2",
    ], {
      cwd,
      env,
    });
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /"2\/2"/);
  },
);

Deno.test(
  "LiveReplica catches up, keeps up, answers queries and stops cleanly",
  SHARES_EMULATORS,
  async () => {
    const { kinesis, writer, temp } = await emulators.get();
    const stream = "live";
    await createStream(kinesis, stream, 1);
    const [shard] = await listStreamShards(kinesis, stream);
    const store = new FileSnapshotStore({ root: join(temp, "live") });
    await putRecords(writer, stream, makeRecords(300, { seed: 4 }));
    const snap = await new ShardSnapshotter({
      kinesis,
      store,
      stream,
      shardId: shard.shardId,
      localPath: join(temp, "live-work"),
      generator: logGenerator(),
    }).snapshotShard();
    assert.deepEqual(startingPosition(snap), {
      ShardIteratorType: "AFTER_SEQUENCE_NUMBER",
      StartingSequenceNumber: snap.sequenceNumber,
    });
    await putRecords(writer, stream, makeRecords(100, { seed: 5 }));

    const replica = new LiveReplica({
      kinesis,
      store,
      stream,
      shardId: shard.shardId,
      localPath: join(temp, "live-replica"),
      generator: logGenerator(),
      pollIntervalMs: 200,
    });
    let appliedEvents = 0;
    replica.addEventListener("applied", () => appliedEvents++);
    const started = await replica.start();
    assert.equal(started?.key, snap.key);
    const count = () =>
      replica.query((db) => (db.prepare("SELECT count(*) AS n FROM log").get() as { n: number }).n);
    await until("catch-up", async () => (await count()) === 400);
    assert.equal(replica.state, "running");
    assert.ok(appliedEvents > 0);
    assert.equal(replica.lag(), 0);

    // Keeps up with new writes while queries run; every view is consistent with its metadata.
    const writing = putRecords(writer, stream, makeRecords(500, { seed: 6 }), 1);
    let queries = 0;
    while (queries < 50 || (await count()) < 900) {
      await replica.query((db) => {
        const n = (db.prepare("SELECT count(*) AS n FROM log").get() as { n: number }).n;
        const meta = readSnapshotMetadata(db)!;
        assert.equal(meta.recordsApplied, n, "rows and metadata from one committed state");
      });
      queries++;
      await new Promise((r) => setTimeout(r, 10));
      if (queries > 5_000) throw new Error("the replica did not keep up");
    }
    await writing;
    await until("all 900", async () => (await count()) === 900);
    const t0 = performance.now();
    await replica.stop();
    assert.ok(performance.now() - t0 < 5_000, "stop returns promptly");
    assert.equal(replica.state, "stopped");
    await assert.rejects(count());
  },
);

Deno.test(
  "LiveReplica ends when its shard closes, and stop() then returns at once",
  SHARES_EMULATORS,
  async () => {
    const { kinesis, writer, temp } = await emulators.get();
    const stream = "live-close";
    await createStream(kinesis, stream, 1);
    const [shard] = await listStreamShards(kinesis, stream);
    await putRecords(writer, stream, makeRecords(50, { seed: 9 }));
    const replica = new LiveReplica({
      kinesis,
      stream,
      shardId: shard.shardId,
      localPath: join(temp, "live-close"),
      generator: logGenerator(),
      pollIntervalMs: 200,
    });
    const closed = new Promise<unknown>((r) =>
      replica.addEventListener("closed", (e) => r((e as CustomEvent).detail))
    );
    await replica.start();
    await kinesis.send(
      new SplitShardCommand({
        StreamName: stream,
        ShardToSplit: shard.shardId,
        NewStartingHashKey: (2n ** 127n).toString(),
      }),
    );
    const children = (await closed) as Array<{ shardId: string }>;
    assert.equal(children.length, 2);
    assert.equal(replica.state, "closed");
    assert.equal(
      await replica.query((db) =>
        (db.prepare("SELECT count(*) AS n FROM log").get() as { n: number }).n
      ),
      50,
    );
    await replica.stop(); // returns at once, never hangs
  },
);

Deno.test(
  "LiveReplica stops on a generator error without advancing its position",
  SHARES_EMULATORS,
  async () => {
    const { kinesis, writer, temp } = await emulators.get();
    const stream2 = "live-fail";
    await createStream(kinesis, stream2, 1);
    const [shard2] = await listStreamShards(kinesis, stream2);
    const put = await putRecords(writer, stream2, makeRecords(30, { seed: 10 }));
    const failing = new LiveReplica({
      kinesis,
      stream: stream2,
      shardId: shard2.shardId,
      localPath: join(temp, "live-fail"),
      generator: {
        onRecords() {
          throw new Error("cannot parse");
        },
      },
      pollIntervalMs: 200,
    });
    const failed = new Promise<unknown>((r) =>
      failing.addEventListener("error", (e) => r((e as CustomEvent).detail))
    );
    await failing.start();
    const error = await failed;
    assert.ok(error instanceof SnapshotGeneratorError);
    assert.equal(error.sequenceNumber, put[0].sequenceNumber);
    assert.equal(failing.state, "failed");
    assert.equal(failing.sequenceNumber, "0", "the position did not advance");
    await failing.stop();
  },
);
