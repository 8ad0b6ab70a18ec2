/**
 * A point published twice, against kinesis-local and a file store: the store loses every
 * object, and a producer of a new generator release rebuilds the shard from the stream and
 * publishes the same point again, under the same key, with other contents (found by the
 * simulator's `index-after-loss` schedule, where the new release's `onStart` adds an index).
 * A consumer, a replica (`LiveReplica`, `replicate`) or a producer's local copy that holds the
 * first publication must never have the deltas made on the second applied to it: it would then
 * hold a state no producer published, silently when the two differ only in rows (here release 2
 * stores other values under the same schema). Each takes the point again from the store.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { DatabaseSync } from "node:sqlite";
import { ListShardsCommand } from "@aws-sdk/client-kinesis";
import {
  FileSnapshotStore,
  LiveReplica,
  Replicator,
  ShardSnapshotFinder,
  ShardSnapshotter,
  type SnapshotGenerator,
} from "../mod.ts";
import { makeRecords, putRecords } from "./support/data.ts";
import { createStream } from "./support/emulators.ts";
import { sharedKinesis, SHARES_EMULATORS, uniqueName } from "./support/fixture.ts";

const emulators = sharedKinesis("streambolt-republish-");
Deno.test.afterAll(() => emulators.stop());

const decoder = new TextDecoder();

/** A key-value generator; release 2 stores the values scaled (same schema, other rows). */
function release(n: 1 | 2): SnapshotGenerator {
  return {
    onStart: (db) => db.exec("CREATE TABLE IF NOT EXISTS kv (k TEXT PRIMARY KEY NOT NULL, v)"),
    onRecords(db, batch) {
      const upsert = db.prepare(
        "INSERT INTO kv (k, v) VALUES (?, ?) ON CONFLICT(k) DO UPDATE SET v = excluded.v",
      );
      for (const record of batch.records) {
        const { v } = JSON.parse(decoder.decode(record.data));
        upsert.run(record.partitionKey, n === 1 ? v : v * 2);
      }
    },
  };
}

/** The rows of a database file. */
function rows(file: string): unknown[] {
  const db = new DatabaseSync(file, { readOnly: true });
  try {
    return db.prepare("SELECT k, v FROM kv ORDER BY k").all().map((row) => ({ ...row }));
  } finally {
    db.close();
  }
}

/**
 * Release 1 publishes point A (host 1); `held` runs while A is the newest; the store then loses
 * every object; release 2 rebuilds A from the stream on host 2 (a full snapshot under A's key);
 * then release 2 publishes a delta on it, on host 2, or with `nextOnFirstHost` on host 1 (whose
 * local copy is release 1's A).
 *
 * @returns A fresh download of the newest point, the rows a rebuild of the whole stream by
 * release 2 holds, and the rows of the local copy the producer of the newest point kept.
 */
async function publishTwice(
  held: (fresh: ShardSnapshotFinder, store: FileSnapshotStore, dir: string) => Promise<void>,
  publishing: (sequenceNumber: string) => void = () => {},
  nextOnFirstHost = false,
) {
  const { kinesis, writer, temp } = await emulators.get();
  const stream = uniqueName("republish");
  await createStream(kinesis, stream, 1);
  const listed = await kinesis.send(new ListShardsCommand({ StreamName: stream }));
  const shardId = listed.Shards![0].ShardId!;
  const dir = join(temp, crypto.randomUUID());
  const store = new FileSnapshotStore({ root: join(dir, "store") });
  const producer = (n: 1 | 2, host: number = n, to = store) =>
    new ShardSnapshotter({
      kinesis,
      store: to,
      stream,
      shardId,
      localPath: join(dir, `host-${host}`),
      generator: release(n),
      chain: { maxDeltas: 1_000, maxRestoreRatio: Infinity },
    });
  const finder = (name: string) =>
    new ShardSnapshotFinder({ store, stream, shardId, localPath: join(dir, name) });
  await putRecords(writer, stream, makeRecords(20, { seed: 1, keys: 5 }));
  const first = await producer(1).snapshotShard();
  await held(finder("fresh-1"), store, dir);
  // The store loses every object (a deleted prefix, a lifecycle rule): release 2 starts over.
  const keys = (await Array.fromAsync(store.list(`${stream}/`))).map((o) => o.key);
  await store.delete(keys);
  const again = await producer(2).snapshotShard();
  assert.equal(again.key, first.key, "release 2 publishes the same point under the same key");
  const added = await putRecords(writer, stream, makeRecords(5, { seed: 2, keys: 5 }));
  const newest = added.map((r) => BigInt(r.sequenceNumber)).reduce((a, b) => (a > b ? a : b));
  publishing(String(newest));
  const next = await producer(2, nextOnFirstHost ? 1 : 2).snapshotShard();
  assert.equal(next.kind, "delta");
  assert.equal(next.baseSequenceNumber, first.sequenceNumber);
  const fresh = finder("fresh-2");
  const latest = await fresh.downloadLatestSnapshot();
  assert.equal(latest?.sequenceNumber, next.sequenceNumber);
  const elsewhere = new FileSnapshotStore({ root: join(dir, "elsewhere") });
  const rebuilt = await producer(2, 3, elsewhere).snapshotShard();
  assert.equal(rebuilt.sequenceNumber, next.sequenceNumber);
  return { latest: latest!, rebuilt: rows(rebuilt.localFile), producerCopy: rows(next.localFile) };
}

