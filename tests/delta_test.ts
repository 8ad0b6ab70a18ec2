/**
 * Incremental snapshots against the emulators: deltas, chains and their policy, the producer's
 * local cache, consumer refresh, chain collection, request counts, the continuous producer and
 * the replica that follows the store.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { DatabaseSync } from "node:sqlite";
import {
  type KinesisClient,
  ListShardsCommand,
  SplitShardCommand,
  waitUntilStreamExists,
} from "@aws-sdk/client-kinesis";
import {
  type ChainPolicy,
  type DownloadOptions,
  type DownloadResult,
  FileSnapshotStore,
  kvGenerator,
  type ListOptions,
  listStreamShards,
  LiveReplica,
  logGenerator,
  type Logger,
  type PutOptions,
  S3SnapshotStore,
  ShardSnapshotFinder,
  ShardSnapshotter,
  type ShardSnapshotterOptions,
  type Snapshot,
  type SnapshotGenerator,
  type SnapshotStore,
  type StoredObject,
  StreamSnapshotter,
} from "../mod.ts";
import { readSnapshotMetadata } from "../format.ts";
import { runCli } from "./support/cli.ts";
import { makeRecords, putRecords, type PutResult } from "./support/data.ts";
import { createBucket, createStream, s3Client } from "./support/emulators.ts";
import { interceptCommands } from "./support/faults.ts";
import { sharedKinesisAndS3, SHARES_EMULATORS } from "./support/fixture.ts";
import { exists, readLogSnapshot } from "./support/snapshots.ts";
import { storeKinds } from "./support/stores.ts";

const emulators = sharedKinesisAndS3("streambolt-delta-");
Deno.test.afterAll(() => emulators.stop());

/** Long chains by default here (the test states are tiny: the default policy would write a full
 * at every point, as restoring a tiny state whole is cheaper): a delta alone, unless a case asks
 * for the policy. */
const LONG_CHAINS: ChainPolicy = { maxDeltas: 1_000, maxRestoreRatio: Infinity };

let streams = 0;

/** A one-shard stream with `count` records in it. */
async function shardWithRecords(count: number): Promise<{
  stream: string;
  shardId: string;
  put: (n: number, seed: number) => Promise<PutResult[]>;
  all: PutResult[];
  /** Every partition key put. */
  keys: Set<string>;
}> {
  const { kinesis, writer } = await emulators.get();
  const stream = `delta-${++streams}-${crypto.randomUUID().slice(0, 6)}`;
  await createStream(kinesis, stream, 1);
  const [shardId] = await shardIds(kinesis, stream);
  const all: PutResult[] = [];
  const keys = new Set<string>();
  const put = async (n: number, seed: number) => {
    const records = makeRecords(n, { seed, keys: 25 });
    for (const r of records) keys.add(r.partitionKey);
    const results = await putRecords(writer, stream, records);
    all.push(...results);
    return results;
  };
  if (count > 0) await put(count, 1);
  return { stream, shardId, put, all, keys };
}

/** A new directory under `temp`. */
const fresh = (temp: string) => join(temp, crypto.randomUUID());

/** A new file store, a one-shard stream with `records` in it, and a new producer dir. */
async function fileShard(records: number) {
  const { temp } = await setUp();
  return {
    temp,
    store: new FileSnapshotStore({ root: fresh(temp) }),
    shard: await shardWithRecords(records),
    local: fresh(temp),
  };
}

async function shardIds(kinesis: KinesisClient, stream: string): Promise<string[]> {
  const out = await kinesis.send(new ListShardsCommand({ StreamName: stream }));
  return (out.Shards ?? []).map((s) => s.ShardId!);
}

function producer(
  store: SnapshotStore,
  shard: { stream: string; shardId: string },
  localPath: string,
  extra: Partial<ShardSnapshotterOptions> = {},
): ShardSnapshotter {
  return new ShardSnapshotter({
    kinesis: kinesisOf(),
    store,
    stream: shard.stream,
    shardId: shard.shardId,
    localPath,
    generator: logGenerator(),
    chain: LONG_CHAINS,
    ...extra,
  });
}

let kinesisClientOfFixture: KinesisClient | undefined;
const kinesisOf = () => kinesisClientOfFixture!;

