import assert from "node:assert/strict";
import { join } from "node:path";
import {
  type KinesisClient,
  ListShardsCommand,
  SplitShardCommand,
  waitUntilStreamExists,
} from "@aws-sdk/client-kinesis";
import {
  logGenerator,
  type Logger,
  type S3SnapshotStore,
  ShardSnapshotFinder,
  ShardSnapshotter,
  type ShardSnapshotterOptions,
  type Snapshot,
  type SnapshotGenerator,
  SnapshotGeneratorError,
  SnapshotIntegrityError,
  type SnapshotStore,
} from "../mod.ts";
import { countByShard, makeRecords, putRecords, seededRandom } from "./support/data.ts";
import { createStream, kinesisClient } from "./support/emulators.ts";
import { sharedKinesisAndS3, SHARES_EMULATORS } from "./support/fixture.ts";
import { exists, readLogSnapshot } from "./support/snapshots.ts";
import { type StoreKind, storeKinds } from "./support/stores.ts";

const emulators = sharedKinesisAndS3("streambolt-snap-");
Deno.test.afterAll(() => emulators.stop());

let streamCounter = 0;
const newStreamName = () => `stream-${++streamCounter}-${crypto.randomUUID().slice(0, 6)}`;

async function shardIds(kinesis: KinesisClient, stream: string): Promise<string[]> {
  const out = await kinesis.send(new ListShardsCommand({ StreamName: stream }));
  return (out.Shards ?? []).map((s) => s.ShardId!);
}

/** A log generator that also counts what it was given in this run. */
function countingLog(): SnapshotGenerator & { seen: string[] } {
  const inner = logGenerator();
  const seen: string[] = [];
  return {
    seen,
    onStart: inner.onStart,
    onRecords(db, batch) {
      for (const r of batch.records) seen.push(r.sequenceNumber);
      return inner.onRecords(db, batch);
    },
  };
}

function maxSequence(seqs: string[]): string {
  return seqs.reduce((a, b) => (BigInt(a) > BigInt(b) ? a : b));
}

/** The shared emulators, and a `ShardSnapshotter` maker on them (log generator, no done lag). */
async function fixture() {
  const e = await emulators.get();
  const snapshotter = (
    store: SnapshotStore,
    stream: string,
    shardId: string,
    localPath: string,
    extra: Partial<ShardSnapshotterOptions> = {},
  ) =>
    new ShardSnapshotter({
      kinesis: e.kinesis,
      store,
      stream,
      shardId,
      localPath,
      generator: logGenerator(),
      doneLagMs: 0,
      ...extra,
    });
  return { ...e, snapshotter };
}

/** Runs `fn` as one step per store kind (file, s3), each with its own new store. */
async function forEachStoreKind(
  t: Deno.TestContext,
  fn: (kind: StoreKind) => Promise<void>,
): Promise<void> {
  const { s3, temp } = await emulators.get();
  for (const kind of storeKinds(s3, temp)) {
    await t.step(`${kind.name} store`, () => fn(kind));
  }
}

/** A case's own two-shard stream with 600 records, and a new store of one kind. */
async function streamWithRecords(kind: StoreKind) {
  const { kinesis, writer, temp } = await fixture();
  const store = await kind.make();
  const stream = newStreamName();
  await createStream(kinesis, stream, 2);
  const first = await putRecords(writer, stream, makeRecords(600, { seed: 1 }));
  const localPath = join(temp, crypto.randomUUID());
  return { store, stream, first, localPath, shardIds: await shardIds(kinesis, stream) };
}

/** `streamWithRecords()` after a first snapshot of each shard: the snapshots by shard. */
async function snapshottedStream(kind: StoreKind) {
  const { snapshotter } = await fixture();
  const s = await streamWithRecords(kind);
  const snaps = new Map<string, Snapshot>();
  for (const shardId of s.shardIds) {
    snaps.set(shardId, await snapshotter(s.store, s.stream, shardId, s.localPath).snapshotShard());
  }
  return { ...s, snaps };
}

