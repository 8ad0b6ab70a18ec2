/**
 * `deno task demo`: starts a local Kinesis (kinesis-local), creates a two-shard stream, writes
 * sample events, snapshots both shards into ./demo-snapshots with the file store, then
 * bootstraps a consumer from the latest snapshots and reads on from where they end.
 * Needs nothing but Deno.
 *
 * @module
 */
import { DatabaseSync } from "node:sqlite";
import { ListShardsCommand } from "@aws-sdk/client-kinesis";
import {
  FileSnapshotStore,
  kvGenerator,
  readShard,
  ShardSnapshotFinder,
  ShardSnapshotter,
} from "../../mod.ts";
import { putRecords, type TestRecord } from "./data.ts";
import { createStream, kinesisClient, startKinesis } from "./emulators.ts";

const STREAM = "demo-events";
const encoder = new TextEncoder();
const say = (line = "") => console.log(line);

function events(count: number, from: number): TestRecord[] {
  const actions = ["login", "view", "add-to-cart", "checkout", "logout"];
  return Array.from({ length: count }, (_, i) => {
    const n = from + i;
    const user = `user-${(n * 7919) % 100}`;
    return {
      partitionKey: user,
      data: encoder.encode(JSON.stringify({ user, action: actions[n % actions.length], n })),
    };
  });
}

// Each run starts a new emulator: snapshots of an earlier run belong to another stream.
for (const dir of ["./demo-snapshots", "./demo-work", "./demo-local"]) {
  await Deno.remove(dir, { recursive: true }).catch(() => {});
}
say("starting a local Kinesis (kinesis-local)...");
const emulator = await startKinesis();
const kinesis = kinesisClient(emulator.endpoint);
try {
  await createStream(kinesis, STREAM, 2);
  const shards = (await kinesis.send(new ListShardsCommand({ StreamName: STREAM }))).Shards!
    .map((s) => s.ShardId!);
  await putRecords(kinesis, STREAM, events(2_000, 0));
  say(`stream "${STREAM}": ${shards.length} shards, 2,000 events written`);

  // Producer: snapshot every shard into ./demo-snapshots.
  const store = new FileSnapshotStore({ root: "./demo-snapshots" });
  say();
  say("producer: snapshotting each shard into ./demo-snapshots");
  for (const shardId of shards) {
    const t0 = performance.now();
    const snapshot = await new ShardSnapshotter({
      kinesis,
      store,
      stream: STREAM,
      shardId,
      localPath: "./demo-work",
      generator: kvGenerator(),
    }).snapshotShard();
    say(`  ${shardId}: published ${snapshot.key} in ${Math.round(performance.now() - t0)} ms`);
  }

  await putRecords(kinesis, STREAM, events(50, 2_000));
  say("  (50 more events written after the snapshots)");

  // Consumer: start from the latest snapshot instead of replaying the stream.
  say();
  say("consumer: bootstrapping from the latest snapshots");
  for (const shardId of shards) {
    const finder = new ShardSnapshotFinder({
      store,
      stream: STREAM,
      shardId,
      localPath: "./demo-local",
    });
    const latest = await finder.findLatestSnapshot();
    if (!latest) throw new Error(`no snapshot for ${shardId}`);
    const meta = await finder.downloadSnapshot(latest);
    const db = new DatabaseSync(latest.localFile, { readOnly: true });
    const { users } = db.prepare("SELECT count(*) AS users FROM kv").get() as { users: number };
    const sample = db.prepare("SELECT key, value FROM kv ORDER BY key LIMIT 1").get() as {
      key: string;
      value: Uint8Array;
    };
    db.close();
    say(`  ${shardId}: ${latest.localFile}`);
    say(
      `    ${meta.recordsApplied} records applied, ${users} users, e.g. ${sample.key} -> ${
        new TextDecoder().decode(sample.value)
      }`,
    );
    let newer = 0;
    for await (
      const page of readShard(kinesis, {
        stream: STREAM,
        shardId,
        after: latest.sequenceNumber,
        doneLagMs: 0,
      })
    ) newer += page.records.length;
    say(`    read on AFTER_SEQUENCE_NUMBER ${latest.sequenceNumber.slice(0, 12)}...: ${newer} new`);
  }
  say();
  say("done: snapshots are in ./demo-snapshots; try");
  say("  deno task cli list --stream demo-events --store ./demo-snapshots");
  say("  deno task cli inspect demo-local/demo-events/*/*.sqlite");
} finally {
  kinesis.destroy();
  await emulator.stop();
}