async function setUp(): Promise<Awaited<ReturnType<typeof emulators.get>>> {
  const e = await emulators.get();
  kinesisClientOfFixture = e.kinesis;
  return e;
}

/** The sequence numbers in order, as put. */
const seqs = (results: PutResult[]) =>
  results.map((r) => r.sequenceNumber).sort((a, b) => (BigInt(a) < BigInt(b) ? -1 : 1));

/** Asserts a restored log snapshot holds exactly the records put up to its point. */
function assertExact(file: string, all: PutResult[]): void {
  const { sequenceNumbers, meta } = readLogSnapshot(file);
  const upTo = seqs(all).filter((s) => BigInt(s) <= BigInt(meta.sequenceNumber));
  assert.deepEqual([...sequenceNumbers].sort((a, b) => (BigInt(a) < BigInt(b) ? -1 : 1)), upTo);
  assert.equal(meta.recordsApplied, upTo.length);
}

/** A store that counts the calls made to it. */
class CountingStore implements SnapshotStore {
  counts = { list: 0, download: 0, put: 0, delete: 0 };
  constructor(readonly inner: SnapshotStore) {}
  get url(): string {
    return this.inner.url;
  }
  list(prefix: string, options?: ListOptions): AsyncIterable<StoredObject> {
    this.counts.list++;
    return this.inner.list(prefix, options);
  }
  put(key: string, file: string, options: PutOptions): Promise<void> {
    this.counts.put++;
    return this.inner.put(key, file, options);
  }
  download(key: string, file: string, options?: DownloadOptions): Promise<DownloadResult> {
    this.counts.download++;
    return this.inner.download(key, file, options);
  }
  delete(keys: string[]): Promise<void> {
    this.counts.delete++;
    return this.inner.delete(keys);
  }
  reset(): void {
    this.counts = { list: 0, download: 0, put: 0, delete: 0 };
  }
}

async function objects(store: SnapshotStore): Promise<string[]> {
  return (await Array.fromAsync(store.list(""))).map((o) => o.key).sort();
}

Deno.test(
  "a second run publishes only the change, as a delta on the latest point, and consumers restore it",
  SHARES_EMULATORS,
  async (t) => {
    const { s3, temp } = await setUp();
    for (const kind of storeKinds(s3, temp)) {
      await t.step(`${kind.name} store`, async () => {
        const store = await kind.make();
        const shard = await shardWithRecords(60);
        const local = fresh(temp);
        const first = await producer(store, shard, local).snapshotShard();
        assert.equal(first.kind, "full");
        await shard.put(40, 2);
        const second = await producer(store, shard, local).snapshotShard();
        assert.equal(second.kind, "delta");
        assert.equal(second.baseSequenceNumber, first.sequenceNumber);
        assert.equal(second.sequenceNumber, seqs(shard.all).at(-1));
        assert.match(second.key, /\/\d+\.from-\d+\.delta\.zst$/);
        assert.deepEqual(await objects(store), [first.key, second.key].sort());
        assert.ok(second.size! < first.size!, "the delta is smaller than the full snapshot");
        assertExact(second.localFile, shard.all);

        const finder = new ShardSnapshotFinder({
          ...shard,
          store,
          localPath: fresh(temp),
        });
        const latest = (await finder.downloadLatestSnapshot())!;
        assert.equal(latest.key, second.key);
        assertExact(latest.localFile, shard.all);
        // The earlier point is still restorable on its own.
        const older = (await finder.findSnapshots()).find((s) => s.key === first.key)!;
        const meta = await finder.downloadSnapshot(older);
        assert.equal(meta.sequenceNumber, first.sequenceNumber);
        assertExact(older.localFile, shard.all);
      });
    }
  },
);

