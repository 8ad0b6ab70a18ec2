/**
 * `deno task bench`: streambolt's speed, size and memory figures, each a ratio measured side by
 * side in one run against local emulators (kinesis-local, fauxqs) that the harness starts and
 * stops. Prints a table and writes bench/results.json. Absolute times depend on the machine;
 * the ratios are the claim.
 *
 * Figures: 1 apply overhead, 2 catch-up vs reading, 3 bootstrap vs replay (and the 10M
 * extrapolation, when 1, 3, 4 and 5 run together), 4 transfer, 5 compression, 6 peak RSS of a
 * run, 7 delta size, 8 incremental run vs applying its changes alone, 9 chain bootstrap vs one
 * full and refresh vs applying its patchset alone (7-9 are
 * measured together), 10 continuous producer: peak RSS and S3 requests, 11 fixed cost of a CLI
 * run with nothing to do, 12 CPU per record against its floor, 13 against the Go original's
 * figures (11-13: bench/_lean.ts, one shard of 20,000 records in kinesis-local), 14
 * `replicate` in steady state: CPU and RSS per followed shard, lag after a publish.
 *
 * `deno task bench --only 11,12,13` (or `BENCH_FIGURES=11,12,13`) runs only those (default:
 * all; 2-3 load 50,000 records into kinesis-local, ~13 min). bench/results.json keeps the last values of the figures not run,
 * each with the date it was measured.
 *
 * Sizes can be lowered for a quick look: BENCH_APPLY_RECORDS (1,000,000), BENCH_SHARD_RECORDS
 * (50,000), BENCH_TRANSFER_MB (256), BENCH_DELTA_KEYS (1,000,000), BENCH_FOLLOW_KEYS (100,000),
 * BENCH_FOLLOW_RECORDS (records per publish interval, 2,000), BENCH_FOLLOW_INTERVAL_MS (200),
 * BENCH_FOLLOW_INTERVALS (60), BENCH_REQUEST_PUBLISHES (200), BENCH_LEAN_RECORDS (20,000),
 * BENCH_LEAN_RUNS (runs of each whole-process measurement of 11-13, 5),
 * BENCH_LEAN_FOLLOW_SECONDS (how long figure 12's follower runs, 30; 0 skips it), BENCH_REPLICATE_SHARDS (8),
 * BENCH_REPLICATE_WINDOW_MS (idle window measured, 30,000).
 *
 * @module
 */
import type { KinesisClient } from "@aws-sdk/client-kinesis";
import type { S3Client } from "@aws-sdk/client-s3";
import {
  createBucket,
  type Emulator,
  kinesisClient,
  kinesisWriter,
  s3Client,
  startKinesis,
  startS3,
} from "../tests/support/emulators.ts";
import {
  type ApplyResult,
  figureApply,
  figureMemory,
  figureSize,
  figureTelemetryCost,
  type SizeResult,
} from "./_apply.ts";
import { figuresDeltas } from "./_deltas.ts";
import { figureFollowMemory, figureRequests } from "./_follow.ts";
import { figureReplicate } from "./_replicate.ts";
import { RequestCounter } from "./_requests.ts";
import { figuresLean } from "./_lean.ts";
import {
  formatTable,
  mergeResults,
  onlyArg,
  Recorder,
  type Results,
  selectedFigures,
} from "./_results.ts";
import {
  extrapolation,
  figureBootstrap,
  figureCatchUp,
  figureTransfer,
  loadShard,
} from "./_shard.ts";

const size = (name: string, fallback: number) => Number(Deno.env.get(name) ?? fallback);
const APPLY_RECORDS = size("BENCH_APPLY_RECORDS", 1_000_000);
const SHARD_RECORDS = size("BENCH_SHARD_RECORDS", 50_000);
const TRANSFER_MB = size("BENCH_TRANSFER_MB", 256);
const DELTA_KEYS = size("BENCH_DELTA_KEYS", 1_000_000);
const FOLLOW_KEYS = size("BENCH_FOLLOW_KEYS", 100_000);
const FOLLOW_RECORDS = size("BENCH_FOLLOW_RECORDS", 2_000);
const FOLLOW_INTERVAL_MS = size("BENCH_FOLLOW_INTERVAL_MS", 200);
const FOLLOW_INTERVALS = size("BENCH_FOLLOW_INTERVALS", 60);
const REQUEST_PUBLISHES = size("BENCH_REQUEST_PUBLISHES", 200);
const REPLICATE_SHARDS = size("BENCH_REPLICATE_SHARDS", 8);
const REPLICATE_WINDOW_MS = size("BENCH_REPLICATE_WINDOW_MS", 30_000);
const LEAN_RECORDS = size("BENCH_LEAN_RECORDS", 20_000);
const LEAN_RUNS = size("BENCH_LEAN_RUNS", 5);
const LEAN_FOLLOW_SECONDS = size("BENCH_LEAN_FOLLOW_SECONDS", 30);
const KEYS = 100_000;
const BUCKET = "bench-bucket";

const figures = selectedFigures(onlyArg(Deno.args) ?? Deno.env.get("BENCH_FIGURES"));
const want = (...numbers: number[]) => numbers.some((n) => figures.has(n));
const bench = new Recorder();
const temp = await Deno.makeTempDir({ prefix: "streambolt-bench-" });