Deno.test(
  "ShardSnapshotter publishes every record of each shard, and removes its work dir",
  SHARES_EMULATORS,
  (t) =>
    forEachStoreKind(t, async (kind) => {
      const { snapshotter } = await fixture();
      const { store, stream, first, localPath, shardIds } = await streamWithRecords(kind);
      for (const shardId of shardIds) {
        const put = first.filter((r) => r.shardId === shardId).map((r) => r.sequenceNumber);
        const snap = await snapshotter(store, stream, shardId, localPath).snapshotShard();
        assert.equal(snap.sequenceNumber, maxSequence(put));
        assert.equal(snap.final, false);
        const { sequenceNumbers, meta } = readLogSnapshot(snap.localFile);
        assert.deepEqual(new Set(sequenceNumbers), new Set(put));
        assert.equal(sequenceNumbers.length, put.length);
        assert.equal(meta.recordsApplied, put.length);
        assert.equal(meta.sequenceNumber, snap.sequenceNumber);
      }
      assert.equal(await exists(join(localPath, ".streambolt")), false, "work dir removed");
    }),
);

Deno.test(
  "ShardSnapshotFinder finds and downloads the latest snapshot with nothing local",
  SHARES_EMULATORS,
  (t) =>
    forEachStoreKind(t, async (kind) => {
      const { temp } = await fixture();
      const { store, stream, first, localPath, snaps } = await snapshottedStream(kind);
      // A consumer elsewhere: nothing local, find and download the latest.
      await Deno.remove(localPath, { recursive: true });
      const consumerPath = join(temp, crypto.randomUUID());
      for (const [shardId, snap] of snaps) {
        const finder = new ShardSnapshotFinder({
          store,
          stream,
          shardId,
          localPath: consumerPath,
        });
        const latest = await finder.findLatestSnapshot();
        assert.equal(latest?.key, snap.key);
        const meta = await finder.downloadSnapshot(latest!);
        assert.equal(meta.sequenceNumber, snap.sequenceNumber);
        const { sequenceNumbers } = readLogSnapshot(latest!.localFile);
        assert.equal(sequenceNumbers.length, countByShard(first).get(shardId));
      }
    }),
);

Deno.test(
  "ShardSnapshotter applies only the new records on a second run",
  SHARES_EMULATORS,
  (t) =>
    forEachStoreKind(t, async (kind) => {
      const { writer, snapshotter } = await fixture();
      const { store, stream, first, localPath, snaps } = await snapshottedStream(kind);
      const second = await putRecords(writer, stream, makeRecords(300, { seed: 2 }));
      for (const [shardId, old] of snaps) {
        const generator = countingLog();
        const snap = await snapshotter(store, stream, shardId, localPath, { generator })
          .snapshotShard();
        const added = second.filter((r) => r.shardId === shardId).map((r) => r.sequenceNumber);
        assert.deepEqual(generator.seen, added, "only the new records, in order");
        assert.ok(BigInt(snap.sequenceNumber) > BigInt(old.sequenceNumber));
        const { sequenceNumbers, meta } = readLogSnapshot(snap.localFile);
        const total = (countByShard(first).get(shardId) ?? 0) + added.length;
        assert.equal(sequenceNumbers.length, total);
        assert.equal(meta.recordsApplied, total);
      }
    }),
);

Deno.test(
  "ShardSnapshotter keeps the latest and uploads nothing when there is nothing new",
  SHARES_EMULATORS,
  (t) =>
    forEachStoreKind(t, async (kind) => {
      const { temp, snapshotter } = await fixture();
      const { store, stream, localPath, snaps } = await snapshottedStream(kind);
      const consumerPath = join(temp, crypto.randomUUID());
      const before = (await Array.fromAsync(store.list(""))).length;
      for (const [shardId] of snaps) {
        const latest = await new ShardSnapshotFinder({
          store,
          stream,
          shardId,
          localPath: consumerPath,
        }).findLatestSnapshot();
        const again = await snapshotter(store, stream, shardId, localPath).snapshotShard();
        assert.equal(again.key, latest!.key);
      }
      assert.equal((await Array.fromAsync(store.list(""))).length, before);
    }),
);

