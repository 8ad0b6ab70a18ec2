/**
 * Figures 1 (apply overhead), 5 (compression) and 6 (peak RSS of a snapshot run): the apply
 * path against a hand-written loop of the same SQL, from the same in-memory records.
 *
 * @module
 */
import { DatabaseSync } from "node:sqlite";
import { join } from "node:path";
import {
  FileSnapshotStore,
  KV_TABLE_SQL,
  kvGenerator,
  type ShardPage,
  ShardSnapshotter,
} from "../mod.ts";
import { decodeFile, encodeFile, sha256File } from "../src/_codec.ts";
import { DENO } from "../tests/support/emulators.ts";
import { materialize, time } from "./_data.ts";
import { NO_KINESIS } from "./_feed.ts";
import { log, mb, type Recorder, round } from "./_results.ts";

const REPS = 3;

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

/** What figure 1 measured, for the 10M extrapolation. */
export interface ApplyResult {
  /** Best time of the snapshotter's apply phase, ms. */
  applyMs: number;
  /** Average bytes of a record's data. */
  avgBytes: number;
  /** The snapshot the last run produced (figure 5 compresses it). */
  snapshotFile: string;
}

/** One snapshotter run over the pages; returns the ms to caught-up and the snapshot file. */
async function snapshotRun(dir: string, pages: ShardPage[]): Promise<[number, string]> {
  let caughtUp = 0;
  const t0 = performance.now();
  const snapshot = await new ShardSnapshotter({
    kinesis: NO_KINESIS,
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
  return [caughtUp - t0, snapshot.localFile];
}

/**
 * Figure 1: apply overhead; with `measure` false, only one run to make the snapshot figure 5
 * compresses.
 */
export async function figureApply(
  bench: Recorder,
  temp: string,
  options: { records: number; keys: number; measure: boolean },
): Promise<ApplyResult> {
  const { records, keys } = options;
  log(`figure 1: generating ${records} events over ${keys} keys`);
  const pages = await materialize(records, keys);
  const avgBytes = pages[0].records.reduce((n, r) => n + r.data.length, 0) /
    pages[0].records.length;
  let applyMs = Infinity;
  let handMs = Infinity;
  let handDefaultMs = Infinity;
  let snapshotFile = "";
  for (let rep = 0; rep < (options.measure ? REPS : 1); rep++) {
    const dir = await Deno.makeTempDir({ dir: temp });
    const [ms, file] = await snapshotRun(dir, pages);
    applyMs = Math.min(applyMs, ms);
    snapshotFile = file;
    if (!options.measure) break;
    handMs = Math.min(handMs, await time(() => handLoop(join(dir, "hand.sqlite"), pages, true)));
    if (rep === 0) {
      handDefaultMs = await time(() => handLoop(join(dir, "hand-default.sqlite"), pages, false));
    }
  }
  if (options.measure) {
    bench.entry("applyOverhead", {
      records,
      keys,
      avgRecordBytes: round(avgBytes, 1),
      snapshotterApplyMs: round(applyMs),
      handLoopMs: round(handMs),
      ratio: round(applyMs / handMs, 3),
      handLoopDefaultPragmasMs: round(handDefaultMs),
      recordsPerSecond: Math.round(records / (applyMs / 1000)),
    });
    bench.row(
      "applyOverhead",
      `1. apply ${records.toLocaleString("en")} upserts`,
      `streambolt ${round(applyMs / 1000)} s vs hand loop ${round(handMs / 1000)} s`,
      `${round(applyMs / handMs, 3)}`,
      "<= 1.10",
    );
  }
  return { applyMs, avgBytes, snapshotFile };
}

/** What figure 5 measured, for the 10M extrapolation. */
export interface SizeResult {
  /** Stored bytes of the zstd-3 snapshot. */
  zstd3Bytes: number;
  /** ms to verify (SHA-256) it. */
  verifyMs: number;
  /** ms to decode it. */
  decodeMs: number;
}

/** Figure 5: compression of the figure-1 snapshot, and what a consumer pays to verify and decode. */
export async function figureSize(
  bench: Recorder,
  temp: string,
  snapshotFile: string,
): Promise<SizeResult> {
  log("figure 5: compression of the figure-1 snapshot");
  const rawSize = (await Deno.stat(snapshotFile)).size;
  const sizes: Record<string, { bytes: number; ms: number }> = {};
  for (const level of [1, 3, 9]) {
    const out = join(temp, `size-${level}.zst`);
    const ms = await time(() => encodeFile(snapshotFile, out, "zstd", level));
    sizes[`zstd-${level}`] = { bytes: (await Deno.stat(out)).size, ms: round(ms) };
  }
  const stored3 = join(temp, "size-3.zst");
  const verifyMs = await time(() => sha256File(stored3));
  const decodeMs = await time(() => decodeFile(stored3, join(temp, "decoded.sqlite"), "zstd"));
  const ratio = round(sizes["zstd-3"].bytes / rawSize, 3);
  bench.entry("size", {
    rawBytes: rawSize,
    levels: sizes,
    ratio,
    addedMs: sizes["zstd-3"].ms,
    verifyMs: round(verifyMs),
    decodeMs: round(decodeMs),
  });
  bench.row(
    "size",
    "5. compressed / raw snapshot (zstd 3)",
    `${round(mb(rawSize), 1)} MB -> ${round(mb(sizes["zstd-3"].bytes), 1)} MB, +${
      Math.round(sizes["zstd-3"].ms)
    } ms`,
    `${ratio}`,
    "<= 0.40",
  );
  return { zstd3Bytes: sizes["zstd-3"].bytes, verifyMs, decodeMs };
}

/** One snapshot run in its own process: its peak RSS. */
async function memoryRun(temp: string, count: number, v8Flags: string[]) {
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
  await Deno.remove(dir, { recursive: true });
  return { ...result, ms: round(performance.now() - t0) };
}

/**
 * Figure 6: peak RSS of a snapshot run, in its own process. The CLI runs with
 * --v8-flags=--optimize-for-size: V8 then collects the pages of records (which survive
 * young-generation collections while a batch is applied) promptly.
 */
export async function figureMemory(bench: Recorder, temp: string): Promise<void> {
  const memory = [];
  const memoryDefault = [];
  for (const count of [250_000, 1_000_000]) {
    memory.push(await memoryRun(temp, count, ["--v8-flags=--optimize-for-size"]));
    memoryDefault.push(await memoryRun(temp, count, []));
  }
  bench.entry("memory", { cliFlags: memory, defaultV8: memoryDefault });
  bench.row(
    "memory",
    "6. peak RSS, 250k vs 1M records (CLI's V8 flags)",
    memory.map((m) => `${Math.round(mb(m.peakRssBytes))} MB`).join(" vs ") +
      ` (V8 defaults: ${
        memoryDefault.map((m) => `${Math.round(mb(m.peakRssBytes))}`).join(" vs ")
      } MB)`,
    `${round(memory[1].peakRssBytes / memory[0].peakRssBytes, 2)}`,
    "< 160 MB both",
  );
}

/** A minimal OTLP/HTTP receiver on loopback that counts what it gets. */
function receiver(): { endpoint: string; received: () => number; stop: () => Promise<void> } {
  let received = 0;
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, async (req) => {
    await req.arrayBuffer();
    received++;
    return Response.json({});
  });
  return {
    endpoint: `http://127.0.0.1:${server.addr.port}`,
    received: () => received,
    stop: () => server.shutdown(),
  };
}

async function otelRun(temp: string, records: number, keys: number, env: Record<string, string>) {
  const dir = await Deno.makeTempDir({ dir: temp });
  const out = await new Deno.Command(DENO, {
    args: [
      "run",
      "--quiet",
      `--allow-read=${dir}`,
      `--allow-write=${dir}`,
      "--allow-env",
      new URL("./_otel_run.ts", import.meta.url).pathname,
      String(records),
      String(keys),
      dir,
    ],
    env,
    stdout: "piped",
    stderr: "inherit",
  }).output();
  await Deno.remove(dir, { recursive: true });
  if (!out.success) throw new Error("telemetry run failed");
  return JSON.parse(new TextDecoder().decode(out.stdout)).applyMs as number;
}

/**
 * Figure 1, telemetry: the same apply in child processes, with Deno's OpenTelemetry exporter on
 * (`OTEL_DENO=true`, to a receiver on loopback) and off, alternating; best of each.
 */
export async function figureTelemetryCost(
  bench: Recorder,
  temp: string,
  options: { records: number; keys: number },
): Promise<void> {
  log(`figure 1: ${options.records} upserts with and without OpenTelemetry`);
  const sink = receiver();
  let on = Infinity;
  let off = Infinity;
  try {
    for (let rep = 0; rep < REPS; rep++) {
      off = Math.min(off, await otelRun(temp, options.records, options.keys, {}));
      on = Math.min(
        on,
        await otelRun(temp, options.records, options.keys, {
          OTEL_DENO: "true",
          OTEL_EXPORTER_OTLP_PROTOCOL: "http/json",
          OTEL_EXPORTER_OTLP_ENDPOINT: sink.endpoint,
          OTEL_METRIC_EXPORT_INTERVAL: "1000",
        }),
      );
    }
  } finally {
    await sink.stop();
  }
  bench.entry("telemetryCost", {
    ...options,
    withoutOtelMs: round(off),
    withOtelMs: round(on),
    exportsReceived: sink.received(),
    ratio: round(on / off, 3),
  });
  bench.row(
    "telemetryCost",
    `1. apply ${options.records.toLocaleString("en")} upserts, OpenTelemetry exporting vs off`,
    `${round(on / 1000)} s vs ${round(off / 1000)} s (${sink.received()} OTLP exports received)`,
    `${round(on / off, 3)}`,
    "~1.0",
  );
}
