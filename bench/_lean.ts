/**
 * Figures 11-13, a lean run: one shard of `records` records (JSON values, 10,000 keys) in
 * kinesis-local, snapshotted by the CLI as users run it (`deno run` with the `cli` task's
 * flags), each run a whole process timed by GNU time, medians of `runs` runs after a warm-up.
 *
 * - 11: the fixed cost of a `snapshot --shard` run with nothing to do (caught-up shard, its
 *   local copy present), file store and S3, split into runtime start, module loading, client
 *   set-up and requests (bench/_lean_probe.ts stops after each stage), with the requests the
 *   run makes, counted by a proxy, against its floor: a process that loads the SDK clients
 *   and does nothing else;
 * - 12: the CPU per record (the 20,000-record run less a 2,000-record run, measured in turn,
 *   over the 18,000 records between them) against its floor measured in the same run: plain
 *   `fetch` + `JSON.parse` + base64 of the same pages, plus the generator applying the same
 *   records alone (bench/_lean_floor.ts); and the CPU of a point: a one-shot run's publishing
 *   (the small run less the fixed cost and its records) and a follower's steady state;
 * - 13: the run of the Go original's reference figures (20,000 records, a running sum per
 *   key into S3) and the next run after +10% records, against those figures and against the
 *   floor in this runtime (11's floor plus 12's).
 *
 * @module
 */
import { join } from "node:path";
import type { KinesisClient } from "@aws-sdk/client-kinesis";
import { ListObjectsV2Command, type S3Client } from "@aws-sdk/client-s3";
import { makeRecords, putRecords } from "../tests/support/data.ts";
import { createStream, type Emulator, emulatorEnv } from "../tests/support/emulators.ts";
import { type CountProxy, formatOps, startCountProxy } from "./_count_proxy.ts";
import { cliArgs, measure, median, type MedianCost, ROOT, sideBySide } from "./_process.ts";
import { log, type Recorder, round } from "./_results.ts";
import { parseSnapshotKey } from "../src/snapshot_key.ts";

const STREAM = "lean";
/** A stream of a tenth as many records: a publishing run's cost beyond its records. */
const SMALL_STREAM = "lean-small";
const SHARD = "shardId-000000000000";
/** The Go original's figures for the same work (one shard, 20,000 records, running sums). */
export const GO = { wall: 0.73, cpu: 0.22, rssMb: 31, nextWall: 0.18 };
/** The targets of figure 11. */
const FIXED = { cpu: 0.2, rssMb: 60 };

/** What figures 11-13 work with. */
export interface LeanBench {
  /** This run's results. */
  bench: Recorder;
  /** Scratch directory. */
  temp: string;
  /** kinesis-local. */
  kinesisEmu: Emulator;
  /** fauxqs. */
  s3Emu: Emulator;
  /** For loading records. */
  writer: KinesisClient;
  /** For creating the stream. */
  kinesis: KinesisClient;
  /** The bucket, created. */
  bucket: string;
  /** S3 (fauxqs), for counting what a follower published. */
  s3: S3Client;
  /** Seconds the follower of figure 12 runs (0: not measured). */
  followSeconds: number;
  /** Records of the reference run (20,000). */
  records: number;
  /** Counted runs of each measurement. */
  runs: number;
}

/** Which of figures 11-13 to measure. */
export type LeanFigures = { 11: boolean; 12: boolean; 13: boolean };

interface Ctx extends LeanBench {
  cwd: string;
  env: Record<string, string>;
  cli: string[];
}

const fmt = (c: MedianCost) =>
  `${round(c.wall)} s, ${round(c.cpu)} CPU-s, ${Math.round(c.rssMb)} MB`;

/** `snapshot` of the lean shard into `store` from `localDir`, with the given generator. */
function snapshotArgs(
  c: Ctx,
  store: string,
  localDir: string,
  generator = "kv",
  stream = STREAM,
): string[] {
  return [
    ...c.cli,
    "snapshot",
    "--stream",
    stream,
    "--shard",
    SHARD,
    "--store",
    store,
    "--local-dir",
    localDir,
    "--generator",
    generator,
    "--quiet",
  ];
}

