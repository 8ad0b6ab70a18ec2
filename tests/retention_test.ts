/**
 * Retention, both kinds. The stream's: a snapshot whose last record is older than the stream's
 * retention period is not continued (records after it may be trimmed) unless the gap is
 * accepted, and then the gap is recorded in the snapshot. The store's: the producer keeps every
 * point younger than its retention (a day by default) and the newest N, with their chains, and
 * deletes the rest after it publishes, as `gc` does.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { DatabaseSync } from "node:sqlite";
import { ListShardsCommand } from "@aws-sdk/client-kinesis";
import {
  FileSnapshotStore,
  InvalidArgumentError,
  logGenerator,
  RetentionGapError,
  ShardSnapshotFinder,
  ShardSnapshotter,
  type ShardSnapshotterOptions,
  type Snapshot,
  type SnapshotStore,
} from "../mod.ts";
import { encodeFile } from "../src/_codec.ts";
import { runCli } from "./support/cli.ts";
import { makeRecords, putRecords } from "./support/data.ts";
import { createStream } from "./support/emulators.ts";
import { sharedKinesisAndS3, SHARES_EMULATORS } from "./support/fixture.ts";

const emulators = sharedKinesisAndS3("streambolt-retention-");
Deno.test.afterAll(() => emulators.stop());

const TWO_DAYS_AGO = new Date(Date.now() - 48 * 3_600_000).toISOString();

/** Rewrites a published full snapshot as if its last record had arrived two days ago. */
async function age(store: SnapshotStore, snapshot: Snapshot, dir: string): Promise<void> {
  const plain = join(dir, "aged.sqlite");
  const finder = new ShardSnapshotFinder({ ...snapshot, store, localPath: join(dir, "dl") });
  await finder.downloadSnapshot(snapshot);
  await Deno.rename(snapshot.localFile, plain);
  const db = new DatabaseSync(plain);
  db.prepare("UPDATE streambolt_meta SET last_arrival_at = ? WHERE id = 1").run(TWO_DAYS_AGO);
  db.close();
  const stored = join(dir, "aged.bin");
  const encoded = await encodeFile(plain, stored, "zstd");
  const { metadata } = await store.download(snapshot.key, join(dir, "old.bin"));
  await store.delete([snapshot.key]);
  await store.put(snapshot.key, stored, {
    metadata: { ...metadata, sha256: encoded.sha256, "last-arrival-at": TWO_DAYS_AGO },
  });
}

async function agedShard(): Promise<{
  store: FileSnapshotStore;
  stream: string;
  shardId: string;
  dir: string;
  base: Snapshot;
}> {
  const { kinesis, writer, temp } = await emulators.get();
  const stream = `retention-${crypto.randomUUID().slice(0, 6)}`;
  await createStream(kinesis, stream, 1);
  const shardId = (await kinesis.send(new ListShardsCommand({ StreamName: stream })))
    .Shards![0].ShardId!;
  const dir = await Deno.makeTempDir({ dir: temp });
  const store = new FileSnapshotStore({ root: join(dir, "snaps") });
  await putRecords(writer, stream, makeRecords(20, { seed: 80 }));
  const base = await new ShardSnapshotter({
    kinesis,
    store,
    stream,
    shardId,
    localPath: join(dir, "first"),
    generator: logGenerator(),
  }).snapshotShard();
  await age(store, base, dir);
  await putRecords(writer, stream, makeRecords(10, { seed: 81 }));
  return { store, stream, shardId, dir, base };
}

Deno.test(
  "a snapshot older than the stream's retention is not continued unless the gap is accepted",
  SHARES_EMULATORS,
  async () => {
    const { kinesis } = await emulators.get();
    const { store, stream, shardId, dir, base } = await agedShard();
    const run = (acceptGap: boolean) =>
      new ShardSnapshotter({
        kinesis,
        store,
        stream,
        shardId,
        localPath: join(dir, crypto.randomUUID()), // no local copy: the aged base is downloaded
        generator: logGenerator(),
        acceptGap,
      }).snapshotShard();
    const keys = async () => (await Array.fromAsync(store.list(""))).map((o) => o.key).sort();
    const before = await keys();
    await assert.rejects(run(false), (error: Error) => {
      assert.ok(error instanceof RetentionGapError);
      assert.equal(error.shardId, shardId);
      assert.equal(error.lastArrivalAt, TWO_DAYS_AGO);
      assert.equal(error.retentionHours, 24);
      assert.match(error.message, new RegExp(`shard "${shardId}"`));
      return true;
    });
    assert.deepEqual(await keys(), before, "nothing published");
    const accepted = await run(true);
    assert.ok(BigInt(accepted.sequenceNumber) > BigInt(base.sequenceNumber));
    const db = new DatabaseSync(accepted.localFile, { readOnly: true });
    const meta = db.prepare("SELECT accepted_gaps FROM streambolt_meta").get() as {
      accepted_gaps: string;
    };
    db.close();
    const gaps = JSON.parse(meta.accepted_gaps);
    assert.equal(gaps.length, 1);
    assert.equal(gaps[0].after, base.sequenceNumber);
    assert.equal(gaps[0].lastArrivalAt, TWO_DAYS_AGO);
    assert.equal(gaps[0].retentionHours, 24);
    // The gap travels with the point: a consumer's restore carries it.
    const restored = await new ShardSnapshotFinder({
      store,
      stream,
      shardId,
      localPath: join(dir, "consumer"),
    }).downloadLatestSnapshot();
    const consumer = new DatabaseSync(restored!.localFile, { readOnly: true });
    const row = consumer.prepare("SELECT accepted_gaps FROM streambolt_meta").get() as {
      accepted_gaps: string;
    };
    consumer.close();
    assert.equal(JSON.parse(row.accepted_gaps).length, 1);
  },
);

