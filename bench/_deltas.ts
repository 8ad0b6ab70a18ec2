/**
 * Figures 7-9, measured together on one synthetic shard of `keys` keys (default 1,000,000) in
 * fauxqs:
 *
 * - 7. stored bytes of the delta after 1% of the keys changed, against the stored bytes of a
 *   full snapshot of the same state;
 * - 8. wall time of that incremental run (the producer's local cache, a delta) against a full
 *   run of the same change (a fresh local dir, `full: true`: download, apply, compact, encode,
 *   upload);
 * - 9. a consumer's bootstrap through the longest chain the default policy allows, against a
 *   bootstrap from one full snapshot of the same state; and a refresh by one delta.
 *
 * Two prefixes hold the same base (a full snapshot of the load): `incremental`, where a producer
 * with its cache publishes a delta per 1% change, and `full`, where a producer with a fresh
 * local dir publishes a full snapshot of the same change. Steps repeat until the incremental
 * producer's run also writes a full snapshot (the chain passed the policy); that last run's
 * objects are removed, which leaves the longest chain the policy allows.
 *
 * @module
 */
import { join } from "node:path";
import { DatabaseSync } from "node:sqlite";
import type { S3Client } from "@aws-sdk/client-s3";
import {
  DEFAULT_CHAIN_POLICY,
  listSnapshots,
  S3SnapshotStore,
  ShardSnapshotFinder,
  type ShardSnapshotterOptions,
  type Snapshot,
  type SnapshotProgress,
} from "../mod.ts";
import { decodeFile } from "../src/_codec.ts";
import { applyDelta, fetchDelta } from "../src/_delta.ts";
import { DELTA_COST_FACTOR } from "../src/_restore.ts";
import { fetchSnapshot } from "../src/_fetch.ts";
import { time } from "./_data.ts";
import { feedProducer, SHARD_ID, STREAM, SyntheticShard } from "./_feed.ts";
import { formatCounts, type RequestCounter, type RequestCounts } from "./_requests.ts";
import { log, mb, type Recorder, round } from "./_results.ts";

const REPS = 3;

/** What the delta figures work with. */
export interface DeltaBench {
  /** This run's results. */
  bench: Recorder;
  /** Scratch directory. */
  temp: string;
  /** S3 (fauxqs). */
  s3: S3Client;
  /** Its bucket, created. */
  bucket: string;
  /** Counts the S3 client's requests. */
  counter: RequestCounter;
  /** Distinct keys. */
  keys: number;
  /** Share of the keys each step changes. */
  changeShare: number;
}

/** The two prefixes, the feed, and the incremental producer's local dir (its cache). */
interface Lab extends DeltaBench {
  feed: SyntheticShard;
  incremental: S3SnapshotStore;
  full: S3SnapshotStore;
  cacheDir: string;
  change: number;
}

/** One step: the same change published both ways. */
interface Step {
  sequenceNumber: string;
  incrementalMs: number;
  incrementalMarks: Marks;
  usedCache: boolean;
  deltaBytes: number;
  fullMs: number;
  fullMarks: Marks;
  fullBytes: number;
}

/** Publishes the load in `incremental` (leaving the cache) and copies it to `full`. */
async function setUp(d: DeltaBench): Promise<Lab> {
  const store = (prefix: string) =>
    new S3SnapshotStore({ client: d.s3, bucket: d.bucket, prefix: `deltas/${prefix}` });
  const lab: Lab = {
    ...d,
    feed: new SyntheticShard(d.keys),
    incremental: store("incremental"),
    full: store("full"),
    cacheDir: join(d.temp, "deltas-cache"),
    change: Math.round(d.keys * d.changeShare),
  };
  log(`figures 7-9: loading ${d.keys} keys through the snapshotter`);
  const base = await feedProducer(lab.incremental, lab.cacheDir, lab.feed).snapshotShard();
  const scratch = join(d.temp, "deltas-copy");
  const { metadata } = await lab.incremental.download(base.key, scratch);
  await lab.full.put(base.key, scratch, { metadata, ifNoneMatch: true });
  await Deno.remove(scratch);
  log(`base: ${round(mb(base.size ?? 0), 1)} MB stored`);
  return lab;
}

/**
 * When each phase of a run ended, in ms from its start: `setup` (list, cache or restore, open;
 * the source is first asked for pages), `applied` (the page is applied), `compact` (a full
 * snapshot's compaction starts), `encoded` (the upload starts), `published` (the put and the
 * fork check are done), `end` (close, keep the cache, collect).
 */
type Marks = Record<string, number>;

const MARKS: Partial<Record<SnapshotProgress["phase"], string>> = {
  download: "download",
  "catch-up": "applied",
  compact: "compact",
  upload: "encoded",
  done: "published",
};

