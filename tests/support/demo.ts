/**
 * `deno task demo`: starts a local Kinesis (kinesis-local), creates a two-shard stream, writes
 * sample events, snapshots both shards into ./demo-snapshots with the file store, then
 * bootstraps a consumer from the latest snapshots and reads on from where they end. Then the
 * incremental part: a second run publishes only the change (a delta, built on the producer's
 * local copy), the consumer refreshes with just that delta, and a continuous producer publishes
 * every half second while a live replica follows the store. Needs nothing but Deno.
 *
 * @module
 */
import { DatabaseSync } from "node:sqlite";
import { ListShardsCommand } from "@aws-sdk/client-kinesis";
import {
  FileSnapshotStore,
  kvGenerator,
  listSnapshots,
  LiveReplica,
  readShard,
  ShardSnapshotFinder,
  ShardSnapshotter,
  type SnapshotStore,
} from "../../mod.ts";
import { runCli, spawnCli } from "./cli.ts";
import { putRecords, type TestRecord } from "./data.ts";
import { createStream, emulatorEnv, kinesisClient, startKinesis } from "./emulators.ts";

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
for (const dir of ["./demo-snapshots", "./demo-work", "./demo-local", "./demo-replica"]) {
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
  await incremental(store, shards);
  await continuous(store, shards[0]);
  await sidecar(store, shards[1]);
  await health();
  say();
  say("done: snapshots are in ./demo-snapshots; try");
  say("  deno task cli list --stream demo-events --store ./demo-snapshots");
  say(
    "  deno task cli status --stream demo-events --store ./demo-snapshots --max-age 15m" +
      "   # Kinesis is gone now: the store's view",
  );
  say("  deno task cli gc --stream demo-events --store ./demo-snapshots --keep 3 --dry-run");
  say("  deno task cli inspect demo-local/demo-events/*/*.sqlite");
  say(
    "  python3 -c \"import sqlite3; print(sqlite3.connect('file:demo-replica/demo-events/" +
      "shardId-000000000001.sqlite?mode=ro', uri=True).execute('SELECT count(*) FROM kv').fetchone())\"",
  );
  say('  README "From another language": lookup("user-13", dir="demo-replica/demo-events")');
  say("metrics and traces: set OTEL_DENO=true and OTEL_EXPORTER_OTLP_ENDPOINT (docs/operating.md)");
} finally {
  kinesis.destroy();
  await emulator.stop();
}

/** A second run publishes only what changed; the consumer refreshes with only that. */
async function incremental(store: SnapshotStore, shards: string[]): Promise<void> {
  say();
  say("producer, again: only the change is published (a delta on the latest point)");
  for (const shardId of shards) {
    const t0 = performance.now();
    const delta = await new ShardSnapshotter({
      kinesis,
      store,
      stream: STREAM,
      shardId,
      localPath: "./demo-work", // still holds the latest point: nothing is downloaded
      generator: kvGenerator(),
      // A demo-sized state: by default a full snapshot would be written at every point
      // (restoring a state this small whole costs less than any chain); allow a chain.
      chain: { maxRestoreRatio: 100 },
    }).snapshotShard();
    const full = (await listSnapshots(store, STREAM, { shardId })).find((s) => s.kind === "full")!;
    say(
      `  ${shardId}: ${delta.kind} ${delta.key.split("/").pop()} (${delta.size} bytes; the full ` +
        `snapshot is ${full.size} bytes) in ${Math.round(performance.now() - t0)} ms`,
    );
  }
  say("consumer: refreshing its copies with only the new deltas");
  for (const shardId of shards) {
    const finder = new ShardSnapshotFinder({
      store,
      stream: STREAM,
      shardId,
      localPath: "./demo-local",
    });
    const refreshed = await finder.downloadLatestSnapshot({ refresh: true });
    say(`  ${shardId}: now at ${refreshed!.sequenceNumber.slice(0, 12)}... (${refreshed!.kind})`);
  }
}