interface Emulators {
  kinesisEmu?: Emulator;
  s3Emu?: Emulator;
  kinesis?: KinesisClient;
  writer?: KinesisClient;
  s3?: S3Client;
}

/** Starts only the emulators the selected figures need. */
async function start(): Promise<Emulators> {
  const e: Emulators = {};
  const [kinesisEmu, s3Emu] = await Promise.all([
    want(2, 3, 11, 12, 13) ? startKinesis() : undefined,
    want(2, 3, 4, 7, 8, 9, 10, 11, 12, 13) ? startS3() : undefined,
  ]);
  if (kinesisEmu) {
    e.kinesisEmu = kinesisEmu;
    e.kinesis = kinesisClient(kinesisEmu.endpoint);
    e.writer = kinesisWriter(kinesisEmu.endpoint);
  }
  if (s3Emu) {
    e.s3Emu = s3Emu;
    e.s3 = s3Client(s3Emu.endpoint);
    await createBucket(e.s3, BUCKET);
  }
  return e;
}

async function stop(e: Emulators): Promise<void> {
  e.kinesis?.destroy();
  e.writer?.destroy();
  e.s3?.destroy();
  await Promise.all([e.kinesisEmu?.stop(), e.s3Emu?.stop()]);
}

/** Figures 1, 5, 6, 14: in-process and child-process runs on the file store. */
async function localFigures(): Promise<[ApplyResult?, SizeResult?]> {
  let apply: ApplyResult | undefined;
  let sizes: SizeResult | undefined;
  if (want(1, 5)) {
    apply = await figureApply(bench, temp, {
      records: APPLY_RECORDS,
      keys: KEYS,
      measure: want(1),
    });
  }
  if (want(1)) await figureTelemetryCost(bench, temp, { records: APPLY_RECORDS, keys: KEYS });
  if (want(5)) sizes = await figureSize(bench, temp, apply!.snapshotFile);
  if (want(6)) await figureMemory(bench, temp);
  if (want(14)) {
    await figureReplicate(bench, temp, {
      many: REPLICATE_SHARDS,
      keys: 10_000,
      windowMs: REPLICATE_WINDOW_MS,
      publishes: 7,
    });
  }
  return [want(1) ? apply : undefined, sizes];
}

/** Figures 2, 3, 4 and the extrapolation. */
async function emulatorFigures(e: Emulators, apply?: ApplyResult, sizes?: SizeResult) {
  const b = { bench, temp, kinesis: e.kinesis!, writer: e.writer!, s3: e.s3! };
  if (want(2, 3)) {
    await loadShard(b, SHARD_RECORDS);
    await figureCatchUp(b, SHARD_RECORDS, want(2));
  }
  if (want(3)) await figureBootstrap(b, SHARD_RECORDS);
  const downMBps = want(4) ? await figureTransfer(b, TRANSFER_MB) : undefined;
  if (apply && sizes && want(3) && downMBps) {
    extrapolation(bench, { apply, size: sizes, keys: KEYS, records: APPLY_RECORDS, downMBps });
  }
}

/** Figures 7-10: incremental snapshots and the continuous producer. */
async function incrementalFigures(e: Emulators, counter: RequestCounter): Promise<void> {
  const base = { bench, temp, s3: e.s3!, bucket: BUCKET, counter };
  if (want(7, 8, 9)) await figuresDeltas({ ...base, keys: DELTA_KEYS, changeShare: 0.01 });
  if (want(10)) {
    const f = { ...base, endpoint: e.s3Emu!.endpoint, keys: FOLLOW_KEYS };
    await figureFollowMemory(f, {
      perInterval: FOLLOW_RECORDS,
      publishEveryMs: FOLLOW_INTERVAL_MS,
      intervals: FOLLOW_INTERVALS,
    });
    await figureRequests(f, REQUEST_PUBLISHES);
  }
}

const emulators = await start();
try {
  const [apply, sizes] = await localFigures();
  if (want(2, 3, 4)) await emulatorFigures(emulators, apply, sizes);
  if (want(7, 8, 9, 10)) await incrementalFigures(emulators, new RequestCounter(emulators.s3));
  if (want(11, 12, 13)) {
    const e = emulators;
    await figuresLean({
      bench,
      temp,
      kinesisEmu: e.kinesisEmu!,
      s3Emu: e.s3Emu!,
      kinesis: e.kinesis!,
      writer: e.writer!,
      bucket: BUCKET,
      s3: e.s3!,
      followSeconds: LEAN_FOLLOW_SECONDS,
      records: LEAN_RECORDS,
      runs: LEAN_RUNS,
    }, { 11: want(11), 12: want(12), 13: want(13) });
  }
} finally {
  await stop(emulators);
  await Deno.remove(temp, { recursive: true });
}

const file = new URL("./results.json", import.meta.url);
const previous: Results | undefined = await Deno.readTextFile(file)
  .then((text) => JSON.parse(text), () => undefined);
const results = mergeResults(previous, {
  machine: {
    cores: navigator.hardwareConcurrency,
    os: Deno.build.os,
    arch: Deno.build.arch,
    deno: Deno.version.deno,
    date: bench.date,
    figures: [...figures].sort((a, b) => a - b),
  },
  entries: bench.entries,
  rows: bench.rows,
});
for (const line of formatTable(results.table)) console.log(line);
await Deno.writeTextFile(file, JSON.stringify(results, null, 2) + "\n");
