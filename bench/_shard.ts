/**
 * Figures 2 (catch-up vs reading) and 3 (bootstrap vs replay) on one shard in kinesis-local,
 * figure 4 (transfer of a large snapshot) on fauxqs, and the 10M-record extrapolation built from
 * figures 1, 3, 4 and 5.
 *
 * @module
 */
import { DatabaseSync } from "node:sqlite";
import { join } from "node:path";
import {
  GetRecordsCommand,
  GetShardIteratorCommand,
  type KinesisClient,
} from "@aws-sdk/client-kinesis";
import { GetObjectCommand, type S3Client } from "@aws-sdk/client-s3";
import {
  BOOTSTRAP_SEQUENCE,
  kvGenerator,
  readShard,
  S3SnapshotStore,
  ShardSnapshotFinder,
  ShardSnapshotter,
} from "../mod.ts";
import { makeRecords, putRecords } from "../tests/support/data.ts";
import { createStream } from "../tests/support/emulators.ts";
import type { ApplyResult, SizeResult } from "./_apply.ts";
import { time } from "./_data.ts";
import { log, mb, type Recorder, round } from "./_results.ts";

const REPS = 3;
const SHARD_ID = "shardId-000000000000";
const BUCKET = "bench-bucket";

/** The clients figures 2-4 use. */
export interface ShardBench {
  /** This run's results. */
  bench: Recorder;
  /** Scratch directory. */
  temp: string;
  /** Kinesis (kinesis-local). */
  kinesis: KinesisClient;
  /** For loading records. */
  writer: KinesisClient;
  /** S3 (fauxqs), its bucket created. */
  s3: S3Client;
}

/** Loads `records` into one shard of a new stream "bench". */
export async function loadShard(b: ShardBench, records: number): Promise<void> {
  log(`figures 2-3: loading ${records} records into one shard (the emulator is slow)`);
  await createStream(b.kinesis, "bench", 1);
  const loadStart = performance.now();
  for (let i = 0; i < records; i += 5_000) {
    await putRecords(
      b.writer,
      "bench",
      makeRecords(Math.min(5_000, records - i), { keys: 10_000, seed: i + 1 }),
      4,
    );
  }
  log(`loaded in ${Math.round((performance.now() - loadStart) / 1000)} s`);
}

/** A plain GetRecords loop to the end: the floor for any reader of this shard. */
async function readOnly(kinesis: KinesisClient, records: number): Promise<void> {
  let iterator = (await kinesis.send(
    new GetShardIteratorCommand({
      StreamName: "bench",
      ShardId: SHARD_ID,
      ShardIteratorType: "TRIM_HORIZON",
    }),
  )).ShardIterator;
  let n = 0;
  while (iterator) {
    const out = await kinesis.send(
      new GetRecordsCommand({ ShardIterator: iterator, Limit: 10_000 }),
    );
    n += out.Records?.length ?? 0;
    if ((out.Records?.length ?? 0) < 10_000 && (out.MillisBehindLatest ?? 0) === 0) break;
    iterator = out.NextShardIterator;
  }
  if (n !== records) throw new Error(`read ${n} of ${records}`);
}

let storeCounter = 0;

/** A snapshot of the shard from scratch, into a new prefix `run-N`. */
async function snapshotFromScratch(b: ShardBench, prefetch: boolean): Promise<void> {
  const store = new S3SnapshotStore({
    client: b.s3,
    bucket: BUCKET,
    prefix: `run-${++storeCounter}`,
  });
  await new ShardSnapshotter({
    kinesis: b.kinesis,
    store,
    stream: "bench",
    shardId: SHARD_ID,
    localPath: join(b.temp, `catchup-${storeCounter}`),
    generator: kvGenerator(),
    prefetch,
  }).snapshotShard();
}

/**
 * Figure 2: snapshot from scratch vs read only; with `measure` false, one snapshot only (the
 * one figure 3 bootstraps from, in prefix `run-1`).
 */
export async function figureCatchUp(
  b: ShardBench,
  records: number,
  measure: boolean,
): Promise<void> {
  if (!measure) return await snapshotFromScratch(b, true);
  let readMs = Infinity;
  let catchUpMs = Infinity;
  let catchUpNoPrefetchMs = Infinity;
  for (let rep = 0; rep < REPS; rep++) {
    readMs = Math.min(readMs, await time(() => readOnly(b.kinesis, records)));
    catchUpMs = Math.min(catchUpMs, await time(() => snapshotFromScratch(b, true)));
    catchUpNoPrefetchMs = Math.min(
      catchUpNoPrefetchMs,
      await time(() => snapshotFromScratch(b, false)),
    );
  }
  b.bench.entry("catchUp", {
    records,
    readOnlyMs: round(readMs),
    snapshotMs: round(catchUpMs),
    ratio: round(catchUpMs / readMs, 3),
    snapshotWithoutPrefetchMs: round(catchUpNoPrefetchMs),
    ratioWithoutPrefetch: round(catchUpNoPrefetchMs / readMs, 3),
  });
  b.bench.row(
    "catchUp",
    `2. snapshot from scratch vs read only, ${records.toLocaleString("en")} records`,
    `${round(catchUpMs / 1000)} s vs ${round(readMs / 1000)} s (no prefetch: ${
      round(catchUpNoPrefetchMs / 1000)
    } s)`,
    `${round(catchUpMs / readMs, 3)}`,
    "<= 1.15",
  );
}