/** Runs a command once (a set-up step), failing loudly. */
async function once(c: Ctx, args: string[], env = c.env): Promise<void> {
  await measure(args, { cwd: c.cwd, env });
}

/** Figure 11: a run with nothing to do, and its split. */
async function figureFixed(
  c: Ctx,
): Promise<{ run: MedianCost; floor: MedianCost; start: MedianCost }> {
  const probe = `${ROOT}bench/_lean_probe.ts`;
  // The probe imports what each stage loads when that stage runs (a read of the module).
  const probeArgs = await cliArgs(probe, [ROOT]);
  const fileRun = snapshotArgs(c, "files", "work-files");
  const s3Run = snapshotArgs(c, `s3://${c.bucket}/fixed`, "work-fixed");
  await once(c, fileRun);
  await once(c, s3Run);
  log("figure 11: runs with nothing to do, and the probes of their stages");
  const s3Store = `s3://${c.bucket}/fixed`;
  const at = (stage: string, store: string) => ({
    args: [...probeArgs, stage, store, STREAM, SHARD],
    cwd: c.cwd,
    env: c.env,
  });
  const m = await sideBySide({
    start: at("start", "files"),
    sdk: at("sdk", "files"),
    requests: at("requests", "files"),
    modules: at("modules", "files"),
    client: at("client", "files"),
    run: { args: fileRun, cwd: c.cwd, env: c.env },
    s3Sdk: at("sdk", s3Store),
    s3Requests: at("requests", s3Store),
    s3Modules: at("modules", s3Store),
    s3Client: at("client", s3Store),
    s3Run: { args: s3Run, cwd: c.cwd, env: c.env },
  }, c.runs);
  const [fileOps, s3Ops] = await countRequests(c, fileRun, s3Run);
  const split = (run: MedianCost, client: MedianCost, modules: MedianCost) =>
    `start ${round(m.start.cpu)} / modules ${round(modules.cpu - m.start.cpu)} / client ${
      round(client.cpu - modules.cpu)
    } / requests ${round(run.cpu - client.cpu)}`;
  c.bench.entry("fixedCost", {
    ...m,
    requests: { file: fileOps, s3: s3Ops },
    target: FIXED,
    floor: { file: m.sdk, s3: m.s3Sdk },
    floorWithRequests: { file: m.requests, s3: m.s3Requests },
  });
  c.bench.row(
    "fixedCost",
    "11. fixed cost of a run with nothing to do: file store (S3); floors: Deno with the SDK clients loaded, and making the run's requests with them",
    `${fmt(m.run)} (${fmt(m.s3Run)}); floor ${fmt(m.sdk)} (${fmt(m.s3Sdk)}), with the requests ${
      fmt(m.requests)
    } (${fmt(m.s3Requests)}); CPU-s ${split(m.run, m.client, m.modules)} (S3: ${
      split(m.s3Run, m.s3Client, m.s3Modules)
    }); requests ${formatOps(fileOps)} (S3: ${formatOps(s3Ops)})`,
    `${round(m.run.cpu / FIXED.cpu)} CPU, ${round(m.run.rssMb / FIXED.rssMb)} RSS (S3 ${
      round(m.s3Run.cpu / FIXED.cpu)
    }, ${round(m.s3Run.rssMb / FIXED.rssMb)}); vs floor ${round(m.run.cpu / m.sdk.cpu)} CPU, ${
      round(m.run.rssMb / m.sdk.rssMb)
    } RSS (S3 ${round(m.s3Run.cpu / m.s3Sdk.cpu)}, ${
      round(m.s3Run.rssMb / m.s3Sdk.rssMb)
    }); vs the floor with the requests ${round(m.run.cpu / m.requests.cpu)} CPU, ${
      round(m.run.rssMb / m.requests.rssMb)
    } RSS (S3 ${round(m.s3Run.cpu / m.s3Requests.cpu)}, ${
      round(m.s3Run.rssMb / m.s3Requests.rssMb)
    })`,
    `≤ ${FIXED.cpu} CPU-s, ≤ ${FIXED.rssMb} MB; floors ${round(m.sdk.cpu)} CPU-s, ${
      Math.round(m.sdk.rssMb)
    } MB, with the requests ${round(m.requests.cpu)}, ${Math.round(m.requests.rssMb)} (S3 ${
      round(m.s3Sdk.cpu)
    }, ${Math.round(m.s3Sdk.rssMb)}; ${round(m.s3Requests.cpu)}, ${
      Math.round(m.s3Requests.rssMb)
    })`,
  );
  return { run: m.s3Run, floor: m.s3Sdk, start: m.start };
}