Deno.test(
  "ShardSnapshotFinder ignores keys that are not snapshots",
  SHARES_EMULATORS,
  (t) =>
    forEachStoreKind(t, async (kind) => {
      const { kinesis, writer, temp, snapshotter } = await fixture();
      const store = await kind.make();
      const stream = newStreamName();
      await createStream(kinesis, stream, 1);
      const [shardId] = await shardIds(kinesis, stream);
      await putRecords(writer, stream, makeRecords(50));
      const junk = join(temp, "junk");
      await Deno.writeTextFile(junk, "not a snapshot");
      for (
        const key of [
          `${stream}/${shardId}/readme.txt`,
          `${stream}/${shardId}/99999999999999999999999999999999999999999999999999999999999.sqlite.tmp`,
          `${stream}/${shardId}/0099.sqlite`,
          `${stream}/shardId-000000000009/99999999999999999999999999999999999999999999999999999999999.sqlite`,
          `${stream}/${shardId}/nested/5.sqlite`,
        ]
      ) await store.put(key, junk, { metadata: {} });
      const finder = new ShardSnapshotFinder({ store, stream, shardId, localPath: temp });
      assert.deepEqual(await finder.findSnapshots(), []);
      const snap = await snapshotter(store, stream, shardId, join(temp, crypto.randomUUID()))
        .snapshotShard();
      assert.deepEqual((await finder.findSnapshots()).map((s) => s.key), [snap.key]);
    }),
);

Deno.test(
  "a generator that throws publishes nothing, and a rerun continues from the previous latest",
  SHARES_EMULATORS,
  (t) =>
    forEachStoreKind(t, async (kind) => {
      const { kinesis, writer, temp, snapshotter } = await fixture();
      const store = await kind.make();
      const stream = newStreamName();
      await createStream(kinesis, stream, 1);
      const [shardId] = await shardIds(kinesis, stream);
      await putRecords(writer, stream, makeRecords(100));
      const localPath = join(temp, crypto.randomUUID());
      const good = await snapshotter(store, stream, shardId, localPath).snapshotShard();
      const more = await putRecords(writer, stream, makeRecords(40, { seed: 9 }));
      const keysBefore = (await Array.fromAsync(store.list(""))).map((o) => o.key);
      const inner = logGenerator();
      // Deterministic, as generators must be: a failed page is re-applied record by record
      // to name the record the generator fails on.
      const failing: SnapshotGenerator = {
        onStart: inner.onStart,
        onRecords(db, batch) {
          inner.onRecords(db, batch); // the rows it wrote must be rolled back
          for (const r of batch.records) {
            if (r.sequenceNumber === more[4].sequenceNumber) throw new Error("bad payload");
          }
        },
      };
      await assert.rejects(
        snapshotter(store, stream, shardId, localPath, { generator: failing }).snapshotShard(),
        (error: Error) => {
          assert.ok(error instanceof SnapshotGeneratorError);
          assert.equal(error.sequenceNumber, more[4].sequenceNumber);
          assert.match(error.message, new RegExp(more[4].sequenceNumber));
          assert.match(error.message, new RegExp(shardId));
          return true;
        },
      );
      assert.deepEqual((await Array.fromAsync(store.list(""))).map((o) => o.key), keysBefore);
      assert.equal(await exists(join(localPath, ".streambolt")), false, "work dir removed");
      // The previous latest is intact, and a rerun picks up from it.
      const rerun = await snapshotter(store, stream, shardId, localPath).snapshotShard();
      assert.ok(BigInt(rerun.sequenceNumber) > BigInt(good.sequenceNumber));
      assert.equal(readLogSnapshot(rerun.localFile).sequenceNumbers.length, 140);
    }),
);