Deno.test(
  "a producer builds on its local copy of the latest point without downloading it",
  SHARES_EMULATORS,
  async () => {
    const { temp } = await setUp();
    const store = new CountingStore(
      new FileSnapshotStore({ root: fresh(temp) }),
    );
    const shard = await shardWithRecords(50);
    const local = fresh(temp);
    await producer(store, shard, local).snapshotShard();
    await shard.put(30, 3);
    store.reset();
    const cached = await producer(store, shard, local).snapshotShard();
    assert.equal(store.counts.download, 0, "nothing downloaded: the cache held the base");
    assert.equal(cached.kind, "delta");
    assertExact(cached.localFile, shard.all);
    // Another host (no cache) restores the chain: the full and the delta.
    await shard.put(20, 4);
    store.reset();
    const elsewhere = await producer(store, shard, fresh(temp)).snapshotShard();
    assert.equal(store.counts.download, 2);
    assert.equal(elsewhere.baseSequenceNumber, cached.sequenceNumber);
    assertExact(elsewhere.localFile, shard.all);
    // The producer's dir keeps one cached point per shard, never a pile of old ones.
    const dir = join(local, shard.stream, shard.shardId, "producer");
    const files = (await Array.fromAsync(Deno.readDir(dir))).map((e) => e.name).sort();
    assert.deepEqual(files, [
      `${cached.sequenceNumber}.sqlite`,
      `${cached.sequenceNumber}.sqlite.json`,
    ]);
  },
);

Deno.test(
  "a producer's local copy serves only the store it was published to",
  SHARES_EMULATORS,
  async () => {
    const { temp } = await setUp();
    const shard = await shardWithRecords(20);
    const local = fresh(temp);
    const a = new CountingStore(new FileSnapshotStore({ root: fresh(temp) }));
    const b = new CountingStore(new FileSnapshotStore({ root: fresh(temp) }));
    const inA = await producer(a, shard, local).snapshotShard();
    // The same point published to another store, from another dir.
    await producer(b, shard, fresh(temp)).snapshotShard();
    await shard.put(10, 16);
    b.reset();
    // Same local dir, other store: its copy is A's, so B's point is restored from B.
    const next = await producer(b, shard, local).snapshotShard();
    assert.equal(b.counts.download, 1, "restored from its own store");
    assert.equal(next.baseSequenceNumber, inA.sequenceNumber);
    assertExact(next.localFile, shard.all);
  },
);

Deno.test(
  "a consumer refreshes its copy with only the newer deltas",
  SHARES_EMULATORS,
  async () => {
    const { temp } = await setUp();
    const inner = new FileSnapshotStore({
      root: fresh(temp),
    });
    const store = new CountingStore(inner);
    const shard = await shardWithRecords(40);
    const local = fresh(temp);
    await producer(store, shard, local).snapshotShard();
    await shard.put(20, 5);
    await producer(store, shard, local).snapshotShard();
    const finder = new ShardSnapshotFinder({ ...shard, store, localPath: join(temp, "consumer") });
    const held = (await finder.downloadLatestSnapshot({ refresh: true }))!;
    for (const seed of [6, 7]) {
      await shard.put(15, seed);
      await producer(store, shard, local).snapshotShard();
    }
    store.reset();
    const refreshed = (await finder.downloadLatestSnapshot({ refresh: true }))!;
    assert.equal(store.counts.download, 2, "only the two newer deltas");
    assertExact(refreshed.localFile, shard.all);
    assert.equal(await exists(held.localFile), false, "the earlier copy was brought forward");
    store.reset();
    const again = (await finder.downloadLatestSnapshot({ refresh: true }))!;
    assert.equal(store.counts.download, 0, "already the latest point");
    assert.equal(again.localFile, refreshed.localFile);
  },
);

Deno.test(
  "a full snapshot is written again once the chain passes its policy",
  SHARES_EMULATORS,
  async () => {
    const { temp, store, shard, local } = await fileShard(30);
    const policy = {
      chain: { maxDeltas: 1, maxRestoreRatio: Infinity },
      retention: { retainMs: Infinity },
    };
    const points: Snapshot[] = [await producer(store, shard, local, policy).snapshotShard()];
    for (const seed of [8, 9, 10]) {
      await shard.put(10, seed);
      points.push(await producer(store, shard, local, policy).snapshotShard());
    }
    assert.deepEqual(points.map((p) => p.kind), ["full", "delta", "full", "delta"]);
    const keys = await objects(store);
    // The third point has both: the delta (for consumers that follow) and the new full.
    assert.ok(
      keys.includes(`${shard.stream}/${shard.shardId}/${points[2].sequenceNumber}.sqlite.zst`),
    );
    assert.ok(keys.some((k) => k.includes(`/${points[2].sequenceNumber}.from-`)));
    assert.equal(points[3].baseSequenceNumber, points[2].sequenceNumber);
    const latest = (await new ShardSnapshotFinder({
      ...shard,
      store,
      localPath: fresh(temp),
    }).downloadLatestSnapshot())!;
    assertExact(latest.localFile, shard.all);
  },
);