/** The requests of one run with nothing to do, each store, through counting proxies. */
async function countRequests(c: Ctx, fileRun: string[], s3Run: string[]) {
  const proxies: CountProxy[] = [
    startCountProxy(c.kinesisEmu.endpoint),
    startCountProxy(c.s3Emu.endpoint),
  ];
  try {
    const env = {
      ...c.env,
      AWS_ENDPOINT_URL_KINESIS: proxies[0].endpoint,
      AWS_ENDPOINT_URL_S3: proxies[1].endpoint,
    };
    const counted = async (args: string[]) => {
      for (const p of proxies) p.reset();
      await once(c, args, env);
      return { ...proxies[0].counts(), ...proxies[1].counts() };
    };
    return [await counted(fileRun), await counted(s3Run)];
  } finally {
    await Promise.all(proxies.map((p) => p.stop()));
  }
}

/** What one measured process cost. */
type Measured = Awaited<ReturnType<typeof measure>>;

/** The reference runs and, in turn with them, the runs of a tenth as many records. */
interface FullRuns {
  /** The reference runs (figure 13). */
  full: MedianCost;
  /** The small stream's runs. */
  small: MedianCost;
  /** Records of the small stream. */
  smallRecords: number;
  /** Figure 12's floor, its samples taken in turn with the runs. */
  floor: Floor;
  /** The median over the pairs of a reference run and the small run after it of their CPU's
   * difference (seconds). */
  marginalCpuS: number;
}

/**
 * The 20,000-record runs (figure 13), each into its own prefix and local directory, in turn
 * with runs of the small stream and samples of figure 12's floor (the CPU per record is the
 * difference over the difference in records, so a publishing run's own cost is not counted as
 * the records'; each pair's difference is taken, then their median).
 */
async function fullRuns(c: Ctx, generator: string, smallRecords: number): Promise<FullRuns> {
  log(
    `figures 12-13: ${c.runs} one-shot runs of ${c.records} and of ${smallRecords} records, ` +
      "each in turn with the floor (fetch + JSON.parse + base64, and the generator alone)",
  );
  await once(c, snapshotArgs(c, `s3://${c.bucket}/warm`, "work-warm", generator));
  const full: Measured[] = [];
  const small: Measured[] = [];
  const floors = [];
  for (let i = 0; i < c.runs; i++) {
    full.push(
      await measure(snapshotArgs(c, `s3://${c.bucket}/sums-${i}`, `work-${i}`, generator), c),
    );
    const store = `s3://${c.bucket}/small-${i}`;
    small.push(await measure(snapshotArgs(c, store, `small-${i}`, generator, SMALL_STREAM), c));
    floors.push(await floorSample(c, i));
  }
  return {
    full: medianOf(full),
    small: medianOf(small),
    smallRecords,
    floor: floorOf(floors),
    marginalCpuS: median(full.map((x, i) => x.cpu - small[i].cpu)),
  };
}

/** The +10% runs: each continues one of the full runs' prefixes with its local copy. */
async function nextRuns(c: Ctx, generator: string): Promise<MedianCost> {
  const extra = Math.round(c.records / 10);
  log(`figure 13: +${extra} records, then ${c.runs} next runs`);
  await putRecords(c.writer, STREAM, makeRecords(extra, { keys: 10_000, seed: 99 }), 4);
  const costs = [];
  for (let i = 0; i < c.runs; i++) {
    costs.push(
      await measure(snapshotArgs(c, `s3://${c.bucket}/sums-${i}`, `work-${i}`, generator), c),
    );
  }
  return medianOf(costs);
}