Deno.test(
  "a corrupt snapshot is refused, and never built on",
  SHARES_EMULATORS,
  (t) =>
    forEachStoreKind(t, async (kind) => {
      const { kinesis, writer, temp, snapshotter } = await fixture();
      const store = await kind.make();
      const stream = newStreamName();
      await createStream(kinesis, stream, 1);
      const [shardId] = await shardIds(kinesis, stream);
      const localPath = join(temp, crypto.randomUUID());
      await putRecords(writer, stream, makeRecords(30));
      const older = await snapshotter(store, stream, shardId, localPath).snapshotShard();
      await putRecords(writer, stream, makeRecords(30, { seed: 3 }));
      // A full snapshot alone at the newer point (no delta beside it to restore it from).
      const newer = await snapshotter(store, stream, shardId, localPath, { full: true })
        .snapshotShard();
      // Flip one byte of the stored object, keeping its metadata.
      const raw = join(temp, crypto.randomUUID());
      const { metadata } = await store.download(newer.key, raw);
      const bytes = await Deno.readFile(raw);
      bytes[Math.floor(bytes.length / 2)] ^= 0xff;
      await Deno.writeFile(raw, bytes);
      await store.delete([newer.key]);
      await store.put(newer.key, raw, { metadata });

      const consumerPath = join(temp, crypto.randomUUID());
      const finder = new ShardSnapshotFinder({ store, stream, shardId, localPath: consumerPath });
      const latest = (await finder.findLatestSnapshot())!;
      await assert.rejects(finder.downloadSnapshot(latest), SnapshotIntegrityError);
      assert.equal(await exists(latest.localFile), false);
      const warnings: string[] = [];
      const logger: Logger = { debug() {}, info() {}, warn: (m) => warnings.push(m) };
      const fallbackFinder = new ShardSnapshotFinder({
        store,
        stream,
        shardId,
        localPath: consumerPath,
        logger,
      });
      const used = await fallbackFinder.downloadLatestSnapshot({ fallback: true });
      assert.equal(used?.key, older.key);
      assert.equal(warnings.length, 1);
      await assert.rejects(finder.downloadLatestSnapshot(), SnapshotIntegrityError);
      // The producer refuses to build on it and publishes nothing.
      const keys = (await Array.fromAsync(store.list(""))).length;
      await assert.rejects(
        snapshotter(store, stream, shardId, join(temp, crypto.randomUUID())).snapshotShard(),
        SnapshotIntegrityError,
      );
      assert.equal((await Array.fromAsync(store.list(""))).length, keys);
    }),
);

Deno.test(
  "ShardSnapshotFinder finds the latest S3 snapshot among more than 1,000 keys",
  SHARES_EMULATORS,
  async () => {
    const { kinesis, writer, s3, temp, snapshotter } = await fixture();
    const store = (await storeKinds(s3, temp)[1].make()) as S3SnapshotStore;
    const stream = newStreamName();
    await createStream(kinesis, stream, 1);
    const [shardId] = await shardIds(kinesis, stream);
    const localPath = join(temp, crypto.randomUUID());
    await putRecords(writer, stream, makeRecords(20));
    const real = await snapshotter(store, stream, shardId, localPath).snapshotShard();
    // 1,100 older snapshot keys; "9..." keys sort after "4959..." as strings, not as numbers.
    const junk = join(temp, "old");
    await Deno.writeTextFile(junk, "old");
    const keys = Array.from({ length: 1_100 }, (_, i) => `${stream}/${shardId}/9${i}.sqlite.zst`);
    for (let i = 0; i < keys.length; i += 100) {
      await Promise.all(
        keys.slice(i, i + 100).map((k) => store.put(k, junk, { metadata: { sha256: "0" } })),
      );
    }
    const finder = new ShardSnapshotFinder({ store, stream, shardId, localPath });
    assert.equal((await finder.findSnapshots()).length, 1_101);
    assert.equal((await finder.findLatestSnapshot())?.key, real.key);
    await putRecords(writer, stream, makeRecords(20, { seed: 4 }));
    const next = await snapshotter(store, stream, shardId, localPath).snapshotShard();
    assert.equal(readLogSnapshot(next.localFile).sequenceNumbers.length, 40);
  },
);

Deno.test(
  "ShardSnapshotter applies a burst of more than one page whole in one run",
  SHARES_EMULATORS,
  async () => {
    const { kinesis, writer, s3, temp, snapshotter } = await fixture();
    const store = await storeKinds(s3, temp)[0].make();
    const stream = newStreamName();
    await createStream(kinesis, stream, 1);
    const [shardId] = await shardIds(kinesis, stream);
    const put = await putRecords(writer, stream, makeRecords(10_250, { keys: 500 }), 2);
    const snap = await snapshotter(store, stream, shardId, join(temp, crypto.randomUUID()))
      .snapshotShard();
    const { sequenceNumbers, meta } = readLogSnapshot(snap.localFile);
    assert.equal(sequenceNumbers.length, 10_250);
    assert.equal(meta.recordsApplied, 10_250);
    assert.equal(snap.sequenceNumber, maxSequence(put.map((r) => r.sequenceNumber)));
  },
);

