/**
 * Consumers racing the producer's retention (issue 14): an object listed, planned and then
 * deleted before its download makes the consumer list again and re-plan, a bounded number of
 * times, instead of failing for good. Against the emulators, on both store kinds; the race is
 * made deterministic by {@linkcode RacingStore}, which runs the producer between a consumer's
 * listing and its download.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import {
  FileSnapshotStore,
  LiveReplica,
  logGenerator,
  S3SnapshotStore,
  ShardSnapshotFinder,
  ShardSnapshotter,
  type Snapshot,
  type SnapshotStore,
  SnapshotVanishedError,
  type StoredObject,
} from "../mod.ts";
import { makeRecords, putRecords } from "./support/data.ts";
import { createBucket, createStream, s3Client } from "./support/emulators.ts";
import { FaultCounter, injectFaults, UNAVAILABLE } from "./support/faults.ts";
import { sharedKinesisAndS3, SHARES_EMULATORS, uniqueName } from "./support/fixture.ts";
import { RacingStore } from "./support/racing_store.ts";
import { storeKinds } from "./support/stores.ts";

const emulators = sharedKinesisAndS3("streambolt-race-");
/** The attempts the test S3 client makes of one call (its `maxAttempts`). */
const MAX_SDK_ATTEMPTS = 5;
Deno.test.afterAll(() => emulators.stop());

/** A one-shard stream, a producer keeping its 2 newest points whatever their age, publishing to
 * `store`. */
async function shardWithProducer(store: SnapshotStore) {
  const { kinesis, writer, temp } = await emulators.get();
  const stream = uniqueName("race");
  await createStream(writer, stream, 1);
  const shardId = "shardId-000000000000";
  const local = join(temp, crypto.randomUUID());
  let seed = 0;
  /** Puts records, then publishes a point (a full one when asked). */
  const publish = async (options: { full?: boolean } = {}): Promise<Snapshot> => {
    await putRecords(writer, stream, makeRecords(10, { seed: ++seed, keys: 5 }));
    return await new ShardSnapshotter({
      kinesis,
      store,
      stream,
      shardId,
      localPath: local,
      generator: logGenerator(),
      chain: { maxDeltas: 1_000, maxRestoreRatio: Infinity },
      full: options.full,
      retention: { keepPoints: 2, retainMs: 0 },
    }).snapshotShard();
  };
  return { stream, shardId, publish, temp };
}

/**
 * Watches a replica from now on: `reached(seq)` resolves once it applied a point at `seq` (even
 * before the call), `until(done)` resolves with `done`; both reject if the replica stops on an
 * error.
 */
function watch(replica: LiveReplica): {
  reached: (sequenceNumber: string) => Promise<void>;
  until: (done: Promise<void>) => Promise<void>;
} {
  const applied = new Set<string>();
  const waiting = new Map<string, () => void>();
  let stopped: unknown;
  const failures = new Set<(error: unknown) => void>();
  replica.addEventListener("applied", (e) => {
    applied.add(e.detail.sequenceNumber);
    waiting.get(e.detail.sequenceNumber)?.();
  });
  replica.addEventListener("error", (e) => {
    stopped = e.detail ?? new Error("the replica stopped");
    for (const fail of failures) fail(stopped);
  });
  return {
    reached: (sequenceNumber) =>
      new Promise<void>((resolve, reject) => {
        if (applied.has(sequenceNumber)) return resolve();
        if (stopped !== undefined) return reject(stopped);
        waiting.set(sequenceNumber, resolve);
        failures.add(reject);
      }),
    until: (done) =>
      new Promise<void>((resolve, reject) => {
        if (stopped !== undefined) return reject(stopped);
        failures.add(reject);
        done.then(resolve, reject);
      }),
  };
}

async function keys(store: SnapshotStore): Promise<string[]> {
  return (await Array.fromAsync(store.list(""))).map((o) => o.key);
}

Deno.test(
  "downloadLatestSnapshot({ fallback: true }) lists again when retention deletes the object it planned",
  SHARES_EMULATORS,
  async (t) => {
    const { s3, temp } = await emulators.get();
    for (const kind of storeKinds(s3, temp)) {
      await t.step(`${kind.name} store`, async () => {
        const inner = await kind.make();
        const shard = await shardWithProducer(inner);
        const first = await shard.publish();
        const store = new RacingStore(inner);
        let newest: Snapshot | undefined;
        // Listed and planned: the first point. Before its download the producer publishes
        // twice, and its retention (2 points) deletes that point.
        const raced = store.beforeDownload((key) => key === first.key, async () => {
          await shard.publish({ full: true });
          newest = await shard.publish({ full: true });
        });
        const latest = await new ShardSnapshotFinder({
          store,
          stream: shard.stream,
          shardId: shard.shardId,
          localPath: join(temp, crypto.randomUUID()),
        }).downloadLatestSnapshot({ fallback: true });
        await raced;
        assert.equal((await keys(inner)).includes(first.key), false, "the race happened");
        assert.equal(latest?.key, newest!.key);
      });
    }
  },
);