function medianOf(costs: { wall: number; cpu: number; rssMb: number }[]): MedianCost {
  return {
    wall: median(costs.map((x) => x.wall)),
    cpu: median(costs.map((x) => x.cpu)),
    rssMb: median(costs.map((x) => x.rssMb)),
    runs: costs.length,
  };
}

/** Figure 12's floor: reading the shard's pages and applying its records, nothing else. */
interface Floor {
  records: number;
  readCpuS: number;
  /** The reading's elapsed time: mostly the emulator serving the pages. */
  readWallS: number;
  applyCpuS: number;
  /** Peak RSS of a process that reads and applies the pages one at a time (no SDK). */
  pagesRssMb: number;
}

/** One sample of figure 12's floor, each in its own process: the pages read and applied, and
 * the peak RSS of reading and applying them one page at a time. */
async function floorSample(
  c: Ctx,
  i: number,
): Promise<{ run: Omit<Floor, "pagesRssMb">; pagesRssMb: number }> {
  const script = `${ROOT}bench/_lean_floor.ts`;
  const args = (db: string, ...mode: string[]) => [
    "deno",
    "run",
    "--quiet",
    "--config",
    `${ROOT}deno.json`,
    // The CLI's V8 flags (as in c.cli), so the floor's heap grows as a run's does.
    ...c.cli.filter((a) => a.startsWith("--v8-flags=")),
    `--allow-net=${new URL(c.kinesisEmu.endpoint).host}`,
    `--allow-read=${c.cwd}`,
    `--allow-write=${c.cwd}`,
    script,
    c.kinesisEmu.endpoint,
    STREAM,
    SHARD,
    join(c.cwd, db),
    ...mode,
  ];
  const run = JSON.parse((await measure(args(`floor-${i}.db`), c)).stdout);
  const pagesRssMb = (await measure(args(`floor-streaming-${i}.db`, "streaming"), c)).rssMb;
  return { run, pagesRssMb };
}

/** Figure 12's floor: the medians of its samples. */
function floorOf(samples: { run: Omit<Floor, "pagesRssMb">; pagesRssMb: number }[]): Floor {
  const runs = samples.map((x) => x.run);
  return {
    records: runs[0].records,
    readCpuS: median(runs.map((r) => r.readCpuS)),
    readWallS: median(runs.map((r) => r.readWallS)),
    applyCpuS: median(runs.map((r) => r.applyCpuS)),
    pagesRssMb: median(samples.map((x) => x.pagesRssMb)),
  };
}

/** What is stored under a prefix: its objects, and the points they make (a point published
 * as a delta and a full is one point, two objects). */
async function stored(c: Ctx, prefix: string): Promise<{ objects: number; points: number }> {
  const out = await c.s3.send(new ListObjectsV2Command({ Bucket: c.bucket, Prefix: prefix }));
  const keys = (out.Contents ?? []).map((o) => o.Key!.slice(prefix.length + 1));
  const points = new Set(
    keys.map((k) => parseSnapshotKey(k)).filter((p) => p !== undefined)
      .map((p) => `${p.sequenceNumber}${p.final ? ".final" : ""}`),
  );
  return { objects: keys.length, points: points.size };
}

/**
 * The follower's CPU per published point: `snapshot --follow --publish-every 2s` on a
 * caught-up prefix for `followSeconds` while ~45 records a second arrive, stopped by SIGTERM.
 * Its CPU less the fixed cost and its records' cost, per point published.
 */
