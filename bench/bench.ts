/**
 * `deno task bench`: streambolt's speed and memory figures, each measured side by side in one
 * run against local emulators (kinesis-local, fauxqs) that the harness starts and stops.
 * Prints a table and writes bench/results.json. Absolute times depend on the machine; the
 * ratios are the claim.
 *
 * Sizes can be lowered for a quick look: BENCH_APPLY_RECORDS (1,000,000), BENCH_SHARD_RECORDS
 * (50,000), BENCH_TRANSFER_MB (256).
 *
 * @module
 */
import { DatabaseSync } from "node:sqlite";
import { join } from "node:path";
import { GetRecordsCommand, GetShardIteratorCommand } from "@aws-sdk/client-kinesis";
import { GetObjectCommand } from "@aws-sdk/client-s3";
import {
  BOOTSTRAP_SEQUENCE,
  FileSnapshotStore,
  KV_TABLE_SQL,
  kvGenerator,
  readShard,
  S3SnapshotStore,
  type ShardPage,
  ShardSnapshotFinder,
  ShardSnapshotter,
} from "../mod.ts";
import { decodeFile, encodeFile, sha256File } from "../src/_codec.ts";
import { makeRecords, putRecords } from "../tests/support/data.ts";
import {
  createBucket,
  createStream,
  DENO,
  kinesisClient,
  kinesisWriter,
  s3Client,
  startKinesis,
  startS3,
} from "../tests/support/emulators.ts";
import { materialize, time } from "./_data.ts";

const APPLY_RECORDS = Number(Deno.env.get("BENCH_APPLY_RECORDS") ?? 1_000_000);
const SHARD_RECORDS = Number(Deno.env.get("BENCH_SHARD_RECORDS") ?? 50_000);
const TRANSFER_MB = Number(Deno.env.get("BENCH_TRANSFER_MB") ?? 256);
const KEYS = 100_000;
const REPS = 3;

const log = (line: string) => console.error(`bench: ${line}`);
const mb = (bytes: number) => bytes / (1024 * 1024);
const round = (n: number, digits = 2) => Number(n.toFixed(digits));

const UPSERT_SQL =
  `INSERT INTO kv (key, value, sequence_number, arrived_at, explicit_hash_key, shard_id)
  VALUES (?, ?, ?, ?, ?, ?)
  ON CONFLICT (key) DO UPDATE SET value = excluded.value,
    sequence_number = excluded.sequence_number, arrived_at = excluded.arrived_at,
    explicit_hash_key = excluded.explicit_hash_key, shard_id = excluded.shard_id`;

/** The same SQL by hand, in 10k-row transactions: the floor streambolt's apply path is held to. */
function handLoop(file: string, pages: ShardPage[], pragmas: boolean): void {
  const db = new DatabaseSync(file);
  if (pragmas) db.exec("PRAGMA journal_mode = MEMORY; PRAGMA synchronous = OFF");
  db.exec(KV_TABLE_SQL);
  const upsert = db.prepare(UPSERT_SQL);
  for (const page of pages) {
    db.exec("BEGIN");
    for (const r of page.records) {
      upsert.run(
        r.partitionKey,
        r.data,
        r.sequenceNumber,
        r.approximateArrivalTimestamp?.toISOString() ?? null,
        null,
        page.shardId,
      );
    }
    db.exec("COMMIT");
  }
  db.close();
}

const temp = await Deno.makeTempDir({ prefix: "streambolt-bench-" });
const results: Record<string, unknown> = {
  machine: {
    cores: navigator.hardwareConcurrency,
    os: Deno.build.os,
    arch: Deno.build.arch,
    deno: Deno.version.deno,
    date: new Date().toISOString(),
  },
};
const rows: Array<[string, string, string, string]> = [];
const row = (figure: string, measured: string, ratio: string, target: string) =>
  rows.push([figure, measured, ratio, target]);