/** A log-like generator whose table has no primary key: sessions cannot record it. */
function noKeyGenerator(): SnapshotGenerator {
  return {
    onStart(db) {
      db.exec("CREATE TABLE IF NOT EXISTS events (sequence_number TEXT, data BLOB)");
    },
    onRecords(db, batch) {
      const insert = db.prepare("INSERT INTO events VALUES (?, ?)");
      for (const r of batch.records) insert.run(r.sequenceNumber, r.data);
    },
  };
}

Deno.test(
  "a table without a primary key or a schema change gets a full snapshot, with one line saying why",
  SHARES_EMULATORS,
  async (t) => {
    const { temp } = await setUp();
    const logged = (lines: string[]): Logger => ({
      debug() {},
      info: (m) => lines.push(m),
      warn: (m) => lines.push(m),
    });
    await t.step("no primary key", async () => {
      const store = new FileSnapshotStore({
        root: fresh(temp),
      });
      const shard = await shardWithRecords(20);
      const local = fresh(temp);
      await producer(store, shard, local, { generator: noKeyGenerator() }).snapshotShard();
      await shard.put(10, 11);
      const lines: string[] = [];
      const second = await producer(store, shard, local, {
        generator: noKeyGenerator(),
        logger: logged(lines),
      }).snapshotShard();
      assert.equal(second.kind, "full");
      const why = lines.filter((l) => l.startsWith("publishing a full snapshot"));
      assert.deepEqual(why, ["publishing a full snapshot: tables without a primary key: events"]);
      const db = new DatabaseSync(second.localFile, { readOnly: true });
      assert.equal((db.prepare("SELECT count(*) AS n FROM events").get() as { n: number }).n, 30);
      db.close();
    });
    await t.step("schema change", async () => {
      const store = new FileSnapshotStore({
        root: fresh(temp),
      });
      const shard = await shardWithRecords(20);
      const local = fresh(temp);
      await producer(store, shard, local).snapshotShard();
      await shard.put(10, 12);
      const inner = logGenerator();
      const withIndex: SnapshotGenerator = {
        onStart(db) {
          inner.onStart!(db);
          db.exec("CREATE INDEX IF NOT EXISTS log_by_key ON log (partition_key)");
        },
        onRecords: inner.onRecords,
      };
      const lines: string[] = [];
      const second = await producer(store, shard, local, {
        generator: withIndex,
        logger: logged(lines),
      }).snapshotShard();
      assert.equal(second.kind, "full");
      assert.ok(lines.includes("publishing a full snapshot: the schema changed"), lines.join("\n"));
      assertExact(second.localFile, shard.all);
    });
  },
);

/** A generator whose key column may be NULL (a rowid table, key not declared NOT NULL): a record
 * whose partition key starts with "null" is stored under a NULL key. */
function nullableKeyGenerator(): SnapshotGenerator {
  return {
    onStart(db) {
      db.exec("CREATE TABLE IF NOT EXISTS events (key TEXT PRIMARY KEY, data BLOB)");
    },
    onRecords(db, batch) {
      const insert = db.prepare("INSERT INTO events VALUES (?, ?)");
      for (const r of batch.records) {
        insert.run(r.partitionKey.startsWith("null") ? null : r.sequenceNumber, r.data);
      }
    },
  };
}

