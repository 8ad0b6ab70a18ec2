/**
 * Two producers of one shard racing, against kinesis-local and the file store: the one whose
 * put finds the other's point already there does not keep its own database as the copy of that
 * point, and one whose base is deleted by the other's retention between its listing and its
 * download lists again instead of failing.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { DatabaseSync } from "node:sqlite";
import { ListShardsCommand } from "@aws-sdk/client-kinesis";
import {
  type DownloadOptions,
  type DownloadResult,
  FileSnapshotStore,
  logGenerator,
  ShardSnapshotFinder,
  ShardSnapshotter,
  type ShardSnapshotterOptions,
  type SnapshotGenerator,
  type SnapshotStore,
  SnapshotVanishedError,
} from "../mod.ts";
import { makeRecords, putRecords } from "./support/data.ts";
import { createStream } from "./support/emulators.ts";
import { sharedKinesis, SHARES_EMULATORS, uniqueName } from "./support/fixture.ts";
import { HeldStore } from "./support/held_store.ts";
import { RacingStore } from "./support/racing_store.ts";

const emulators = sharedKinesis("streambolt-producer-race-");
Deno.test.afterAll(() => emulators.stop());

/** A one-shard stream with 20 records, a file store, and producers with their own dirs. */
async function setUp() {
  const { kinesis, writer, temp } = await emulators.get();
  const stream = uniqueName("producer-race");
  await createStream(kinesis, stream, 1);
  const listed = await kinesis.send(new ListShardsCommand({ StreamName: stream }));
  const shardId = listed.Shards![0].ShardId!;
  const put = (n: number, seed: number) => putRecords(writer, stream, makeRecords(n, { seed }));
  await put(20, 1);
  const dir = join(temp, crypto.randomUUID());
  const store = new FileSnapshotStore({ root: join(dir, "store") });
  const producer = (
    name: string,
    generator: SnapshotGenerator,
    extra: Partial<ShardSnapshotterOptions> = {},
  ) =>
    new ShardSnapshotter({
      kinesis,
      store,
      stream,
      shardId,
      localPath: join(dir, name),
      generator,
      chain: { maxDeltas: 1_000, maxRestoreRatio: Infinity },
      ...extra,
    });
  const consumer = new ShardSnapshotFinder({
    store,
    stream,
    shardId,
    localPath: join(dir, "consumer"),
  });
  return { put, store, producer, consumer };
}

/** The log generator, with a config table; `row` set: a newer release whose `onStart` adds it. */
function release(row?: string): SnapshotGenerator {
  const log = logGenerator();
  return {
    onStart(db) {
      log.onStart!(db);
      db.exec("CREATE TABLE IF NOT EXISTS config (name TEXT PRIMARY KEY NOT NULL, value TEXT)");
      if (row) db.prepare("INSERT OR IGNORE INTO config VALUES ('release', ?)").run(row);
    },
    onRecords: log.onRecords,
  };
}

/** The rows of `sql` in a database file. */
function rows(file: string, sql: string): unknown[] {
  const db = new DatabaseSync(file, { readOnly: true });
  try {
    return db.prepare(sql).all().map((row) => ({ ...row }));
  } finally {
    db.close();
  }
}

/** A store whose every download finds the object gone. */
class EmptiedStore implements SnapshotStore {
  readonly url: string;
  readonly list: SnapshotStore["list"];
  readonly put: SnapshotStore["put"];
  readonly delete: SnapshotStore["delete"];

  constructor(inner: SnapshotStore) {
    this.url = inner.url;
    this.list = inner.list.bind(inner);
    this.put = inner.put.bind(inner);
    this.delete = inner.delete.bind(inner);
  }

  download(key: string, _file: string, _options?: DownloadOptions): Promise<DownloadResult> {
    return Promise.reject(new Deno.errors.NotFound(`No such file: ${key}`));
  }
}