/** Replays the whole shard through the kv generator into a new database. */
async function replay(kinesis: KinesisClient, file: string): Promise<void> {
  const db = new DatabaseSync(file);
  const generator = kvGenerator();
  generator.onStart!(db);
  const pages = readShard(kinesis, {
    stream: "bench",
    shardId: SHARD_ID,
    after: BOOTSTRAP_SEQUENCE,
    doneLagMs: 0,
  });
  for await (const page of pages) {
    db.exec("BEGIN");
    generator.onRecords(db, page);
    db.exec("COMMIT");
  }
  db.close();
}

/** Figure 3: bootstrap from the snapshot in `run-1` vs replay of the shard. */
export async function figureBootstrap(b: ShardBench, records: number): Promise<number> {
  log("figure 3: bootstrap from the snapshot vs replay");
  const store = new S3SnapshotStore({ client: b.s3, bucket: BUCKET, prefix: "run-1" });
  let bootMs = Infinity;
  let replayMs = Infinity;
  let snapshotBytes = 0;
  for (let rep = 0; rep < REPS; rep++) {
    const dir = await Deno.makeTempDir({ dir: b.temp });
    bootMs = Math.min(
      bootMs,
      await time(async () => {
        const finder = new ShardSnapshotFinder({
          store,
          stream: "bench",
          shardId: SHARD_ID,
          localPath: dir,
        });
        const latest = (await finder.findLatestSnapshot())!;
        snapshotBytes = latest.size ?? 0;
        await finder.downloadSnapshot(latest);
        const db = new DatabaseSync(latest.localFile, { readOnly: true });
        db.prepare("SELECT count(*) FROM kv").get();
        db.close();
      }),
    );
    replayMs = Math.min(replayMs, await time(() => replay(b.kinesis, join(dir, "replay.sqlite"))));
  }
  b.bench.entry("bootstrap", {
    records,
    bootstrapMs: round(bootMs),
    replayMs: round(replayMs),
    ratio: round(replayMs / bootMs, 1),
    snapshotBytes,
  });
  b.bench.row(
    "bootstrap",
    `3. replay vs bootstrap, ${records.toLocaleString("en")} records`,
    `${round(replayMs / 1000)} s vs ${round(bootMs / 1000, 3)} s`,
    `${round(replayMs / bootMs, 1)}x`,
    ">= 20x",
  );
  return bootMs;
}

/** A file of `megabytes` random MiB. */
async function randomFile(file: string, megabytes: number): Promise<void> {
  const handle = await Deno.open(file, { write: true, create: true });
  const chunk = new Uint8Array(1024 * 1024);
  for (let i = 0; i < megabytes; i++) {
    for (let j = 0; j < chunk.length; j += 65536) {
      crypto.getRandomValues(chunk.subarray(j, j + 65536));
    }
    await handle.write(chunk);
  }
  handle.close();
}

/** One GET of a whole object to a file. */
async function singleGet(s3: S3Client, key: string, target: string): Promise<void> {
  const out = await s3.send(new GetObjectCommand({ Bucket: BUCKET, Key: key }));
  const file = await Deno.open(target, { write: true, create: true, truncate: true });
  for await (const chunk of out.Body as unknown as AsyncIterable<Uint8Array>) {
    let written = 0;
    while (written < chunk.length) written += await file.write(chunk.subarray(written));
  }
  file.close();
}

/**
 * Figure 4: transfer of a large snapshot, parallel multipart/ranged vs one part at a time and a
 * single GET. fauxqs refuses request bodies over 11 MiB, so a single 256 MB PutObject cannot be
 * sent to it: uploads compare 4 parts at a time with one part at a time (same 8 MiB parts).
 *
 * @returns The parallel download rate, MB/s.
 */