Deno.test(
  "a table whose primary key may be NULL gets a full snapshot (a session drops such rows)",
  SHARES_EMULATORS,
  async () => {
    const { temp, store, shard, local } = await fileShard(4);
    const generator = nullableKeyGenerator();
    await producer(store, shard, local, { generator }).snapshotShard();
    const { writer } = await emulators.get();
    await putRecords(writer, shard.stream, makeRecords(1, { prefix: "null", keys: 1 }));
    const lines: string[] = [];
    const second = await producer(store, shard, local, {
      generator,
      logger: { debug() {}, info: (m) => lines.push(m), warn: (m) => lines.push(m) },
    }).snapshotShard();
    const count = (file: string) => {
      const db = new DatabaseSync(file, { readOnly: true });
      const n = (db.prepare("SELECT count(*) AS n FROM events").get() as { n: number }).n;
      db.close();
      return n;
    };
    assert.equal(count(second.localFile), 5);
    const restored = (await new ShardSnapshotFinder({ ...shard, store, localPath: fresh(temp) })
      .downloadLatestSnapshot())!;
    assert.equal(restored.sequenceNumber, second.sequenceNumber);
    assert.equal(count(restored.localFile), 5, "the consumer holds the row with a NULL key");
    assert.equal(second.kind, "full");
    assert.ok(
      lines.includes(
        "publishing a full snapshot: tables whose primary key may be NULL (declare it NOT NULL): events",
      ),
      lines.join("\n"),
    );
  },
);

Deno.test(
  "runs keep the newest keepPoints points and delete older ones; the latest stays restorable",
  SHARES_EMULATORS,
  async () => {
    const { temp, store, shard, local } = await fileShard(20);
    const policy = {
      chain: { maxDeltas: 0, maxRestoreRatio: Infinity }, // a full every run
      retention: { keepPoints: 2 }, // by count alone
    };
    const points: Snapshot[] = [await producer(store, shard, local, policy).snapshotShard()];
    for (const seed of [13, 14, 15]) {
      await shard.put(5, seed);
      points.push(await producer(store, shard, local, policy).snapshotShard());
    }
    const fulls = (await objects(store)).filter((k) => k.endsWith(".sqlite.zst"));
    assert.deepEqual(
      fulls,
      points.slice(-2).map((p) => `${shard.stream}/${shard.shardId}/${p.sequenceNumber}.sqlite.zst`)
        .sort(),
    );
    const finder = new ShardSnapshotFinder({
      ...shard,
      store,
      localPath: fresh(temp),
    });
    assertExact((await finder.downloadLatestSnapshot())!.localFile, shard.all);
  },
);

Deno.test(
  "a producer run and a consumer bootstrap make a bounded number of S3 requests",
  SHARES_EMULATORS,
  async () => {
    const { temp, s3Emulator } = await setUp();
    const client = s3Client(s3Emulator.endpoint);
    const counts = new Map<string, number>();
    interceptCommands(client, (command) => counts.set(command, (counts.get(command) ?? 0) + 1));
    const bucket = `requests-${crypto.randomUUID().slice(0, 8)}`;
    await createBucket(client, bucket);
    const store = new S3SnapshotStore({ client, bucket, prefix: "snaps" });
    const shard = await shardWithRecords(20);
    const local = fresh(temp);
    const policy = {
      chain: { maxDeltas: 2, maxRestoreRatio: Infinity },
      retention: { keepPoints: 3 },
    };
    const measured: Array<Record<string, number>> = [];
    for (let run = 0; run < 9; run++) {
      await shard.put(5, 20 + run);
      counts.clear();
      await producer(store, shard, local, policy).snapshotShard();
      measured.push(Object.fromEntries(counts));
    }
    for (const [i, run] of measured.slice(1).entries()) {
      assert.equal(run.ListObjectsV2Command, 2, `run ${i + 2}: one listing, one fork check`);
      assert.equal(run.GetObjectCommand ?? 0, 0, `run ${i + 2}: the cache, no download`);
      assert.ok((run.PutObjectCommand ?? 0) <= 2, `run ${i + 2}: a delta, and a full when due`);
      assert.ok((run.DeleteObjectsCommand ?? 0) <= 1);
    }
    assert.ok((await objects(store)).length <= 2 * (2 + 2), "at most two chains remain");
    counts.clear();
    const finder = new ShardSnapshotFinder({
      ...shard,
      store,
      localPath: fresh(temp),
    });
    assertExact((await finder.downloadLatestSnapshot())!.localFile, shard.all);
    assert.equal(counts.get("ListObjectsV2Command"), 1);
    assert.ok((counts.get("GetObjectCommand") ?? 0) <= 1 + 2, "a full and at most 2 deltas");
    client.destroy();
  },
);