/** A continuous producer publishing every half second, and a replica following the store. */
async function continuous(store: SnapshotStore, shardId: string): Promise<void> {
  say();
  say(`continuous producer on ${shardId} (a point every 500 ms) and a replica following the store`);
  const stop = new AbortController();
  const producer = new ShardSnapshotter({
    kinesis,
    store,
    stream: STREAM,
    shardId,
    localPath: "./demo-work",
    generator: kvGenerator(),
    chain: { maxRestoreRatio: 100 },
    pollIntervalMs: 200,
  }).follow({ publishEveryMs: 500, stop: stop.signal });
  await using replica = new LiveReplica({
    follow: "store",
    store,
    stream: STREAM,
    shardId,
    localPath: "./demo-local/replica",
    pollIntervalMs: 250,
  });
  replica.addEventListener("applied", (e) => {
    say(`  replica applied a point: +${e.detail.records} records`);
  });
  await replica.start();
  const before = replica.sequenceNumber;
  await putRecords(kinesis, STREAM, events(300, 3_000));
  say("  (300 more events written)");
  const deadline = Date.now() + 20_000;
  while (replica.sequenceNumber === before && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 100));
  }
  stop.abort();
  const last = await producer;
  const users = await replica.query((db) =>
    (db.prepare("SELECT count(*) AS n FROM kv").get() as { n: number }).n
  );
  say(`  producer stopped after publishing ${last?.kind} ${last?.key.split("/").pop()}`);
  say(`  replica holds ${users} users at ${replica.sequenceNumber.slice(0, 12)}...`);
}

/** `streambolt replicate` as a sidecar for the whole stream: a plain SQLite file per shard, kept
 * current, and shards.json routing hash keys to them, for any language; here one file is read by
 * this process with its own read-only connection. */
async function sidecar(store: SnapshotStore, shardId: string): Promise<void> {
  say();
  say(`sidecar: streambolt replicate keeps ./demo-replica/${STREAM}/${shardId}.sqlite current`);
  const file = `./demo-replica/${STREAM}/${shardId}.sqlite`;
  const child = await spawnCli([
    "replicate",
    "--stream",
    STREAM,
    "--store",
    "./demo-snapshots",
    "--out",
    "./demo-replica",
    "--poll",
    "250ms",
    "--ready-file",
    "./demo-replica/ready",
    "--quiet",
  ], { cwd: ".", env: emulatorEnv(emulator) });
  const read = () => {
    const db = new DatabaseSync(file, { readOnly: true });
    try {
      return db.prepare(
        "SELECT records_applied AS records, sequence_number AS seq FROM streambolt_meta",
      ).get() as { records: number; seq: string };
    } finally {
      db.close();
    }
  };
  try {
    const deadline = Date.now() + 30_000;
    while (!(await Deno.stat("./demo-replica/ready").then(() => true, () => false))) {
      if (Date.now() > deadline) throw new Error("replicate did not become ready");
      await new Promise((r) => setTimeout(r, 100));
    }
    const before = read();
    say(`  ready: ${before.records} records applied, at ...${before.seq.slice(-8)} (read-only)`);
    await putRecords(kinesis, STREAM, events(200, 5_000));
    const point = await new ShardSnapshotter({
      kinesis,
      store,
      stream: STREAM,
      shardId,
      localPath: "./demo-work",
      generator: kvGenerator(),
      chain: { maxRestoreRatio: 100 },
    }).snapshotShard();
    say(`  producer published a ${point.kind} at ...${point.sequenceNumber.slice(-8)}`);
    while (read().seq !== point.sequenceNumber) {
      if (Date.now() > deadline) throw new Error("replicate did not apply the new point");
      await new Promise((r) => setTimeout(r, 100));
    }
    const after = read();
    say(
      `  the file now holds ${after.records} records applied, at ...${
        after.seq.slice(-8)
      } (applied in one transaction)`,
    );
    const routing = JSON.parse(await Deno.readTextFile(`./demo-replica/${STREAM}/shards.json`));
    say(
      `  shards.json routes hash keys: ${
        routing.shards.map((s: { file: string; startingHashKey: string }) =>
          `${s.file} from ${s.startingHashKey.slice(0, 6)}...`
        ).join(", ")
      }`,
    );
    const state = JSON.parse(await Deno.readTextFile(`./demo-replica/${STREAM}/status.json`));
    say(
      `  status.json: ${
        state.shards.map((s: { shardId: string; state: string }) => `${s.shardId} ${s.state}`)
          .join(", ")
      }`,
    );
  } finally {
    child.kill("SIGTERM");
    const status = await child.status;
    await child.stdout.cancel();
    await child.stderr.cancel();
    say(`  replicate stopped on SIGTERM with exit code ${status.code}`);
  }
}

/** `streambolt status`, the health check, while Kinesis answers: every shard's state, point,
 * age and how far it trails. */
async function health(): Promise<void> {
  say();
  say("health check: streambolt status --stream demo-events --store ./demo-snapshots");
  const result = await runCli(["status", "--stream", STREAM, "--store", "./demo-snapshots"], {
    cwd: ".",
    env: emulatorEnv(emulator),
  });
  for (const line of result.stdout.trimEnd().split("\n")) say(`  ${line}`);
  say(
    `  exit code ${result.code}${
      result.code === 0 ? ": every shard passes" : `\n${result.stderr}`
    }`,
  );
}