export async function figureTransfer(b: ShardBench, megabytes: number): Promise<number> {
  log(`figure 4: transfer of ${megabytes} MB`);
  const bigFile = join(b.temp, "big.bin");
  await randomFile(bigFile, megabytes);
  const parallel = new S3SnapshotStore({
    client: b.s3,
    bucket: BUCKET,
    prefix: "transfer",
    concurrency: 4,
  });
  const serial = new S3SnapshotStore({
    client: b.s3,
    bucket: BUCKET,
    prefix: "serial",
    concurrency: 1,
  });
  const best = { up: Infinity, upSerial: Infinity, down: Infinity, downSingle: Infinity };
  const put = { metadata: {}, ifNoneMatch: false };
  for (let rep = 0; rep < REPS; rep++) {
    const key = `big-${rep}`;
    best.up = Math.min(best.up, await time(() => parallel.put(key, bigFile, put)));
    best.upSerial = Math.min(best.upSerial, await time(() => serial.put(key, bigFile, put)));
    best.down = Math.min(
      best.down,
      await time(() => parallel.download(key, join(b.temp, "down-parallel"))),
    );
    best.downSingle = Math.min(
      best.downSingle,
      await time(() => singleGet(b.s3, `transfer/${key}`, join(b.temp, "down-single"))),
    );
  }
  const rate = (ms: number) => round(mb(megabytes * 1024 * 1024) / (ms / 1000), 1);
  b.bench.entry("transfer", {
    megabytes,
    uploadParallelMBps: rate(best.up),
    uploadOnePartAtATimeMBps: rate(best.upSerial),
    downloadParallelMBps: rate(best.down),
    downloadSingleMBps: rate(best.downSingle),
  });
  b.bench.row(
    "transfer",
    `4. ${megabytes} MB upload, 4 parts at a time vs 1 (8 MiB parts)`,
    `${rate(best.up)} vs ${rate(best.upSerial)} MB/s`,
    `${round(best.upSerial / best.up, 2)}x`,
    "faster",
  );
  b.bench.row(
    "transfer",
    `4. ${megabytes} MB download, parallel ranged vs single GET`,
    `${rate(best.down)} vs ${rate(best.downSingle)} MB/s`,
    `${round(best.downSingle / best.down, 2)}x`,
    "faster",
  );
  await Deno.remove(bigFile);
  return rate(best.down);
}

/**
 * The 10M-record extrapolation of figure 3, with its arithmetic, from figures 1, 4 and 5
 * measured in the same run.
 */
export function extrapolation(
  bench: Recorder,
  inputs: { apply: ApplyResult; size: SizeResult; keys: number; records: number; downMBps: number },
): void {
  const { apply, size, keys, records, downMBps } = inputs;
  const target = 10_000_000;
  const recordBytes = apply.avgBytes + 10; // data plus partition key
  const replay10M = (target * recordBytes) / (2 * 1024 * 1024); // s, read-limited floor
  const applyPerRecord = (apply.applyMs / 1000) / records; // s per record, figure 1
  const storedPerKey = size.zstd3Bytes / keys; // bytes of snapshot per distinct key
  const download10M = (storedPerKey * target) / (1024 * 1024) / downMBps; // s
  // Verify + decode of the figure-1 snapshot, scaled to 10M keys.
  const decode10M = ((size.verifyMs + size.decodeMs) / 1000) * (target / keys);
  const boot10M = download10M + decode10M;
  const replaySeconds = Math.max(replay10M, applyPerRecord * target);
  bench.entry("extrapolation", {
    records: target,
    assumptions: {
      kinesisReadBytesPerSecond: 2 * 1024 * 1024,
      recordBytes: round(recordBytes, 1),
      everyRecordADistinctKey: true,
      snapshotBytesPerKey: round(storedPerKey, 1),
      downloadMBps: downMBps,
      applySecondsPerRecord: applyPerRecord,
    },
    replaySeconds: round(replaySeconds, 0),
    bootstrapSeconds: round(boot10M, 1),
    ratio: round(replaySeconds / boot10M, 1),
    arithmetic: [
      `replay >= max(10M x ${round(recordBytes, 1)} B / 2 MiB/s = ${
        Math.round(replay10M)
      } s, 10M x ${round(applyPerRecord * 1e6, 2)} us apply = ${
        Math.round(applyPerRecord * target)
      } s)`,
      `bootstrap ~ 10M keys x ${round(storedPerKey, 1)} B / ${downMBps} MB/s = ${
        round(download10M, 1)
      } s download + (${round(size.verifyMs)} + ${round(size.decodeMs)} ms verify + decode per ${
        keys / 1000
      }k keys) x ${target / keys} = ${round(decode10M, 1)} s`,
    ],
  });
  bench.row(
    "extrapolation",
    "3. extrapolated to 10M records (worst case: 10M keys)",
    `${Math.round(replaySeconds)} s vs ${round(boot10M, 1)} s`,
    `${round(replaySeconds / boot10M, 1)}x`,
    "-",
  );
}