Deno.test(
  "follow() publishes every interval, and what it applied when stopped; a rerun is exact",
  SHARES_EMULATORS,
  async () => {
    const { temp, store, shard, local } = await fileShard(30);
    const stop = new AbortController();
    const following = producer(store, shard, local, { pollIntervalMs: 200 })
      .follow({ publishEveryMs: 300, stop: stop.signal });
    const finder = new ShardSnapshotFinder({
      ...shard,
      store,
      localPath: fresh(temp),
    });
    // Points appear while it runs: the first one whole, the next ones as deltas.
    const published = async () =>
      (await finder.findLatestSnapshot())?.sequenceNumber === seqs(shard.all).at(-1);
    await shard.put(20, 30);
    await waitFor(published);
    await shard.put(25, 31);
    await waitFor(published);
    await shard.put(10, 32);
    stop.abort();
    const last = (await following)!;
    assert.equal(last.sequenceNumber, (await finder.findLatestSnapshot())!.sequenceNumber);
    assertExact(last.localFile, shard.all);
    const kinds = (await finder.findSnapshots()).map((s) => s.kind);
    assert.ok(kinds.includes("delta"), "deltas while following");
    // A one-shot run afterwards catches up exactly, from the follower's cache.
    const rerun = await producer(store, shard, local).snapshotShard();
    assert.equal(rerun.sequenceNumber, seqs(shard.all).at(-1));
    assertExact(rerun.localFile, shard.all);
  },
);

Deno.test(
  "a follower of a small state publishes each point as one object, its full: no delta beside it, no listing",
  SHARES_EMULATORS,
  async () => {
    const { temp, store, shard, local } = await fileShard(30);
    const counting = new CountingStore(store);
    const stop = new AbortController();
    // The default policy: a state this small is due a full at every point (one delta already
    // costs a bootstrap more than 1.4 times the full alone), and the delta would save a consumer
    // holding the point before less than an object costs, so the full does alone.
    const following = producer(counting, shard, local, { chain: undefined, pollIntervalMs: 200 })
      .follow({ publishEveryMs: 300, stop: stop.signal });
    const finder = new ShardSnapshotFinder({ ...shard, store, localPath: fresh(temp) });
    for (let burst = 0; burst < 4; burst++) {
      await shard.put(5, 60 + burst);
      await waitFor(async () =>
        (await finder.findLatestSnapshot())?.sequenceNumber === seqs(shard.all).at(-1)
      );
    }
    stop.abort();
    await following;
    const stored = await finder.findSnapshots();
    const points = new Set(stored.map((s) => s.sequenceNumber));
    assert.ok(points.size >= 4, `a point per burst at least, saw ${points.size}`);
    assert.deepEqual(stored.map((s) => s.kind), stored.map(() => "full"), "fulls alone");
    assert.equal(counting.counts.put, points.size, "one upload per point");
    assert.equal(counting.counts.list, 1, "the listing at the start only: no fork check");
    const latest = (await finder.downloadLatestSnapshot())!;
    assertExact(latest.localFile, shard.all);
  },
);

/** A log generator whose database also holds `padBytes` of incompressible data, written once:
 * a state whose full costs much more to restore than a small delta does. */
function paddedLogGenerator(padBytes: number): SnapshotGenerator {
  const inner = logGenerator();
  return {
    onStart(db) {
      inner.onStart!(db);
      db.exec("CREATE TABLE IF NOT EXISTS pad (id INTEGER PRIMARY KEY, data BLOB NOT NULL)");
      db.exec(`INSERT OR IGNORE INTO pad VALUES (1, randomblob(${padBytes}))`);
    },
    onRecords: inner.onRecords,
  };
}

