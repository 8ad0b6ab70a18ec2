/**
 * The producer's local copy of its latest point, against kinesis-local: a run keeps its
 * database as that copy only when the database is exactly the point published, so the next
 * run's delta applies to what consumers restore.
 */
import assert from "node:assert/strict";
import {
  logGenerator,
  type Logger,
  type ShardSnapshotterOptions,
  type SnapshotGenerator,
} from "../mod.ts";
import { sharedKinesis, SHARES_EMULATORS } from "./support/fixture.ts";
import { configRelease, oneShardStream, rowsOf } from "./support/one_shard.ts";

const emulators = sharedKinesis("streambolt-local-copy-");
Deno.test.afterAll(() => emulators.stop());

/** A one-shard stream with 20 records, its producer, a consumer, and a finder given the
 * producer's own local directory. */
async function setUp() {
  const shard = await oneShardStream(emulators, "local-copy");
  const producer = (generator: SnapshotGenerator, extra: Partial<ShardSnapshotterOptions> = {}) =>
    shard.producer("producer", generator, extra);
  return {
    put: shard.put,
    producer,
    consumer: shard.finder("consumer"),
    neighbour: shard.finder("producer"),
  };
}

/** The log generator, with `onStart` extended by `more` (a new release of the generator). */
const release = configRelease;

/** A logger that aborts `stop` once the follower starts reading: its `onStart` has run and no
 * record has arrived (the shard holds none after the latest point). */
function stopOnceReading(stop: AbortController): Logger {
  return {
    debug() {},
    warn() {},
    info(message) {
      if (message === "catching up") stop.abort();
    },
  };
}

/** Runs v1 once, then follows with v2 until it starts reading, then adds a record and runs v2
 * once more: returns the producer's and the consumer's copies of the latest point. */
async function upgradeWhileFollowing(v2: SnapshotGenerator) {
  const { put, producer, consumer } = await setUp();
  await producer(release()).snapshotShard();
  const stop = new AbortController();
  await producer(v2, { logger: stopOnceReading(stop) }).follow({
    publishEveryMs: 60_000,
    stop: stop.signal,
  });
  await put(1, 2);
  const latest = await producer(v2).snapshotShard();
  const restored = await consumer.downloadLatestSnapshot();
  assert.equal(restored?.sequenceNumber, latest.sequenceNumber);
  return { producerFile: latest.localFile, consumerFile: restored!.localFile };
}

Deno.test(
  "a follower stopped before any record does not keep a database its onStart changed (a row)",
  SHARES_EMULATORS,
  async () => {
    const v2 = release((db) => db.exec("INSERT OR IGNORE INTO config VALUES ('release', '2')"));
    const { producerFile, consumerFile } = await upgradeWhileFollowing(v2);
    const config = "SELECT name, value FROM config ORDER BY name";
    assert.deepEqual(rowsOf(producerFile, config), [{ name: "release", value: "2" }]);
    assert.deepEqual(rowsOf(consumerFile, config), rowsOf(producerFile, config));
  },
);

Deno.test(
  "a follower stopped before any record does not keep a database its onStart changed (an index)",
  SHARES_EMULATORS,
  async () => {
    const v2 = release((db) =>
      db.exec("CREATE INDEX IF NOT EXISTS log_by_key ON log (partition_key)")
    );
    const { producerFile, consumerFile } = await upgradeWhileFollowing(v2);
    const schema = "SELECT type, name, sql FROM sqlite_master ORDER BY type, name";
    assert.ok(
      rowsOf(producerFile, schema).some((r) => (r as { name: string }).name === "log_by_key"),
    );
    assert.deepEqual(rowsOf(consumerFile, schema), rowsOf(producerFile, schema));
    const log = "SELECT sequence_number FROM log ORDER BY sequence_number";
    assert.deepEqual(rowsOf(consumerFile, log), rowsOf(producerFile, log));
  },
);

Deno.test(
  "a follower stopped before any record keeps the unchanged database as its local copy",
  SHARES_EMULATORS,
  async () => {
    const { producer } = await setUp();
    const first = await producer(release()).snapshotShard();
    const stop = new AbortController();
    const stopped = await producer(release(), { logger: stopOnceReading(stop) }).follow({
      publishEveryMs: 60_000,
      stop: stop.signal,
    });
    assert.equal(stopped?.key, first.key);
    assert.equal(stopped?.localFile, first.localFile);
    assert.deepEqual(rowsOf(first.localFile, "SELECT count(*) AS n FROM log"), [{ n: 20 }]);
  },
);

Deno.test(
  "a producer and a finder sharing a local dir keep to their own files",
  SHARES_EMULATORS,
  async () => {
    const { put, producer, neighbour } = await setUp();
    const count = (file: string) => rowsOf(file, "SELECT count(*) AS n FROM log");
    const first = await producer(logGenerator()).snapshotShard();
    const downloaded = await neighbour.downloadLatestSnapshot();
    await put(5, 2);
    const second = await producer(logGenerator()).snapshotShard();
    // The producer's clean-up of its older copies leaves the finder's download alone.
    const kept = await Deno.stat(downloaded!.localFile).then(() => true, () => false);
    assert.ok(kept, `the finder's download was deleted: ${downloaded!.localFile}`);
    assert.notEqual(downloaded!.localFile, first.localFile, "the finder wrote its own file");
    assert.deepEqual(count(downloaded!.localFile), [{ n: 20 }]);
    // A refreshing finder builds on its own point, never takes over the producer's copy.
    const refreshed = await neighbour.downloadLatestSnapshot({ refresh: true });
    assert.equal(refreshed?.sequenceNumber, second.sequenceNumber);
    assert.notEqual(refreshed!.localFile, second.localFile, "the finder took the producer's copy");
    assert.deepEqual(count(refreshed!.localFile), [{ n: 25 }]);
    assert.deepEqual(count(second.localFile), [{ n: 25 }], "the producer's copy stays");
    // ...and stays the producer's: the next run builds on it (a delta) and keeps it current.
    await put(1, 3);
    const third = await producer(logGenerator()).snapshotShard();
    assert.equal(third.kind, "delta");
    assert.deepEqual(count(third.localFile), [{ n: 26 }]);
    assert.deepEqual(count(refreshed!.localFile), [{ n: 25 }], "the finder's copy stays");
  },
);