async function followPoint(c: Ctx, fixed: MedianCost, usPerRecord: number) {
  const script = `${ROOT}bench/_lean_follow_run.ts`;
  const prefix = "follow";
  const args = snapshotArgs(c, `s3://${c.bucket}/${prefix}`, "work-follow");
  await once(c, args);
  const before = await stored(c, prefix);
  log(`figure 12: following for ${c.followSeconds} s, publishing every 2 s`);
  const cli = await cliArgs(script, [script]);
  const child = new Deno.Command(cli[0], {
    args: [...cli.slice(1), ...args.slice(c.cli.length), "--follow", "--publish-every", "2s"],
    cwd: c.cwd,
    env: { NO_COLOR: "1", ...c.env },
    stdin: "null",
    stdout: "null",
    stderr: "piped",
  }).spawn();
  const output = child.output();
  let records = 0;
  for (let s = 0; s < c.followSeconds; s++) {
    const started = performance.now();
    await putRecords(c.writer, STREAM, makeRecords(45, { keys: 10_000, seed: 1_000 + s }), 1);
    records += 45;
    await new Promise((r) => setTimeout(r, Math.max(0, 1_000 - (performance.now() - started))));
  }
  child.kill("SIGTERM");
  const stderr = new TextDecoder().decode((await output).stderr);
  const line = stderr.split("\n").find((l) => l.startsWith("@@follow "));
  if (!line) throw new Error(`Cannot measure the follower as it failed: ${stderr.slice(-2000)}`);
  const { cpuS } = JSON.parse(line.slice("@@follow ".length));
  const after = await stored(c, prefix);
  const points = after.points - before.points;
  const objects = after.objects - before.objects;
  const perPointMs = ((cpuS - fixed.cpu - (records * usPerRecord) / 1e6) / Math.max(points, 1)) *
    1000;
  return { seconds: c.followSeconds, records, points, objects, cpuS, perPointMs };
}

/** Figure 12: CPU per record against the floor. */
async function figurePerRecord(c: Ctx, runs: FullRuns, fixed: MedianCost, f: Floor) {
  const { full, small, smallRecords } = runs;
  const us = (s: number) => (s * 1e6) / c.records;
  // The marginal CPU of a record: the two runs differ only in how many records they read.
  const run = (runs.marginalCpuS * 1e6) / (c.records - smallRecords);
  // A publishing run's own cost: the small run less the fixed cost and its records.
  const publishMs = (small.cpu - fixed.cpu - (smallRecords * run) / 1e6) * 1000;
  const read = us(f.readCpuS);
  const apply = us(f.applyCpuS);
  const follow = c.followSeconds > 0 ? await followPoint(c, fixed, run) : undefined;
  c.bench.entry("perRecord", {
    runUsPerRecord: run,
    publishMs,
    floor: { ...f, read, apply },
    full,
    small,
    smallRecords,
    fixed,
    follow,
  });
  c.bench.row(
    "perRecord",
    `12. CPU per record (${c.records}- less ${smallRecords}-record run, per record) vs the floor; per published point`,
    `${round(run, 1)} µs (${Math.round(1e6 / run)} records/s/core) vs ${
      round(read + apply, 1)
    } µs (read ${round(read, 1)} + apply ${round(apply, 1)}); a one-shot run's publishing: ${
      Math.round(publishMs)
    } ms CPU${
      follow
        ? `; follower: ${
          Math.round(follow.perPointMs)
        } ms CPU per published point (${follow.points} points, ${follow.objects} objects, ${follow.records} records, ${
          round(follow.cpuS)
        } CPU-s)`
        : ""
    }`,
    `${round(run / (read + apply))}`,
    "≤ 1.5",
  );
}

/**
 * Figure 13: the reference run and the next one against the Go original's figures, and
 * against their floor in this runtime: Deno with the SDK clients loaded (figure 11's floor)
 * plus reading and applying the records alone (figure 12's floor); the floor's wall has the
 * reading's elapsed time (the emulator serving the pages) in place of its CPU. The next run's
 * floor is the same runtime reading and applying its tenth of the records.
 */