Deno.test(
  "a point whose full is due keeps its delta beside the full when the delta saves a consumer holding the point before more than an object costs",
  SHARES_EMULATORS,
  async () => {
    const { store, shard, local } = await fileShard(20);
    // A full after every delta, of ~400 KB against a delta of a few records: the delta saves a
    // consumer holding the point before more than an object's 256 KiB.
    const options = { chain: { maxDeltas: 0 }, generator: paddedLogGenerator(400_000) };
    const first = await producer(store, shard, local, options).snapshotShard();
    assert.equal(first.kind, "full");
    await shard.put(5, 70);
    const second = await producer(store, shard, local, options).snapshotShard();
    assert.equal(second.kind, "full");
    const prefix = `${shard.stream}/${shard.shardId}/${second.sequenceNumber}`;
    assert.deepEqual((await objects(store)).filter((k) => k.startsWith(prefix)), [
      `${prefix}.from-${first.sequenceNumber}.delta.zst`,
      `${prefix}.sqlite.zst`,
    ]);
  },
);

Deno.test(
  "a follower collects points past its retention: the shard's objects stay few however long it runs",
  SHARES_EMULATORS,
  async () => {
    const { temp } = await setUp();
    const store = new FileSnapshotStore({ root: fresh(temp) });
    const shard = await shardWithRecords(10);
    const stop = new AbortController();
    const following = producer(store, shard, fresh(temp), {
      chain: { maxDeltas: 1, maxRestoreRatio: Infinity },
      retention: { keepPoints: 2 },
      pollIntervalMs: 200,
    }).follow({ publishEveryMs: 100, stop: stop.signal });
    const finder = new ShardSnapshotFinder({ ...shard, store, localPath: temp });
    let most = 0;
    for (let burst = 0; burst < 8; burst++) {
      await shard.put(5, 90 + burst);
      await waitFor(async () =>
        (await finder.findLatestSnapshot())?.sequenceNumber === seqs(shard.all).at(-1)
      );
      most = Math.max(most, (await objects(store)).length);
    }
    stop.abort();
    await following;
    // Two chains (a full, its delta, the delta that led to the next full), plus, for a moment,
    // a new full and the delta beside it before the oldest chain is deleted.
    assert.ok(most <= 7, `at most 7 objects at any time, saw ${most}`);
    assert.ok((await objects(store)).length <= 6, "at most 6 once it stopped");
    const latest = (await new ShardSnapshotFinder({
      ...shard,
      store,
      localPath: fresh(temp),
    }).downloadLatestSnapshot())!;
    assertExact(latest.localFile, shard.all);
  },
);

Deno.test(
  "a LiveReplica following the store applies each new delta, and a full snapshot when no delta leads on",
  SHARES_EMULATORS,
  async () => {
    const { temp, store, shard, local } = await fileShard(30);
    await producer(store, shard, local).snapshotShard();
    await using replica = new LiveReplica({
      follow: "store",
      store,
      ...shard,
      localPath: fresh(temp),
      pollIntervalMs: 200,
    });
    await replica.start();
    const count = () =>
      replica.query((db) => (db.prepare("SELECT count(*) AS n FROM log").get() as { n: number }).n);
    assert.equal(await count(), 30);
    await shard.put(20, 40);
    const delta = await producer(store, shard, local).snapshotShard();
    assert.equal(delta.kind, "delta");
    await waitFor(() => Promise.resolve(replica.sequenceNumber === delta.sequenceNumber));
    assert.equal(await count(), 50);
    // A full snapshot alone (no delta to it): the replica swaps to it.
    const fileBefore = replica.file;
    await shard.put(10, 41);
    const full = await producer(store, shard, fresh(temp), { full: true })
      .snapshotShard();
    await waitFor(() => Promise.resolve(replica.sequenceNumber === full.sequenceNumber));
    assert.equal(await count(), 60);
    assert.notEqual(replica.file, fileBefore);
    assert.equal(await exists(fileBefore), false, "the old file is removed once unused");
    assert.equal(replica.state, "running");
  },
);