Deno.test(
  "a producer whose local copy last found the shard idle sees no gap, however old the last record",
  SHARES_EMULATORS,
  async () => {
    const { kinesis } = await emulators.get();
    const { store, stream, shardId, dir, base } = await agedShard();
    // The first run's local copy: age its last record too, keeping the record of when that run
    // found the shard caught up (just now).
    const cached = join(dir, "first", stream, shardId, "producer", `${base.sequenceNumber}.sqlite`);
    const db = new DatabaseSync(cached);
    db.prepare("UPDATE streambolt_meta SET last_arrival_at = ? WHERE id = 1").run(TWO_DAYS_AGO);
    db.close();
    const record = JSON.parse(await Deno.readTextFile(`${cached}.json`));
    assert.ok(Date.now() - record.caughtUpAt < 60_000, "the run recorded when it was caught up");
    const info = await Deno.stat(cached);
    await Deno.writeTextFile(
      `${cached}.json`,
      JSON.stringify({ ...record, size: info.size, mtimeMs: info.mtime!.getTime() }),
    );
    const next = await new ShardSnapshotter({
      kinesis,
      store,
      stream,
      shardId,
      localPath: join(dir, "first"),
      generator: logGenerator(),
      chain: { maxRestoreRatio: Infinity }, // a tiny state: a delta alone, not a full beside it
    }).snapshotShard();
    assert.equal(next.kind, "delta", "built on the local copy, no gap refused");
    assert.equal(next.baseSequenceNumber, base.sequenceNumber);
  },
);