Deno.test(
  "a split shard's final snapshot holds all of its records, and the shard is not read again",
  SHARES_EMULATORS,
  async () => {
    const { kinesis, writer, s3, temp, snapshotter } = await fixture();
    const store = await storeKinds(s3, temp)[0].make();
    const stream = newStreamName();
    await createStream(kinesis, stream, 1);
    const [parent] = await shardIds(kinesis, stream);
    const localPath = join(temp, crypto.randomUUID());
    await putRecords(writer, stream, makeRecords(200));
    const open = await snapshotter(store, stream, parent, localPath).snapshotShard();
    const more = await putRecords(writer, stream, makeRecords(150, { seed: 5 }));
    await kinesis.send(
      new SplitShardCommand({
        StreamName: stream,
        ShardToSplit: parent,
        NewStartingHashKey: (2n ** 127n).toString(),
      }),
    );
    await waitUntilStreamExists({ client: kinesis, maxWaitTime: 60, minDelay: 1 }, {
      StreamName: stream,
    });
    const children = (await shardIds(kinesis, stream)).filter((s) => s !== parent);
    assert.equal(children.length, 2);
    const after = await putRecords(writer, stream, makeRecords(100, { seed: 6 }));
    assert.ok(after.every((r) => r.shardId !== parent));

    const final = await snapshotter(store, stream, parent, localPath).snapshotShard();
    assert.equal(final.final, true);
    assert.match(final.key, /\.final\.sqlite\.zst$/);
    assert.equal(final.sequenceNumber, maxSequence(more.map((r) => r.sequenceNumber)));
    const { sequenceNumbers, meta } = readLogSnapshot(final.localFile);
    assert.equal(sequenceNumbers.length, 350);
    assert.equal(meta.final, true);
    assert.deepEqual(meta.childShards.map((c) => c.shardId).sort(), children.sort());
    assert.ok(BigInt(final.sequenceNumber) > BigInt(open.sequenceNumber));

    // A closed shard with a final snapshot is not read again.
    const again = await snapshotter(store, stream, parent, localPath, {
      generator: {
        onRecords() {
          throw new Error("must not be called");
        },
      },
    }).snapshotShard();
    assert.equal(again.key, final.key);
  },
);

Deno.test(
  "throttling, expired iterators and dropped calls still give exact contents",
  SHARES_EMULATORS,
  async () => {
    const { kinesis, kinesisEmulator, writer, s3, temp } = await fixture();
    const store = await storeKinds(s3, temp)[0].make();
    const stream = newStreamName();
    await createStream(kinesis, stream, 1);
    const [shardId] = await shardIds(kinesis, stream);
    const put = await putRecords(writer, stream, makeRecords(3_000), 2);
    const faulty = kinesisClient(kinesisEmulator.endpoint);
    const random = seededRandom(42);
    const injected = new Map<string, number>();
    faulty.middlewareStack.add(
      (next, context) => async (args) => {
        if (context.commandName === "GetRecordsCommand") {
          const roll = random();
          const fault = roll < 0.15
            ? { name: "ProvisionedThroughputExceededException", status: 400 }
            : roll < 0.25
            ? { name: "ExpiredIteratorException", status: 400 }
            : roll < 0.30
            ? { name: "InternalFailure", status: 500 }
            : undefined;
          if (fault) {
            injected.set(fault.name, (injected.get(fault.name) ?? 0) + 1);
            throw Object.assign(new Error(`injected ${fault.name}`), {
              name: fault.name,
              $fault: fault.status >= 500 ? "server" : "client",
              $metadata: { httpStatusCode: fault.status },
            });
          }
        }
        return await next(args);
      },
      { step: "finalizeRequest", priority: "low", name: "faultInjection" },
    );
    try {
      const snap = await new ShardSnapshotter({
        kinesis: faulty,
        store,
        stream,
        shardId,
        localPath: join(temp, crypto.randomUUID()),
        generator: logGenerator(),
        limit: 200,
        retry: { baseDelayMs: 5, maxDelayMs: 50, maxAttempts: 20 },
      }).snapshotShard();
      const { sequenceNumbers } = readLogSnapshot(snap.localFile);
      assert.equal(sequenceNumbers.length, 3_000);
      assert.deepEqual(new Set(sequenceNumbers), new Set(put.map((r) => r.sequenceNumber)));
      assert.ok((injected.get("ExpiredIteratorException") ?? 0) > 0, "faults were injected");
      assert.ok((injected.get("ProvisionedThroughputExceededException") ?? 0) > 0);
    } finally {
      faulty.destroy();
    }
  },
);
