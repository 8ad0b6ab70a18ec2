/**
 * No silent gap: a snapshot whose last record is older than the stream's retention period is
 * not continued (records after it may be trimmed) unless the gap is accepted, and then the gap
 * is recorded in the snapshot.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { DatabaseSync } from "node:sqlite";
import { ListShardsCommand } from "@aws-sdk/client-kinesis";
import {
  FileSnapshotStore,
  logGenerator,
  RetentionGapError,
  ShardSnapshotFinder,
  ShardSnapshotter,
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