const [kinesisEmu, s3Emu] = await Promise.all([startKinesis(), startS3()]);
const kinesis = kinesisClient(kinesisEmu.endpoint);
const writer = kinesisWriter(kinesisEmu.endpoint);
const s3 = s3Client(s3Emu.endpoint);
try {
  // 1. Apply overhead, and 5. size (of the snapshot it produces).
  log(`figure 1: generating ${APPLY_RECORDS} events over ${KEYS} keys`);
  const pages = await materialize(APPLY_RECORDS, KEYS);
  const avgBytes = pages[0].records.reduce((n, r) => n + r.data.length, 0) /
    pages[0].records.length;
  let applyMs = Infinity;
  let handMs = Infinity;
  let handDefaultMs = Infinity;
  let lastSnapshotFile = "";
  for (let rep = 0; rep < REPS; rep++) {
    const dir = await Deno.makeTempDir({ dir: temp });
    let caughtUp = 0;
    const t0 = performance.now();
    const snapshot = await new ShardSnapshotter({
      kinesis,
      store: new FileSnapshotStore({ root: join(dir, "store") }),
      stream: "bench",
      shardId: "shardId-000000000000",
      localPath: join(dir, "work"),
      generator: kvGenerator(),
      source: async function* () {
        yield* pages;
      },
      onProgress: (p) => {
        if (!caughtUp && p.phase !== "catch-up" && p.phase !== "download") {
          caughtUp = performance.now();
        }
      },
    }).snapshotShard();
    applyMs = Math.min(applyMs, caughtUp - t0);
    lastSnapshotFile = snapshot.localFile;
    handMs = Math.min(
      handMs,
      await time(() => handLoop(join(dir, "hand.sqlite"), pages, true)),
    );
    if (rep === 0) {
      handDefaultMs = await time(() => handLoop(join(dir, "hand-default.sqlite"), pages, false));
    }
  }
  results.applyOverhead = {
    records: APPLY_RECORDS,
    keys: KEYS,
    avgRecordBytes: round(avgBytes, 1),
    snapshotterApplyMs: round(applyMs),
    handLoopMs: round(handMs),
    ratio: round(applyMs / handMs, 3),
    handLoopDefaultPragmasMs: round(handDefaultMs),
    recordsPerSecond: Math.round(APPLY_RECORDS / (applyMs / 1000)),
  };
  row(
    `1. apply ${APPLY_RECORDS.toLocaleString("en")} upserts`,
    `streambolt ${round(applyMs / 1000)} s vs hand loop ${round(handMs / 1000)} s`,
    `${round(applyMs / handMs, 3)}`,
    "<= 1.10",
  );

  log("figure 5: compression of the figure-1 snapshot");
  const rawSize = (await Deno.stat(lastSnapshotFile)).size;
  const sizes: Record<string, { bytes: number; ms: number }> = {};
  for (const level of [1, 3, 9]) {
    const out = join(temp, `size-${level}.zst`);
    const ms = await time(() => encodeFile(lastSnapshotFile, out, "zstd", level));
    sizes[`zstd-${level}`] = { bytes: (await Deno.stat(out)).size, ms: round(ms) };
  }
  // What a consumer pays per stored byte: verify (SHA-256) and decode, measured here.
  const stored3 = join(temp, "size-3.zst");
  const verifyMs = await time(() => sha256File(stored3));
  const decodeMs = await time(() => decodeFile(stored3, join(temp, "decoded.sqlite"), "zstd"));
  results.size = {
    rawBytes: rawSize,
    levels: sizes,
    ratio: round(sizes["zstd-3"].bytes / rawSize, 3),
    addedMs: sizes["zstd-3"].ms,
    verifyMs: round(verifyMs),
    decodeMs: round(decodeMs),
  };
  row(
    "5. compressed / raw snapshot (zstd 3)",
    `${round(mb(rawSize), 1)} MB -> ${round(mb(sizes["zstd-3"].bytes), 1)} MB, +${
      Math.round(sizes["zstd-3"].ms)
    } ms`,
    `${round(sizes["zstd-3"].bytes / rawSize, 3)}`,
    "<= 0.40",
  );
  pages.length = 0;

  // 6. Memory: peak RSS of a snapshot run, in its own process.
  // The CLI runs with --v8-flags=--optimize-for-size: V8 then collects the pages of records
  // (which survive young-generation collections while a batch is applied) promptly.
  const memoryRun = async (count: number, v8Flags: string[]) => {
    log(`figure 6: peak RSS applying ${count} records ${v8Flags.join(" ")}`);
    const dir = await Deno.makeTempDir({ dir: temp });
    const t0 = performance.now();
    const out = await new Deno.Command(DENO, {
      args: [
        "run",
        "--quiet",
        ...v8Flags,
        `--allow-read=${dir}`,
        `--allow-write=${dir}`,
        "--allow-env",
        "--allow-sys=osRelease",
        new URL("./_memory_run.ts", import.meta.url).pathname,
        String(count),
        dir,
      ],
      stdout: "piped",
      stderr: "inherit",
    }).output();
    if (!out.success) throw new Error("memory run failed");
    const result = JSON.parse(new TextDecoder().decode(out.stdout));
    return { ...result, ms: round(performance.now() - t0) };
  };
  const memory = [];
  const memoryDefault = [];
  for (const count of [250_000, 1_000_000]) {
    memory.push(await memoryRun(count, ["--v8-flags=--optimize-for-size"]));
    memoryDefault.push(await memoryRun(count, []));
  }
  results.memory = { cliFlags: memory, defaultV8: memoryDefault };
  row(
    "6. peak RSS, 250k vs 1M records (CLI's V8 flags)",
    memory.map((m) => `${Math.round(mb(m.peakRssBytes))} MB`).join(" vs ") +
      ` (V8 defaults: ${
        memoryDefault.map((m) => `${Math.round(mb(m.peakRssBytes))}`).join(" vs ")
      } MB)`,
    `${round(memory[1].peakRssBytes / memory[0].peakRssBytes, 2)}`,
    "< 160 MB both",
  );

  // 2. Catch-up vs reading, and 3. bootstrap vs replay, on one shard in the emulator.
  log(`figures 2-3: loading ${SHARD_RECORDS} records into one shard (the emulator is slow)`);
  await createStream(kinesis, "bench", 1);
  const bucket = "bench-bucket";
  await createBucket(s3, bucket);
  const loadStart = performance.now();
  for (let i = 0; i < SHARD_RECORDS; i += 5_000) {
    await putRecords(
      writer,
      "bench",
      makeRecords(Math.min(5_000, SHARD_RECORDS - i), { keys: 10_000, seed: i + 1 }),
      4,
    );
  }
  log(`loaded in ${Math.round((performance.now() - loadStart) / 1000)} s`);
  const shardId = "shardId-000000000000";
  const readOnly = async () => {
    // A plain GetRecords loop to the end: the floor for any reader of this shard.
    let iterator = (await kinesis.send(
      new GetShardIteratorCommand({
        StreamName: "bench",
        ShardId: shardId,
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
    if (n !== SHARD_RECORDS) throw new Error(`read ${n} of ${SHARD_RECORDS}`);
  };
  let storeCounter = 0;
  const snapshotFromScratch = (prefetch: boolean) => async () => {
    const store = new S3SnapshotStore({ client: s3, bucket, prefix: `run-${++storeCounter}` });
    await new ShardSnapshotter({
      kinesis,
      store,
      stream: "bench",
      shardId,
      localPath: join(temp, `catchup-${storeCounter}`),
      generator: kvGenerator(),
      prefetch,
    }).snapshotShard();
  };
  let readMs = Infinity;
  let catchUpMs = Infinity;
  let catchUpNoPrefetchMs = Infinity;
  for (let rep = 0; rep < REPS; rep++) {
    readMs = Math.min(readMs, await time(readOnly));
    catchUpMs = Math.min(catchUpMs, await time(snapshotFromScratch(true)));
    catchUpNoPrefetchMs = Math.min(catchUpNoPrefetchMs, await time(snapshotFromScratch(false)));
  }
  results.catchUp = {
    records: SHARD_RECORDS,
    readOnlyMs: round(readMs),
    snapshotMs: round(catchUpMs),
    ratio: round(catchUpMs / readMs, 3),
    snapshotWithoutPrefetchMs: round(catchUpNoPrefetchMs),
    ratioWithoutPrefetch: round(catchUpNoPrefetchMs / readMs, 3),
  };
  row(
    `2. snapshot from scratch vs read only, ${SHARD_RECORDS.toLocaleString("en")} records`,
    `${round(catchUpMs / 1000)} s vs ${round(readMs / 1000)} s (no prefetch: ${
      round(catchUpNoPrefetchMs / 1000)
    } s)`,
    `${round(catchUpMs / readMs, 3)}`,
    "<= 1.15",
  );

  log("figure 3: bootstrap from the snapshot vs replay");
  const store = new S3SnapshotStore({ client: s3, bucket, prefix: "run-1" });
  let bootMs = Infinity;
  let replayMs = Infinity;
  let snapshotBytes = 0;
  for (let rep = 0; rep < REPS; rep++) {
    const dir = await Deno.makeTempDir({ dir: temp });
    bootMs = Math.min(
      bootMs,
      await time(async () => {
        const finder = new ShardSnapshotFinder({ store, stream: "bench", shardId, localPath: dir });
        const latest = (await finder.findLatestSnapshot())!;
        snapshotBytes = latest.size ?? 0;
        await finder.downloadSnapshot(latest);
        const db = new DatabaseSync(latest.localFile, { readOnly: true });
        db.prepare("SELECT count(*) FROM kv").get();
        db.close();
      }),
    );
    replayMs = Math.min(
      replayMs,
      await time(async () => {
        const db = new DatabaseSync(join(dir, "replay.sqlite"));
        const generator = kvGenerator();
        generator.onStart!(db);
        for await (
          const page of readShard(kinesis, {
            stream: "bench",
            shardId,
            after: BOOTSTRAP_SEQUENCE,
            doneLagMs: 0,
          })
        ) {
          db.exec("BEGIN");
          generator.onRecords(db, page);
          db.exec("COMMIT");
        }
        db.close();
      }),
    );
  }
  // Extrapolation to 10,000,000 records on real Kinesis (2 MB/s read per shard).
  const target = 10_000_000;
  const recordBytes = avgBytes + 10; // data plus partition key
  const replay10M = (target * recordBytes) / (2 * 1024 * 1024); // s, read-limited floor
  const applyPerRecord = (applyMs / 1000) / APPLY_RECORDS; // s per record, figure 1
  const storedPerKey = sizes["zstd-3"].bytes / KEYS; // bytes of snapshot per distinct key
  results.bootstrap = {
    records: SHARD_RECORDS,
    bootstrapMs: round(bootMs),
    replayMs: round(replayMs),
    ratio: round(replayMs / bootMs, 1),
    snapshotBytes,
  };
  row(
    `3. replay vs bootstrap, ${SHARD_RECORDS.toLocaleString("en")} records`,
    `${round(replayMs / 1000)} s vs ${round(bootMs / 1000, 3)} s`,
    `${round(replayMs / bootMs, 1)}x`,
    ">= 20x",
  );

  // 4. Transfer of a large snapshot: parallel multipart/ranged vs single PUT/GET.
  log(`figure 4: transfer of ${TRANSFER_MB} MB`);
  const bigFile = join(temp, "big.bin");
  {
    const handle = await Deno.open(bigFile, { write: true, create: true });
    const chunk = new Uint8Array(1024 * 1024);
    for (let i = 0; i < TRANSFER_MB; i++) {
      for (let j = 0; j < chunk.length; j += 65536) {
        crypto.getRandomValues(chunk.subarray(j, j + 65536));
      }
      await handle.write(chunk);
    }
    handle.close();
  }
  const bytes = TRANSFER_MB * 1024 * 1024;
  // fauxqs refuses request bodies over 11 MiB, so a single 256 MB PutObject cannot be sent to
  // it: uploads compare 4 parts at a time with one part at a time (same 8 MiB parts).
  const parallelStore = new S3SnapshotStore({
    client: s3,
    bucket,
    prefix: "transfer",
    concurrency: 4,
  });
  const serialStore = new S3SnapshotStore({ client: s3, bucket, prefix: "serial", concurrency: 1 });
  let parallelUpMs = Infinity;
  let singleUpMs = Infinity;
  let parallelDownMs = Infinity;
  let singleDownMs = Infinity;
  for (let rep = 0; rep < REPS; rep++) {
    const key = `big-${rep}`;
    parallelUpMs = Math.min(
      parallelUpMs,
      await time(() => parallelStore.put(key, bigFile, { metadata: {}, ifNoneMatch: false })),
    );
    singleUpMs = Math.min(
      singleUpMs,
      await time(() => serialStore.put(key, bigFile, { metadata: {}, ifNoneMatch: false })),
    );
    parallelDownMs = Math.min(
      parallelDownMs,
      await time(() => parallelStore.download(key, join(temp, "down-parallel"))),
    );
    singleDownMs = Math.min(
      singleDownMs,
      await time(async () => {
        const out = await s3.send(
          new GetObjectCommand({ Bucket: bucket, Key: `transfer/${key}` }),
        );
        const file = await Deno.open(join(temp, "down-single"), {
          write: true,
          create: true,
          truncate: true,
        });
        for await (const chunk of out.Body as unknown as AsyncIterable<Uint8Array>) {
          let written = 0;
          while (written < chunk.length) written += await file.write(chunk.subarray(written));
        }
        file.close();
      }),
    );
  }
  const rate = (ms: number) => round(mb(bytes) / (ms / 1000), 1);
  results.transfer = {
    megabytes: TRANSFER_MB,
    uploadParallelMBps: rate(parallelUpMs),
    uploadOnePartAtATimeMBps: rate(singleUpMs),
    downloadParallelMBps: rate(parallelDownMs),
    downloadSingleMBps: rate(singleDownMs),
  };
  row(
    `4. ${TRANSFER_MB} MB upload, 4 parts at a time vs 1 (8 MiB parts)`,
    `${rate(parallelUpMs)} vs ${rate(singleUpMs)} MB/s`,
    `${round(singleUpMs / parallelUpMs, 2)}x`,
    "faster",
  );
  row(
    `4. ${TRANSFER_MB} MB download, parallel ranged vs single GET`,
    `${rate(parallelDownMs)} vs ${rate(singleDownMs)} MB/s`,
    `${round(singleDownMs / parallelDownMs, 2)}x`,
    "faster",
  );

  // The 10M extrapolation, with its arithmetic.
  const download10M = (storedPerKey * target) / (1024 * 1024) / rate(parallelDownMs); // s
  // Verify + decode of the figure-1 snapshot (100k keys), scaled to 10M keys.
  const decode10M = ((verifyMs + decodeMs) / 1000) * (target / KEYS);
  const boot10M = download10M + decode10M;
  results.extrapolation = {
    records: target,
    assumptions: {
      kinesisReadBytesPerSecond: 2 * 1024 * 1024,
      recordBytes: round(recordBytes, 1),
      everyRecordADistinctKey: true,
      snapshotBytesPerKey: round(storedPerKey, 1),
      downloadMBps: rate(parallelDownMs),
      applySecondsPerRecord: applyPerRecord,
    },
    replaySeconds: round(Math.max(replay10M, applyPerRecord * target), 0),
    bootstrapSeconds: round(boot10M, 1),
    ratio: round(Math.max(replay10M, applyPerRecord * target) / boot10M, 1),
    arithmetic: [
      `replay >= max(10M x ${round(recordBytes, 1)} B / 2 MiB/s = ${
        Math.round(replay10M)
      } s, 10M x ${round(applyPerRecord * 1e6, 2)} us apply = ${
        Math.round(applyPerRecord * target)
      } s)`,
      `bootstrap ~ 10M keys x ${round(storedPerKey, 1)} B / ${rate(parallelDownMs)} MB/s = ${
        round(download10M, 1)
      } s download + (${round(verifyMs)} + ${
        round(decodeMs)
      } ms verify + decode per 100k keys) x 100 = ${round(decode10M, 1)} s`,
    ],
  };
  row(
    "3. extrapolated to 10M records (worst case: 10M keys)",
    `${Math.round(Math.max(replay10M, applyPerRecord * target))} s vs ${round(boot10M, 1)} s`,
    `${round(Math.max(replay10M, applyPerRecord * target) / boot10M, 1)}x`,
    "-",
  );
} finally {
  kinesis.destroy();
  writer.destroy();
  s3.destroy();
  await Promise.all([kinesisEmu.stop(), s3Emu.stop()]);
  await Deno.remove(temp, { recursive: true });
}

const widths = [0, 1, 2, 3].map((i) =>
  Math.max(...[["figure", "measured", "ratio", "target"], ...rows].map((r) => r[i].length))
);
const line = (r: string[]) => `| ${r.map((c, i) => c.padEnd(widths[i])).join(" | ")} |`;
console.log(line(["figure", "measured", "ratio", "target"]));
console.log(line(widths.map((w) => "-".repeat(w))));
for (const r of rows) console.log(line(r));
results.table = rows;
await Deno.writeTextFile(
  new URL("./results.json", import.meta.url),
  JSON.stringify(results, null, 2) + "\n",
);