Deno.test(
  "the CLI lists kinds and bases, restores any point, and shows chains in gc --dry-run",
  SHARES_EMULATORS,
  async () => {
    const { temp, env } = await setUp();
    const cwd = await Deno.makeTempDir({ dir: temp });
    const shard = await shardWithRecords(20);
    const cli = (...args: string[]) => runCli(args, { cwd, env });
    const common = ["--stream", shard.stream, "--store", "snaps"];
    const snapshot = ["snapshot", ...common, "--generator", "log", "--max-restore-ratio", "1000"];
    assert.equal((await cli(...snapshot)).code, 0);
    await shard.put(10, 50);
    assert.equal((await cli(...snapshot)).code, 0);
    const listed = JSON.parse((await cli("list", ...common, "--json")).stdout);
    assert.deepEqual(listed.map((s: Snapshot) => s.kind), ["full", "delta"]);
    assert.equal(listed[1].baseSequenceNumber, listed[0].sequenceNumber);
    const table = (await cli("list", ...common)).stdout;
    assert.match(table.split("\n")[0], /KIND\s+BASE/);
    // The delta's point, restored by sequence number, into a fresh dir.
    const download = await cli(
      "download",
      ...common,
      "--shard",
      shard.shardId,
      "--sequence",
      listed[1].sequenceNumber,
      "--out",
      "dl",
    );
    assert.equal(download.code, 0, download.stderr);
    assertExact(download.stdout.trim(), shard.all);
    const dry = await cli("gc", ...common, "--keep", "1", "--dry-run");
    assert.equal(dry.code, 0, dry.stderr);
    assert.match(dry.stdout, /CHAIN/);
    assert.match(dry.stdout, /keep\s+\S+\s+chain 1\s+full/);
    assert.match(dry.stdout, /keep\s+\S+\s+chain 1\s+delta/);
  },
);

Deno.test(
  "StreamSnapshotter.follow() follows a split: the parent's final snapshot, then its children seeded",
  SHARES_EMULATORS,
  async () => {
    const { kinesis, temp } = await setUp();
    const store = new FileSnapshotStore({ root: fresh(temp) });
    const shard = await shardWithRecords(40);
    const stop = new AbortController();
    const snapshotter = new StreamSnapshotter({
      kinesis,
      store,
      stream: shard.stream,
      localPath: fresh(temp),
      generator: kvGenerator(),
      chain: LONG_CHAINS,
      pollIntervalMs: 200,
    });
    const following = snapshotter.follow({ publishEveryMs: 300, stop: stop.signal });
    const [parent] = await listStreamShards(kinesis, shard.stream);
    const range = parent.hashKeyRange;
    const mid = (BigInt(range.startingHashKey) + BigInt(range.endingHashKey)) / 2n;
    await kinesis.send(
      new SplitShardCommand({
        StreamName: shard.stream,
        ShardToSplit: parent.shardId,
        NewStartingHashKey: mid.toString(),
      }),
    );
    await waitUntilStreamExists({ client: kinesis, maxWaitTime: 60, minDelay: 1 }, {
      StreamName: shard.stream,
    });
    const after = await shard.put(60, 60);
    const children = [...new Set(after.map((r) => r.shardId))];
    // Each child publishes a point holding its own records, seeded with its parent's keys.
    await waitFor(async () => {
      const latest = await Promise.all(
        children.map((shardId) =>
          new ShardSnapshotFinder({ store, stream: shard.stream, shardId, localPath: temp })
            .findLatestSnapshot()
        ),
      );
      return latest.every((l, i) =>
        l !== undefined &&
        l.sequenceNumber === seqs(after.filter((r) => r.shardId === children[i])).at(-1)
      );
    });
    stop.abort();
    const latest = await following;
    const final = latest.find((s) => s.shardId === parent.shardId)!;
    assert.equal(final.final, true, "the parent ends with its final snapshot");
    // The open shards together hold the newest value of every key, once.
    const values = new Map<string, number>();
    for (const s of latest.filter((s) => !s.final)) {
      const db = new DatabaseSync(s.localFile, { readOnly: true });
      for (const row of db.prepare("SELECT key FROM kv").all() as Array<{ key: string }>) {
        values.set(row.key, (values.get(row.key) ?? 0) + 1);
      }
      assert.deepEqual(readSnapshotMetadata(db)!.parentShards, [parent.shardId]);
      db.close();
    }
    assert.ok([...values.values()].every((n) => n === 1), "every key in one child only");
    assert.deepEqual(new Set(values.keys()), shard.keys);
  },
);

/** Polls `check` until it holds (bounded; the emulators are slow on a loaded machine). */
async function waitFor(check: () => Promise<boolean>, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`condition not met within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 100));
  }
}