/** One producer run with its phases marked: what it published, its wall time, the marks. */
async function markedRun(
  lab: Lab,
  store: S3SnapshotStore,
  localPath: string,
  extra: Partial<ShardSnapshotterOptions>,
): Promise<[Snapshot, number, Marks]> {
  const marks: Marks = {};
  const t0 = performance.now();
  const mark = (name: string) => (marks[name] ??= round(performance.now() - t0));
  const source = lab.feed.source();
  const published = await feedProducer(store, localPath, lab.feed, {
    ...extra,
    source: (kinesis, options) => (mark("setup"), source(kinesis, options)),
    onProgress: (p) => {
      const name = MARKS[p.phase];
      if (name) mark(name);
    },
  }).snapshotShard();
  mark("end");
  return [published, marks.end, marks];
}

/** The incremental producer's run of the change just appended (with its cache). */
function incrementalRun(lab: Lab): Promise<[Snapshot, number, Marks]> {
  return markedRun(lab, lab.incremental, lab.cacheDir, {});
}

/** A full run of the change just appended, as every run was before deltas. */
async function fullRun(lab: Lab): Promise<[Snapshot, number, Marks]> {
  const dir = await Deno.makeTempDir({ dir: lab.temp });
  const result = await markedRun(lab, lab.full, dir, { full: true });
  await Deno.remove(dir, { recursive: true });
  return result;
}

/**
 * Appends a change and publishes it both ways, until the incremental producer's run also
 * writes a full snapshot; that run's objects are then removed again.
 */
async function buildChain(lab: Lab): Promise<Step[]> {
  const steps: Step[] = [];
  for (let step = 0; step <= DEFAULT_CHAIN_POLICY.maxDeltas; step++) {
    lab.feed.append(lab.change);
    const sequenceNumber = lab.feed.sequenceNumber(lab.feed.tip - 1);
    const [delta, incrementalMs, incrementalMarks] = await incrementalRun(lab);
    if (delta.kind === "full") {
      log(`step ${step + 1}: the policy called for a full snapshot; the chain stops before it`);
      const objects = await listSnapshots(lab.incremental, STREAM, { shardId: SHARD_ID });
      const last = objects.filter((s) => s.sequenceNumber === sequenceNumber);
      await lab.incremental.delete(last.map((s) => s.key));
      break;
    }
    const [full, fullMs, fullMarks] = await fullRun(lab);
    if (delta.sequenceNumber !== sequenceNumber || full.sequenceNumber !== sequenceNumber) {
      throw new Error(`step ${step + 1} did not reach ${sequenceNumber}`);
    }
    steps.push({
      sequenceNumber,
      incrementalMs,
      incrementalMarks,
      usedCache: incrementalMarks.download === undefined,
      deltaBytes: delta.size ?? 0,
      fullMs,
      fullMarks,
      fullBytes: full.size ?? 0,
    });
    log(
      `step ${step + 1}: delta ${delta.size} B in ${
        Math.round(incrementalMs)
      } ms, full ${full.size} B in ${Math.round(fullMs)} ms`,
    );
  }
  return steps;
}

/** Figures 7 and 8 from the steps. */
function recordSizeAndRun(lab: Lab, steps: Step[]): void {
  const first = steps[0];
  const sizeRatio = first.deltaBytes / first.fullBytes;
  const what = `${round(lab.changeShare * 100, 2)}% of ${lab.keys.toLocaleString("en")} keys`;
  lab.bench.entry("deltaSize", {
    keys: lab.keys,
    changedKeys: lab.change,
    deltaBytes: first.deltaBytes,
    fullBytes: first.fullBytes,
    ratio: round(sizeRatio, 4),
    everyStep: steps.map((s) => round(s.deltaBytes / s.fullBytes, 4)),
  });
  lab.bench.row(
    "deltaSize",
    `7. delta / full stored bytes, ${what} changed`,
    `${round(first.deltaBytes / 1024, 0)} KB vs ${round(mb(first.fullBytes), 1)} MB`,
    `${round(sizeRatio, 4)}`,
    "<= 0.015",
  );
  const incrementalMs = Math.min(...steps.map((s) => s.incrementalMs));
  const fullMs = Math.min(...steps.map((s) => s.fullMs));
  const allCached = steps.every((s) => s.usedCache);
  lab.bench.entry("incrementalRun", {
    keys: lab.keys,
    changedKeys: lab.change,
    runs: steps.length,
    incrementalMs: round(incrementalMs),
    fullMs: round(fullMs),
    ratio: round(incrementalMs / fullMs, 3),
    everyRunUsedTheCache: allCached,
    phases:
      "ms from the run's start at which each phase ended: setup (list, cache or restore, open), applied, compact (starts), encoded, published (put, fork check), end (close, keep the cache, collect)",
    steps: steps.map((s) => ({ incremental: s.incrementalMarks, full: s.fullMarks })),
  });
  lab.bench.row(
    "incrementalRun",
    `8. incremental run (cache, delta) vs full run, ${what}`,
    `${round(incrementalMs / 1000, 3)} s vs ${round(fullMs / 1000)} s (best of ${steps.length})${
      allCached ? "" : " NOT ALL FROM CACHE"
    }`,
    `${round(incrementalMs / fullMs, 3)}`,
    "<= 0.10",
  );
}