function figureGo(
  c: Ctx,
  full: MedianCost,
  next: MedianCost,
  fixed: { floor: MedianCost; start: MedianCost },
  f: Floor,
): void {
  const sdk = fixed.floor;
  const least = {
    wall: sdk.wall + f.readWallS + f.applyCpuS,
    cpu: sdk.cpu + f.readCpuS + f.applyCpuS,
    // The SDK's memory, plus what holding and applying one page at a time adds to a runtime.
    rssMb: sdk.rssMb + Math.max(0, f.pagesRssMb - fixed.start.rssMb),
  };
  // The next run reads and applies a tenth as many records on top of the same runtime.
  const share = Math.round(c.records / 10) / c.records;
  const nextLeast = { wall: sdk.wall + share * (f.readWallS + f.applyCpuS) };
  c.bench.entry("vsGo", { full, next, go: GO, floor: least, nextFloor: nextLeast });
  c.bench.row(
    "vsGo",
    `13. ${c.records} records, running sums, S3, vs the Go original (${GO.wall} s, ${GO.cpu} CPU-s, ${GO.rssMb} MB; +10% ${GO.nextWall} s); floor: Deno with the SDK loaded + reading and applying alone`,
    `${fmt(full)}; +10%: ${fmt(next)}; floor ${round(least.wall)} s, ${round(least.cpu)} CPU-s, ${
      Math.round(least.rssMb)
    } MB; +10%: ${round(nextLeast.wall)} s`,
    `wall ${round(full.wall / GO.wall)}, CPU ${round(full.cpu / GO.cpu)}, RSS ${
      round(full.rssMb / GO.rssMb)
    }, +10% wall ${round(next.wall / GO.nextWall)}; vs floor: wall ${
      round(full.wall / least.wall)
    }, CPU ${round(full.cpu / least.cpu)}, RSS ${round(full.rssMb / least.rssMb)}, +10% wall ${
      round(next.wall / nextLeast.wall)
    }`,
    `wall ≤ 1.3, CPU ≤ 2.0, RSS ≤ 2.0, +10% wall ≤ 2.0 (the floor itself: wall ${
      round(least.wall / GO.wall)
    }, CPU ${round(least.cpu / GO.cpu)}, RSS ${round(least.rssMb / GO.rssMb)}, +10% wall ${
      round(nextLeast.wall / GO.nextWall)
    })`,
  );
}

/**
 * Figures 11-13 on one shard of kinesis-local and fauxqs.
 *
 * @param b What they work with.
 * @param want Which to measure (12 and 13 need each other's runs, 11's fixed cost and the
 * floor, and run them).
 */
export async function figuresLean(b: LeanBench, want: LeanFigures): Promise<void> {
  const cwd = await Deno.makeTempDir({ dir: b.temp, prefix: "lean-" });
  const generator = `${ROOT}bench/_sums.ts`;
  const c: Ctx = {
    ...b,
    cwd,
    env: emulatorEnv(b.kinesisEmu, b.s3Emu),
    cli: await cliArgs(`${ROOT}cli.ts`, [generator]),
  };
  const smallRecords = Math.round(b.records / 10);
  log(`figures 11-13: loading ${b.records} records into one shard, ${smallRecords} into another`);
  await createStream(b.kinesis, STREAM, 1);
  await createStream(b.kinesis, SMALL_STREAM, 1);
  for (let i = 0; i < b.records; i += 5_000) {
    const n = Math.min(5_000, b.records - i);
    await putRecords(b.writer, STREAM, makeRecords(n, { keys: 10_000, seed: i + 1 }), 4);
  }
  await putRecords(b.writer, SMALL_STREAM, makeRecords(smallRecords, { keys: 10_000, seed: 1 }), 4);
  const runs = want[12] || want[13] ? await fullRuns(c, generator, smallRecords) : undefined;
  const fixed = want[11] || want[12] || want[13] ? await figureFixed(c) : undefined;
  const f = runs?.floor;
  if (want[12]) await figurePerRecord(c, runs!, fixed!.run, f!);
  if (want[13]) figureGo(c, runs!.full, await nextRuns(c, generator), fixed!, f!);
}