Deno.test(
  "a producer that lost the race to publish a point does not keep its own database as the copy of the other's",
  SHARES_EMULATORS,
  async () => {
    const { put, store, producer, consumer } = await setUp();
    // p1 (the old release) has built the point and waits at its put...
    const held = new HeldStore(store);
    const loser = producer("p1", release(), { store: held }).snapshotShard();
    await held.reached;
    // ...while p2 (a newer release whose onStart adds a row) publishes the same point first.
    const winner = await producer("p2", release("2")).snapshotShard();
    held.release();
    const lost = await loser;
    assert.equal(lost.key, winner.key);
    // p1's next run builds on the point as published, not on its own database.
    await put(1, 2);
    const next = await producer("p1", release()).snapshotShard();
    const restored = await consumer.downloadLatestSnapshot();
    assert.equal(restored?.sequenceNumber, next.sequenceNumber);
    const config = "SELECT name, value FROM config ORDER BY name";
    assert.deepEqual(rows(restored!.localFile, config), [{ name: "release", value: "2" }]);
    assert.deepEqual(rows(next.localFile, config), rows(restored!.localFile, config));
    const log = "SELECT sequence_number FROM log ORDER BY sequence_number";
    assert.deepEqual(rows(next.localFile, log), rows(restored!.localFile, log));
  },
);

Deno.test(
  "a follower that lost the race to publish a point on stop does not keep its own database as the copy of the other's",
  SHARES_EMULATORS,
  async () => {
    const { put, store, producer, consumer } = await setUp();
    // p1 (the old release) follows, is stopped once it has read the 20 records, and waits at
    // the put of its point...
    const held = new HeldStore(store);
    const stop = new AbortController();
    const loser = producer("p1", release(), {
      store: held,
      onProgress: (p) => {
        if (p.phase === "catch-up" && p.recordsApplied === 20) stop.abort();
      },
    }).follow({ publishEveryMs: 60_000, stop: stop.signal });
    await held.reached;
    // ...while p2 (a newer release whose onStart adds a row) publishes the same point first.
    const winner = await producer("p2", release("2")).snapshotShard();
    held.release();
    const lost = await loser;
    assert.equal(lost?.key, winner.key);
    await put(1, 2);
    const next = await producer("p1", release()).snapshotShard();
    const restored = await consumer.downloadLatestSnapshot();
    assert.equal(restored?.sequenceNumber, next.sequenceNumber);
    const config = "SELECT name, value FROM config ORDER BY name";
    assert.deepEqual(rows(next.localFile, config), rows(restored!.localFile, config));
    assert.deepEqual(rows(restored!.localFile, config), [{ name: "release", value: "2" }]);
  },
);

Deno.test(
  "a producer whose base is deleted by another producer's retention before its download lists again",
  SHARES_EMULATORS,
  async () => {
    const { put, store, producer } = await setUp();
    const first = await producer("p2", logGenerator()).snapshotShard();
    await put(5, 2);
    // p1 lists and plans `first`; before it downloads it, p2 publishes a full snapshot and its
    // retention (the newest point only) deletes `first`.
    const racing = new RacingStore(store);
    let second: string | undefined;
    const raced = racing.beforeDownload((key) => key === first.key, async () => {
      const published = await producer("p2", logGenerator(), {
        full: true,
        retention: { keepPoints: 1, retainMs: 0 },
      }).snapshotShard();
      second = published.key;
    });
    const latest = await producer("p1", logGenerator(), { store: racing }).snapshotShard();
    await raced;
    assert.equal(latest.key, second);
    assert.deepEqual(racing.downloads, [first.key, second]);
    assert.deepEqual(rows(latest.localFile, "SELECT count(*) AS n FROM log"), [{ n: 25 }]);
  },
);

Deno.test(
  "a producer whose every planned base is found gone gives up with SnapshotVanishedError after 5 listings",
  SHARES_EMULATORS,
  async () => {
    const { store, producer } = await setUp();
    const first = await producer("p2", logGenerator()).snapshotShard();
    const error = await producer("p1", logGenerator(), { store: new EmptiedStore(store) })
      .snapshotShard()
      .then(() => undefined, (e) => e);
    assert.ok(error instanceof SnapshotVanishedError, `not SnapshotVanishedError: ${error}`);
    assert.equal(error.key, first.key);
    assert.equal(error.attempts, 5);
  },
);