/** A consumer's `downloadLatestSnapshot` from `localPath`: ms, requests, the point reached. */
async function consumerBootstrap(
  lab: Lab,
  store: S3SnapshotStore,
  localPath: string,
  refresh: boolean,
): Promise<{ ms: number; requests: RequestCounts; sequenceNumber: string }> {
  const finder = new ShardSnapshotFinder({ store, stream: STREAM, shardId: SHARD_ID, localPath });
  let latest: Snapshot | undefined;
  const [ms, requests] = await lab.counter.count(() =>
    time(async () => latest = await finder.downloadLatestSnapshot({ refresh }))
  );
  return { ms, requests, sequenceNumber: latest?.sequenceNumber ?? "none" };
}

/** A local dir holding the point `sequenceNumber` of the incremental prefix (for refresh). */
async function localPointTemplate(lab: Lab, sequenceNumber: string): Promise<string> {
  const dir = await Deno.makeTempDir({ dir: lab.temp });
  const finder = new ShardSnapshotFinder({
    store: lab.incremental,
    stream: STREAM,
    shardId: SHARD_ID,
    localPath: dir,
  });
  const point = (await finder.findSnapshots()).findLast((s) => s.sequenceNumber === sequenceNumber);
  if (!point) throw new Error(`no object at ${sequenceNumber}`);
  await finder.downloadSnapshot(point);
  return point.localFile;
}

interface Bootstraps {
  chain: { ms: number; requests: RequestCounts };
  full: { ms: number; requests: RequestCounts };
  refresh: { ms: number; requests: RequestCounts };
}

/** Figure 9's timings: chain and full bootstraps alternately, and refreshes, best of REPS. */
async function timeBootstraps(lab: Lab, target: string, previous: string): Promise<Bootstraps> {
  const template = await localPointTemplate(lab, previous);
  const best: Partial<Bootstraps> = {};
  const keep = (key: keyof Bootstraps, r: { ms: number; requests: RequestCounts }) => {
    if (!best[key] || r.ms < best[key].ms) best[key] = { ms: r.ms, requests: r.requests };
  };
  const run = async (key: keyof Bootstraps) => {
    const dir = await Deno.makeTempDir({ dir: lab.temp });
    const refresh = key === "refresh";
    if (refresh) {
      const local = join(dir, STREAM, SHARD_ID, `${previous}.sqlite`);
      await Deno.mkdir(join(dir, STREAM, SHARD_ID), { recursive: true });
      await Deno.copyFile(template, local);
    }
    const store = key === "full" ? lab.full : lab.incremental;
    const r = await consumerBootstrap(lab, store, dir, refresh);
    if (r.sequenceNumber !== target) throw new Error(`${key} reached ${r.sequenceNumber}`);
    keep(key, r);
    await Deno.remove(dir, { recursive: true });
  };
  for (let rep = 0; rep < REPS; rep++) {
    const order: Array<keyof Bootstraps> = rep % 2 === 0
      ? ["chain", "full", "refresh"]
      : ["full", "chain", "refresh"];
    for (const key of order) await run(key);
  }
  return best as Bootstraps;
}

/**
 * Where a chain bootstrap spends its time: download, verify and decode of the full, then each
 * delta's download, verify and decode, and its apply (the steps `restore` takes).
 */
async function breakdown(lab: Lab, chain: Snapshot[]) {
  const dir = await Deno.makeTempDir({ dir: lab.temp });
  const [full, ...deltas] = chain;
  const file = join(dir, "restored.sqlite");
  const fullFetchMs = await time(() => fetchSnapshot(lab.incremental, full, file));
  const stored = join(dir, "full.stored");
  await lab.incremental.download(full.key, stored);
  const fullDecodeMs = await time(() => decodeFile(stored, join(dir, "decoded"), "zstd"));
  const db = new DatabaseSync(file);
  db.exec("PRAGMA journal_mode = MEMORY; PRAGMA synchronous = OFF");
  const perDelta = [];
  for (const delta of deltas) {
    let decoded!: Awaited<ReturnType<typeof fetchDelta>>;
    const fetchMs = await time(async () => {
      decoded = await fetchDelta(lab.incremental, delta, join(dir, "scratch"));
    });
    const applyMs = await time(() => applyDelta(db, decoded, delta.key));
    perDelta.push({
      storedBytes: delta.size ?? 0,
      patchsetBytes: decoded.patchset.length,
      fetchMs: round(fetchMs),
      applyMs: round(applyMs),
    });
  }
  db.close();
  await Deno.remove(dir, { recursive: true });
  return { fullBytes: full.size ?? 0, fullFetchMs: round(fullFetchMs), fullDecodeMs, perDelta };
}