Deno.test(
  "the CLI fails a shard past the retention with one line, and --accept-gap continues it",
  SHARES_EMULATORS,
  async () => {
    const { env } = await emulators.get();
    const { stream, dir } = await agedShard();
    const cli = (...args: string[]) =>
      runCli(["snapshot", "--stream", stream, "--store", "snaps", "--generator", "log", ...args], {
        cwd: dir,
        env,
      });
    const refused = await cli();
    assert.equal(refused.code, 1);
    const lines = refused.stderr.trim().split("\n").filter((l) => l.includes("error"));
    assert.equal(lines.length, 1, refused.stderr);
    assert.match(lines[0], /longer ago than the stream's retention of 24 h/);
    assert.match(lines[0], /--accept-gap/);
    const accepted = await cli("--accept-gap");
    assert.equal(accepted.code, 0, accepted.stderr);
    assert.match(accepted.stderr, /continuing past a possible gap/);
  },
);

/** A one-shard stream with records, a file store, and a producer of a full snapshot per run
 * (unless `extra` says otherwise) that adds 5 records before each run. */
async function producedShard() {
  const { kinesis, writer, temp } = await emulators.get();
  const stream = `kept-${crypto.randomUUID().slice(0, 6)}`;
  await createStream(kinesis, stream, 1);
  const shardId = (await kinesis.send(new ListShardsCommand({ StreamName: stream })))
    .Shards![0].ShardId!;
  const dir = await Deno.makeTempDir({ dir: temp });
  const store = new FileSnapshotStore({ root: join(dir, "snaps") });
  let seed = 200;
  const put = () => putRecords(writer, stream, makeRecords(5, { seed: seed++ }));
  const run = async (extra: Partial<ShardSnapshotterOptions> = {}) => {
    await put();
    return await new ShardSnapshotter({
      kinesis,
      store,
      stream,
      shardId,
      localPath: join(dir, "producer"),
      generator: logGenerator(),
      full: true,
      ...extra,
    }).snapshotShard();
  };
  const keys = async () => (await Array.fromAsync(store.list(""))).map((o) => o.key).sort();
  /** Makes objects look `hours` old to the store's listing. */
  const makeOld = async (points: Snapshot[], hours: number) => {
    const mtime = new Date(Date.now() - hours * 3_600_000);
    for (const p of points) await Deno.utime(join(store.root, ...p.key.split("/")), mtime, mtime);
  };
  return { stream, dir, store, put, run, keys, makeOld };
}

Deno.test(
  "the producer keeps every point of the last day by default, and deletes what is older",
  SHARES_EMULATORS,
  async () => {
    const { run, keys, makeOld } = await producedShard();
    const points: Snapshot[] = [];
    for (let i = 0; i < 4; i++) points.push(await run());
    assert.deepEqual(await keys(), points.map((p) => p.key).sort(), "four young points stay");
    await makeOld(points.slice(0, 3), 25);
    const fifth = await run();
    assert.deepEqual(await keys(), [points[3].key, fifth.key].sort(), "the day-old ones go");
  },
);

Deno.test(
  "the producer keeps the full a young delta needs, however old",
  SHARES_EMULATORS,
  async () => {
    const { store, stream, dir, run, keys, makeOld } = await producedShard();
    const deltas = { full: false, chain: { maxDeltas: 100, maxRestoreRatio: Infinity } };
    const full = await run(deltas);
    const old = await run(deltas);
    await makeOld([full, old], 48);
    const young = await run(deltas);
    const newest = await run({ ...deltas, retention: { retainMs: 3_600_000 } });
    assert.deepEqual([full, old, young, newest].map((p) => p.kind), [
      "full",
      "delta",
      "delta",
      "delta",
    ]);
    // Point `old` is two days old and goes from the count, but the young points are restored
    // from its delta and the full: every object stays.
    assert.equal((await keys()).length, 4);
    const restored = await new ShardSnapshotFinder({
      store,
      stream,
      shardId: full.shardId,
      localPath: join(dir, "consumer"),
    }).downloadSnapshot(young);
    assert.equal(restored.sequenceNumber, young.sequenceNumber);
  },
);

Deno.test(
  "the producer keeps the newest keepPoints alone, or everything with retainMs Infinity",
  SHARES_EMULATORS,
  async () => {
    const { run, keys, makeOld } = await producedShard();
    const points: Snapshot[] = [];
    for (let i = 0; i < 3; i++) points.push(await run({ retention: { retainMs: Infinity } }));
    await makeOld(points, 1_000);
    points.push(await run({ retention: { retainMs: Infinity } }));
    assert.equal((await keys()).length, 4, "retainMs Infinity deletes nothing");
    points.push(await run({ retention: { keepPoints: 2 } }));
    assert.deepEqual(await keys(), points.slice(-2).map((p) => p.key).sort(), "by count alone");
  },
);

Deno.test("a snapshotter refuses a bad retention, and the retainChains it replaces", () => {
  const options = {
    kinesis: {} as ShardSnapshotterOptions["kinesis"],
    store: new FileSnapshotStore({ root: "unused" }),
    stream: "s",
    shardId: "shardId-0",
    localPath: "unused",
    generator: logGenerator(),
  };
  for (const retention of [{ keepPoints: 0 }, { retainMs: Number.NaN }]) {
    assert.throws(() => new ShardSnapshotter({ ...options, retention }), InvalidArgumentError);
  }
  assert.throws(
    () => new ShardSnapshotter({ ...options, retainChains: 2 } as ShardSnapshotterOptions),
    /retainChains is replaced by retention/,
  );
});

Deno.test(
  "streambolt snapshot --retain and --keep: the same retention as gc",
  SHARES_EMULATORS,
  async () => {
    const { env } = await emulators.get();
    const { stream, dir, keys, makeOld, put, run } = await producedShard();
    const first = await run();
    await makeOld([first], 2);
    const cli = (...args: string[]) =>
      runCli([
        "snapshot",
        "--stream",
        stream,
        "--store",
        "snaps",
        "--local-dir",
        "producer",
        "--generator",
        "log",
        "--full",
        "-q",
        ...args,
      ], { cwd: dir, env });
    await put();
    const kept = await cli("--retain", "3h");
    assert.equal(kept.code, 0, kept.stderr);
    assert.equal((await keys()).length, 2, "the two-hour-old point is younger than 3h");
    await run({ retention: { retainMs: Infinity } });
    await put();
    const counted = await cli("--retain", "0", "--keep", "1");
    assert.equal(counted.code, 0, counted.stderr);
    assert.equal((await keys()).length, 1, "only the newest point stays");
  },
);