Deno.test(
  "a consumer refreshing from a point published again after a loss takes the new publication",
  SHARES_EMULATORS,
  async () => {
    let consumer: ShardSnapshotFinder | undefined;
    let held: unknown[] = [];
    const { latest, rebuilt } = await publishTwice(async (finder) => {
      consumer = finder;
      held = rows((await finder.downloadLatestSnapshot({ refresh: true }))!.localFile);
    });
    const refreshed = await consumer!.downloadLatestSnapshot({ refresh: true });
    assert.equal(refreshed?.sequenceNumber, latest.sequenceNumber);
    assert.deepEqual(rows(latest.localFile), rebuilt);
    assert.notDeepEqual(rebuilt, held);
    assert.deepEqual(rows(refreshed!.localFile), rows(latest.localFile));
  },
);

Deno.test(
  "a producer whose local copy is the first publication of a point published again restores it",
  SHARES_EMULATORS,
  async () => {
    const { latest, rebuilt, producerCopy } = await publishTwice(
      () => Promise.resolve(),
      undefined,
      true,
    );
    // Its local copy (what its next delta builds on) and what consumers restore are the point
    // release 2 publishes, not release 1's rows brought forward.
    assert.deepEqual(producerCopy, rebuilt);
    assert.deepEqual(rows(latest.localFile), rebuilt);
  },
);

Deno.test(
  "a replica following the store across a point published again after a loss takes the new publication",
  SHARES_EMULATORS,
  async () => {
    let replica: LiveReplica | undefined;
    const reached = Promise.withResolvers<void>();
    let target = "";
    try {
      const { latest } = await publishTwice(async (_finder, store, dir) => {
        replica = new LiveReplica({
          follow: "store",
          store,
          stream: _finder.stream,
          shardId: _finder.shardId,
          localPath: join(dir, "replica"),
          pollIntervalMs: 200,
        });
        replica.addEventListener("applied", (e) => {
          if (target && e.detail.sequenceNumber === target) reached.resolve();
        });
        replica.addEventListener("error", (e) => reached.reject(e.detail));
        await replica.start();
      }, (next) => (target = next));
      await reached.promise;
      const served = await replica!.query((db) =>
        db.prepare("SELECT k, v FROM kv ORDER BY k").all().map((row) => ({ ...row }))
      );
      assert.deepEqual(served, rows(latest.localFile));
    } finally {
      await replica?.stop();
    }
  },
);

/** Resolves once `done()` holds, checking every 50 ms (a wait, not a timed assertion). */
async function until(done: () => boolean): Promise<void> {
  while (!done()) await new Promise((resolve) => setTimeout(resolve, 50));
}

Deno.test(
  "a replicate file following the store across a point published again after a loss takes the new publication",
  SHARES_EMULATORS,
  async () => {
    const stop = new AbortController();
    let replicator: Replicator | undefined;
    let running: Promise<void> | undefined;
    let target = "";
    const point = () => replicator!.status()[0];
    // A delta refused for good (a store call failing for a moment is tried again).
    const refused = () => /Cannot apply delta/.test(point()?.error ?? "");
    try {
      const { latest } = await publishTwice(async (finder, store, dir) => {
        replicator = new Replicator({
          store,
          stream: finder.stream,
          shardIds: [finder.shardId],
          outDir: join(dir, "replicate"),
          pollIntervalMs: 200,
        });
        running = replicator.run(stop.signal);
        await until(() => point()?.sequenceNumber !== undefined);
      }, (next) => (target = next));
      await until(() => point()?.sequenceNumber === target || refused());
      stop.abort();
      await running;
      assert.equal(point().error, undefined);
      assert.deepEqual(rows(join(replicator!.dir, `${point().file}`)), rows(latest.localFile));
    } finally {
      stop.abort();
      await running;
    }
  },
);
