/**
 * Two producers of one shard racing, against kinesis-local and the file store: the one whose
 * put finds the other's point already there does not keep its own database as the copy of that
 * point, and one whose base is deleted by the other's retention between its listing and its
 * download lists again instead of failing.
 */
import assert from "node:assert/strict";
import {
  type DownloadOptions,
  type DownloadResult,
  logGenerator,
  type SnapshotGenerator,
  type SnapshotStore,
  SnapshotVanishedError,
} from "../mod.ts";
import { sharedKinesis, SHARES_EMULATORS } from "./support/fixture.ts";
import { configRelease, oneShardStream, rowsOf } from "./support/one_shard.ts";
import { HeldStore } from "./support/held_store.ts";
import { RacingStore } from "./support/racing_store.ts";

const emulators = sharedKinesis("streambolt-producer-race-");
Deno.test.afterAll(() => emulators.stop());

/** A one-shard stream with 20 records, a file store, and producers with their own dirs. */
async function setUp() {
  const { put, store, producer, finder } = await oneShardStream(emulators, "producer-race");
  return { put, store, producer, consumer: finder("consumer") };
}

/** The log generator, with a config table; `row` set: a newer release whose `onStart` adds it. */
function release(row?: string): SnapshotGenerator {
  return configRelease(
    row
      ? (db) => db.prepare("INSERT OR IGNORE INTO config VALUES ('release', ?)").run(row)
      : undefined,
  );
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
    assert.deepEqual(rowsOf(restored!.localFile, config), [{ name: "release", value: "2" }]);
    assert.deepEqual(rowsOf(next.localFile, config), rowsOf(restored!.localFile, config));
    const log = "SELECT sequence_number FROM log ORDER BY sequence_number";
    assert.deepEqual(rowsOf(next.localFile, log), rowsOf(restored!.localFile, log));
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
    assert.deepEqual(rowsOf(next.localFile, config), rowsOf(restored!.localFile, config));
    assert.deepEqual(rowsOf(restored!.localFile, config), [{ name: "release", value: "2" }]);
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
    assert.deepEqual(rowsOf(latest.localFile, "SELECT count(*) AS n FROM log"), [{ n: 25 }]);
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