/** What default policy would have met a chain-to-full ratio of 1.5, by these measurements. */
function policyFor(fullMs: number, perDeltaMs: number, deltaBytes: number, fullBytes: number) {
  const budget = 0.5 * fullMs;
  const maxDeltas = Math.floor(budget / perDeltaMs);
  return {
    budgetMs: round(budget),
    perDeltaMs: round(perDeltaMs),
    maxDeltas,
    maxBytesRatio: round((budget / perDeltaMs) * (deltaBytes / fullBytes), 4),
  };
}

/** Figure 9: the chain the policy allowed, the bootstraps, the breakdown and the analysis. */
async function recordRestore(lab: Lab, steps: Step[]): Promise<void> {
  const objects = await listSnapshots(lab.incremental, STREAM, { shardId: SHARD_ID });
  const fulls = objects.filter((s) => s.kind === "full");
  if (fulls.length !== 1) throw new Error(`expected one full snapshot, found ${fulls.length}`);
  const chain = [fulls[0], ...objects.filter((s) => s.kind === "delta")];
  const k = steps.length;
  const target = steps[k - 1].sequenceNumber;
  const previous = k >= 2 ? steps[k - 2].sequenceNumber : chain[0].sequenceNumber;
  log(`figure 9: bootstraps through a full and ${k} deltas, and refreshes`);
  const b = await timeBootstraps(lab, target, previous);
  log(
    `chain ${Math.round(b.chain.ms)} ms, full ${Math.round(b.full.ms)} ms, refresh ${
      Math.round(b.refresh.ms)
    } ms`,
  );
  const parts = await breakdown(lab, chain);
  const deltaBytes = steps.reduce((n, s) => n + s.deltaBytes, 0);
  const ratio = b.chain.ms / b.full.ms;
  const refreshRatio = b.refresh.ms / b.full.ms;
  lab.bench.entry("chainRestore", {
    keys: lab.keys,
    policy: DEFAULT_CHAIN_POLICY,
    deltas: k,
    chainDeltaBytes: deltaBytes,
    chainFullBytes: parts.fullBytes,
    chainBytesRatio: round(deltaBytes / parts.fullBytes, 4),
    chainBootstrapMs: round(b.chain.ms),
    fullBootstrapMs: round(b.full.ms),
    ratio: round(ratio, 3),
    refreshMs: round(b.refresh.ms),
    refreshRatio: round(refreshRatio, 3),
    requests: { chain: b.chain.requests, full: b.full.requests, refresh: b.refresh.requests },
    breakdown: parts,
    measuredCostFactor: round(
      (parts.perDelta.reduce((n, d) => n + d.fetchMs + d.applyMs, 0) / deltaBytes) /
        (parts.fullFetchMs / parts.fullBytes),
      1,
    ),
    plannerCostFactor: DELTA_COST_FACTOR,
    policyMeeting1_5: policyFor(
      b.full.ms,
      (b.chain.ms - b.full.ms) / k,
      deltaBytes / k,
      parts.fullBytes,
    ),
  });
  lab.bench.row(
    "chainRestore",
    `9. bootstrap via full + ${k} deltas (longest default chain) vs one full`,
    `${round(b.chain.ms / 1000)} s vs ${round(b.full.ms / 1000)} s (${
      formatCounts(b.chain.requests)
    } vs ${formatCounts(b.full.requests)})`,
    `${round(ratio, 2)}`,
    "<= 1.5",
  );
  lab.bench.row(
    "chainRestore",
    "9. refresh by one delta vs full bootstrap",
    `${round(b.refresh.ms / 1000, 3)} s vs ${round(b.full.ms / 1000)} s (${
      formatCounts(b.refresh.requests)
    })`,
    `${round(refreshRatio, 3)}`,
    "<= 0.05",
  );
}

/** Figures 7, 8 and 9. */
export async function figuresDeltas(d: DeltaBench): Promise<void> {
  const lab = await setUp(d);
  const steps = await buildChain(lab);
  if (steps.length === 0) throw new Error("the first delta already passed the chain policy");
  recordSizeAndRun(lab, steps);
  await recordRestore(lab, steps);
  await Deno.remove(lab.cacheDir, { recursive: true });
}