Deno.test(
  "a LiveReplica following the store lists again when retention deletes the delta it planned",
  SHARES_EMULATORS,
  async (t) => {
    const { s3, temp } = await emulators.get();
    for (const kind of storeKinds(s3, temp)) {
      await t.step(`${kind.name} store`, async () => {
        const inner = await kind.make();
        const shard = await shardWithProducer(inner);
        await shard.publish();
        const store = new RacingStore(inner);
        await using replica = new LiveReplica({
          follow: "store",
          store,
          stream: shard.stream,
          shardId: shard.shardId,
          localPath: join(temp, crypto.randomUUID()),
          pollIntervalMs: 200,
        });
        await replica.start();
        let newest: Snapshot | undefined;
        // The replica lists and plans the delta; before its download the producer publishes
        // two full points, and its retention deletes the delta (and the point before it).
        const raced = store.beforeDownload((key) => key.includes(".delta"), async () => {
          await shard.publish({ full: true });
          newest = await shard.publish({ full: true });
        });
        const watched = watch(replica);
        const delta = await shard.publish();
        assert.equal(delta.kind, "delta");
        await raced;
        assert.equal((await keys(inner)).includes(delta.key), false, "the race happened");
        await watched.reached(newest!.sequenceNumber);
        assert.equal(replica.state, "running");
        assert.equal(replica.sequenceNumber, newest!.sequenceNumber);
      });
    }
  },
);

/** A store whose listing is the one taken when it was made (a stale listing): objects deleted
 * since are still listed, and never downloadable. */
class StaleListingStore extends RacingStore {
  #listed: StoredObject[];
  constructor(inner: SnapshotStore, listed: StoredObject[]) {
    super(inner);
    this.#listed = listed;
  }
  override async *list(prefix: string): AsyncIterable<StoredObject> {
    yield* this.#listed.filter((o) => o.key.startsWith(prefix));
  }
}

Deno.test(
  "an object that stays listed but never downloads fails the download with SnapshotVanishedError after a few listings",
  SHARES_EMULATORS,
  async (t) => {
    const { s3, temp } = await emulators.get();
    for (const kind of storeKinds(s3, temp)) {
      await t.step(`${kind.name} store`, async () => {
        const inner = await kind.make();
        const shard = await shardWithProducer(inner);
        const first = await shard.publish();
        const store = new StaleListingStore(inner, await Array.fromAsync(inner.list("")));
        await inner.delete([first.key]);
        const error = await new ShardSnapshotFinder({
          store,
          stream: shard.stream,
          shardId: shard.shardId,
          localPath: join(temp, crypto.randomUUID()),
        }).downloadLatestSnapshot({ fallback: true }).then(
          () => assert.fail("the download succeeded"),
          (error: unknown) => error,
        );
        assert.ok(error instanceof SnapshotVanishedError, String(error));
        assert.equal(error.key, first.key);
        assert.ok(store.downloads.length > 1, "listed again and retried");
        assert.equal(store.downloads.length, error.attempts);
      });
    }
  },
);

Deno.test(
  "a LiveReplica following the store keeps following after a call to the store failed",
  SHARES_EMULATORS,
  async () => {
    const { s3, s3Emulator, temp } = await emulators.get();
    const bucket = uniqueName("race-bucket");
    await createBucket(s3, bucket);
    const shard = await shardWithProducer(new S3SnapshotStore({ client: s3, bucket }));
    await shard.publish();
    // The replica's own client: every attempt of one ListObjectsV2 fails (the SDK gives up).
    const client = s3Client(s3Emulator.endpoint);
    const faults = new FaultCounter();
    let failing = false;
    const { promise: failed, resolve: listFailed } = Promise.withResolvers<void>();
    injectFaults(client, ["ListObjectsV2Command"], () => {
      if (!failing) return undefined;
      if (faults.total + 1 === MAX_SDK_ATTEMPTS) {
        failing = false;
        listFailed();
      }
      return UNAVAILABLE;
    }, faults);
    const warnings: string[] = [];
    await using replica = new LiveReplica({
      follow: "store",
      store: new S3SnapshotStore({ client, bucket }),
      stream: shard.stream,
      shardId: shard.shardId,
      localPath: join(temp, crypto.randomUUID()),
      pollIntervalMs: 200,
      logger: { debug() {}, info() {}, warn: (message) => warnings.push(message) },
    });
    try {
      await replica.start();
      const watched = watch(replica);
      failing = true;
      await watched.until(failed);
      const delta = await shard.publish();
      await watched.reached(delta.sequenceNumber);
      assert.equal(replica.state, "running");
      assert.equal(faults.total, MAX_SDK_ATTEMPTS);
      assert.ok(warnings.includes("following the store failed; trying again at the next poll"));
    } finally {
      await replica.stop();
      client.destroy();
    }
  },
);

Deno.test(
  "a file store object whose sidecar is already deleted downloads as missing, not as an object without a checksum",
  async () => {
    const root = await Deno.makeTempDir({ prefix: "streambolt-race-" });
    try {
      const store = new FileSnapshotStore({ root });
      const source = join(root, "source");
      await Deno.writeTextFile(source, "bytes");
      await store.put("s/shard/1.sqlite", source, { metadata: { sha256: "x" } });
      // Half-way through a delete: the sidecar goes first, then the data.
      await Deno.remove(join(root, "s", "shard", "1.sqlite.meta.json"));
      await assert.rejects(
        store.download("s/shard/1.sqlite", join(root, "out")),
        Deno.errors.NotFound,
        "s/shard/1.sqlite",
      );
    } finally {
      await Deno.remove(root, { recursive: true });
    }
  },
);
