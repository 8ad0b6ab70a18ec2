/**
 * Figures 7-9, measured together on one synthetic shard of `keys` keys (default 1,000,000) in
 * fauxqs:
 *
 * - 7. stored bytes of the delta after 1% of the keys changed, against the stored bytes of a
 *   full snapshot of the same state;
 * - 8. wall time of that incremental run (the producer's local cache, a delta) against its
 *   floor: applying the same changes alone to a copy of the same database (the delta's patchset
 *   by `applyChangeset`, or the generator's upserts of the same records, in one transaction,
 *   with the journal off or in memory; the cheapest of the four), measured right after each run.
 *   Beside it, a full run of the same change (a fresh local dir, `full: true`: download, apply,
 *   compact, encode, upload);
 * - 9. a consumer's bootstrap through the longest chain the default policy allows, against its
 *   floor, a bootstrap from one full snapshot of the same state; and a refresh by one delta,
 *   against its floor: `applyChangeset` of the same patchset to a copy of the base file, nothing
 *   else (journal off or in memory, the cheaper), timed alternately with the refreshes.
 *
 * Two prefixes hold the same base (a full snapshot of the load): `incremental`, where a producer
 * with its cache publishes a delta per 1% change, and `full`, where a producer with a fresh
 * local dir publishes a full snapshot of the same change. Steps repeat until the incremental
 * producer's run also writes a full snapshot (the chain passed the policy); that last run's
 * objects are removed, which leaves the longest chain the policy allows.
 *
 * @module
 */
import { basename, dirname, join } from "node:path";
import { constants, DatabaseSync } from "node:sqlite";
import type { S3Client } from "@aws-sdk/client-s3";
import {
  DEFAULT_CHAIN_POLICY,
  kvGenerator,
  listSnapshots,
  S3SnapshotStore,
  type ShardRecord,
  ShardSnapshotFinder,
  type ShardSnapshotterOptions,
  type Snapshot,
  type SnapshotProgress,
} from "../mod.ts";
import { decodeFile } from "../src/_codec.ts";
import { applyDelta, fetchDelta } from "../src/_delta.ts";
import { DELTA_COST_FACTOR } from "../src/_restore.ts";
import { fetchSnapshot } from "../src/_fetch.ts";
import { PRODUCER_COPY_DIR } from "../src/_local_copy.ts";
import { localSnapshotFile } from "../src/snapshot_key.ts";
import { time } from "./_data.ts";
import { feedProducer, SHARD_ID, STREAM, SyntheticShard } from "./_feed.ts";
import { formatCounts, type RequestCounter, type RequestCounts } from "./_requests.ts";
import { log, mb, type Recorder, round } from "./_results.ts";

const REPS = 3;
/** Timings of each floor variant per incremental step (figure 8). */
const FLOOR_REPS = 2;

/** The targets the issue restates figures 8 and 9 against. */
const RUN_FLOOR_TARGET = 1.3;
const REFRESH_FLOOR_TARGET = 1.3;
const CHAIN_TARGET = 1.5;

/** The pragmas a floor is timed with: the cheapest (no journal) and the restore's own. */
const JOURNALS = {
  off: "PRAGMA journal_mode = OFF; PRAGMA synchronous = OFF",
  memory: "PRAGMA journal_mode = MEMORY; PRAGMA synchronous = OFF",
} as const;
type Journal = keyof typeof JOURNALS;

/**
 * A connection to `file` with `journal`'s pragmas, checked: node:sqlite's defensive mode
 * (its default) ignores `journal_mode = OFF` without an error, so it is opened without it, as
 * a restore's scratch file is.
 */
function openWith(file: string, journal: Journal): DatabaseSync {
  const db = new DatabaseSync(
    file,
    { defensive: false } as ConstructorParameters<
      typeof DatabaseSync
    >[1],
  );
  db.exec(JOURNALS[journal]);
  const { journal_mode } = db.prepare("PRAGMA journal_mode").get() as { journal_mode: string };
  if (journal_mode !== journal) {
    db.close();
    throw new Error(`the journal is ${journal_mode}, not ${journal}`);
  }
  return db;
}

/** One floor variant's best time, by name (e.g. `changeset, journal off`). */
type FloorTimes = Record<string, number>;

/** Figure 8's context variant that records the upserts in a session and takes its patchset. */
const SESSION = "upserts recorded by a session, journal memory";

/**
 * The journal a refresh applies its deltas under: it brings forward the point the consumer holds,
 * so a delta that fails must roll back onto that point (journal off cannot roll back).
 */
const REFRESH_JOURNAL = "changeset, journal memory";

/** What else {@linkcode timeApplyAlone} does inside the clock, for context. */
interface AlsoTime {
  /** Record the changes in a session and take its patchset, as the run does for its delta. */
  session?: boolean;
  /** fsync the file after closing it, as the run does before it keeps its local copy. */
  sync?: boolean;
  /** Set by the timing, with `session`: the ms of taking the patchset alone (inside the clock). */
  patchsetMs?: number;
}

/**
 * Copies `base` to a scratch file, then times opening it with `journal`'s pragmas, `apply` in
 * one transaction, and closing it (the changes are in the file): the work of applying a set of
 * changes to the database and nothing else (unless `also` asks). The scratch file is removed.
 */
async function timeApplyAlone(
  base: string,
  scratchDir: string,
  journal: Journal,
  apply: (db: DatabaseSync) => void,
  also: AlsoTime = {},
): Promise<number> {
  const file = join(scratchDir, `floor-${crypto.randomUUID()}.sqlite`);
  await Deno.copyFile(base, file);
  try {
    return await time(async () => {
      const db = openWith(file, journal);
      try {
        const session = also.session ? db.createSession() : undefined;
        db.exec("BEGIN IMMEDIATE");
        apply(db);
        db.exec("COMMIT");
        if (session) {
          const taken = performance.now();
          session.patchset();
          also.patchsetMs = performance.now() - taken;
          session.close();
        }
      } finally {
        db.close();
      }
      if (also.sync) {
        using handle = await Deno.open(file, { read: true, write: true });
        await handle.sync();
      }
    });
  } finally {
    await Deno.remove(file);
  }
}

/** `applyChangeset` of a patchset, aborting on any conflict (as a restore does). */
function applyPatchset(patchset: Uint8Array): (db: DatabaseSync) => void {
  return (db) => {
    const ok = db.applyChangeset(patchset, { onConflict: () => constants.SQLITE_CHANGESET_ABORT });
    if (!ok) throw new Error("the floor's patchset conflicts with its base");
  };
}

/** The cheapest of the variants: its name and time. */
function cheapest(times: FloorTimes): { method: string; ms: number } {
  const [method, ms] = Object.entries(times).reduce((a, b) => (b[1] < a[1] ? b : a));
  return { method, ms };
}

/** The best of each variant's times. */
function bestOf(samples: Array<FloorTimes>): FloorTimes {
  const best: FloorTimes = {};
  for (const sample of samples) {
    for (const [name, ms] of Object.entries(sample)) best[name] = Math.min(best[name] ?? ms, ms);
  }
  return Object.fromEntries(Object.entries(best).map(([k, v]) => [k, round(v)]));
}

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
  /** The latest point the incremental producer published (its local copy holds it). */
  point: string;
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
  /** Figure 8's floor variants timed after this step's run (best of FLOOR_REPS each). */
  floor: FloorTimes;
  /** More than the floor, timed alongside it. */
  context: FloorTimes;
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
    point: "",
  };
  log(`figures 7-9: loading ${d.keys} keys through the snapshotter`);
  const base = await feedProducer(lab.incremental, lab.cacheDir, lab.feed).snapshotShard();
  lab.point = base.sequenceNumber;
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

/** The incremental producer's local copy of `lab.point` (the file its next run builds on). */
function producerCopy(lab: Lab): string {
  const shared = localSnapshotFile(lab.cacheDir, {
    stream: STREAM,
    shardId: SHARD_ID,
    sequenceNumber: lab.point,
    final: false,
  });
  return join(dirname(shared), PRODUCER_COPY_DIR, basename(shared));
}

/** Figure 8's floor variants and, for context, timings of more than the floor. */
interface RunFloor {
  /** The floor's variants (best of FLOOR_REPS each). */
  floor: FloorTimes;
  /** More than the floor, timed alongside (best of FLOOR_REPS each). */
  context: FloorTimes;
}

/**
 * Figure 8's floor for one step: the step's changes applied alone to `base` (a copy of the
 * database the run built on), four ways, each FLOOR_REPS times in alternating order: the
 * delta's patchset by `applyChangeset`, and the generator's own upserts of the step's records
 * (made before the clock starts), each with the journal off and in memory. For context, and not
 * part of the floor: the bench's own cost of making the records (inside the run, the synthetic
 * source makes them), the upserts with a session recording them (the run's apply, as it also
 * records its delta), and the patchset followed by an fsync (the run syncs its local copy).
 */
async function runFloor(lab: Lab, base: string, delta: Snapshot, from: number): Promise<RunFloor> {
  const { patchset } = await fetchDelta(lab.incremental, delta, join(lab.temp, "floor-delta"));
  const count = lab.feed.tip - from;
  let records: ShardRecord[] = [];
  const sourceMs = await time(() => {
    records = Array.from({ length: count }, (_, j) => lab.feed.record(from + j));
  });
  const upserts = (db: DatabaseSync) => {
    kvGenerator().onRecords(db, { shardId: SHARD_ID, millisBehindLatest: 0, records });
  };
  type Variant = [string, Journal, (db: DatabaseSync) => void, AlsoTime?];
  const variants: Variant[] = [
    ["changeset, journal off", "off", applyPatchset(patchset)],
    ["upserts, journal off", "off", upserts],
    ["changeset, journal memory", "memory", applyPatchset(patchset)],
    ["upserts, journal memory", "memory", upserts],
  ];
  const context: Variant[] = [
    [SESSION, "memory", upserts, { session: true }],
    ["changeset, journal memory, then fsync", "memory", applyPatchset(patchset), { sync: true }],
  ];
  const samples: FloorTimes[] = [];
  const contextSamples: FloorTimes[] = [];
  for (let rep = 0; rep < FLOOR_REPS; rep++) {
    const floor: FloorTimes = {};
    const more: FloorTimes = {};
    const order = [...variants, ...context];
    if (rep % 2 === 1) order.reverse();
    for (const [name, journal, apply, also] of order) {
      const ms = await timeApplyAlone(base, lab.temp, journal, apply, also);
      (variants.some((v) => v[0] === name) ? floor : more)[name] = ms;
      if (also?.patchsetMs !== undefined) more[`${name}: of which the patchset`] = also.patchsetMs;
    }
    samples.push(floor);
    contextSamples.push({ ...more, "making the records (the bench's synthetic source)": sourceMs });
  }
  return { floor: bestOf(samples), context: bestOf(contextSamples) };
}

/**
 * Appends a change and publishes it both ways, until the incremental producer's run also
 * writes a full snapshot; that run's objects are then removed again.
 */
async function buildChain(lab: Lab): Promise<Step[]> {
  const steps: Step[] = [];
  for (let step = 0; step <= DEFAULT_CHAIN_POLICY.maxDeltas; step++) {
    const base = join(lab.temp, "floor-base.sqlite");
    await Deno.copyFile(producerCopy(lab), base);
    const from = lab.feed.tip;
    lab.feed.append(lab.change);
    const sequenceNumber = lab.feed.sequenceNumber(lab.feed.tip - 1);
    const [delta, incrementalMs, incrementalMarks] = await incrementalRun(lab);
    if (delta.kind === "full") {
      log(`step ${step + 1}: the policy called for a full snapshot; the chain stops before it`);
      const objects = await listSnapshots(lab.incremental, STREAM, { shardId: SHARD_ID });
      const last = objects.filter((s) => s.sequenceNumber === sequenceNumber);
      await lab.incremental.delete(last.map((s) => s.key));
      await Deno.remove(base);
      break;
    }
    lab.point = delta.sequenceNumber;
    const { floor, context } = await runFloor(lab, base, delta, from);
    await Deno.remove(base);
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
      floor,
      context,
    });
    log(
      `step ${step + 1}: delta ${delta.size} B in ${
        Math.round(incrementalMs)
      } ms (its changes alone: ${cheapest(floor).ms} ms), full ${full.size} B in ${
        Math.round(fullMs)
      } ms`,
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
  const variants = bestOf(steps.map((s) => s.floor));
  const floor = cheapest(variants);
  const floorRatio = incrementalMs / floor.ms;
  const context = bestOf(steps.map((s) => s.context));
  // A delta is recorded by a session and taken as its patchset: the run's own way to its product.
  const recorded = context[SESSION];
  const ofWhich = context[`${SESSION}: of which the patchset`];
  lab.bench.entry("incrementalRun", {
    keys: lab.keys,
    changedKeys: lab.change,
    runs: steps.length,
    incrementalMs: round(incrementalMs),
    fullMs: round(fullMs),
    ratio: round(incrementalMs / fullMs, 3),
    floor: {
      what:
        "the run's changes applied alone to a copy of the database it built on, in one transaction, from open to close; the cheapest of the variants (best of each)",
      ms: floor.ms,
      method: floor.method,
      variants,
      ratio: round(floorRatio, 3),
      target: RUN_FLOOR_TARGET,
      context,
      ratioToRecorded: round(incrementalMs / recorded, 3),
    },
    everyRunUsedTheCache: allCached,
    phases:
      "ms from the run's start at which each phase ended: setup (list, cache or restore, open), applied, compact (starts), encoded, published (put, fork check), end (close, keep the cache, collect)",
    steps: steps.map((s) => ({
      incremental: s.incrementalMarks,
      full: s.fullMarks,
      floor: s.floor,
    })),
  });
  lab.bench.row(
    "incrementalRun",
    `8. incremental run (cache, delta) vs applying its changes alone, ${what}`,
    `${round(incrementalMs / 1000, 3)} s vs ${
      round(floor.ms / 1000, 3)
    } s (${floor.method}); full run ${round(fullMs / 1000)} s, ${
      round(incrementalMs / fullMs, 3)
    }x (best of ${steps.length})${
      allCached ? "" : " NOT ALL FROM CACHE"
    }; the upserts recorded by a session and its patchset taken ${
      round(recorded / 1000, 3)
    } s (the patchset ${round(ofWhich / 1000, 3)} s)`,
    `${round(floorRatio, 2)} (${round(incrementalMs / recorded, 2)} vs the session's)`,
    `<= ${RUN_FLOOR_TARGET}`,
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
  /** The refresh's floor variants (`applyChangeset` alone, by journal), best of REPS each. */
  refreshFloor: FloorTimes;
}

/**
 * Figure 9's timings: chain and full bootstraps alternately, and refreshes, each followed by
 * its floor (the refresh's patchset applied alone to a copy of the same local point, with the
 * journal off and in memory, in alternating order), best of REPS.
 */
async function timeBootstraps(
  lab: Lab,
  target: string,
  previous: string,
  patchset: Uint8Array,
): Promise<Bootstraps> {
  const template = await localPointTemplate(lab, previous);
  const floors: FloorTimes[] = [];
  const best: Partial<Bootstraps> = {};
  type Kind = "chain" | "full" | "refresh";
  const keep = (key: Kind, r: { ms: number; requests: RequestCounts }) => {
    if (!best[key] || r.ms < best[key].ms) best[key] = { ms: r.ms, requests: r.requests };
  };
  const run = async (key: Kind) => {
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
    const order: Kind[] = rep % 2 === 0
      ? ["chain", "full", "refresh"]
      : ["full", "chain", "refresh"];
    for (const key of order) await run(key);
    const journals: Journal[] = rep % 2 === 0 ? ["off", "memory"] : ["memory", "off"];
    const sample: FloorTimes = {};
    for (const journal of journals) {
      sample[`changeset, journal ${journal}`] = await timeApplyAlone(
        template,
        lab.temp,
        journal,
        applyPatchset(patchset),
      );
    }
    floors.push(sample);
  }
  await Deno.remove(template);
  return { ...best, refreshFloor: bestOf(floors) } as Bootstraps;
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
  const db = openWith(file, "off"); // as restore() applies deltas after a full snapshot
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
  const last = chain.find((s) => s.sequenceNumber === target && s.kind === "delta");
  if (last?.baseSequenceNumber !== previous) throw new Error(`no delta from ${previous}`);
  const { patchset } = await fetchDelta(lab.incremental, last, join(lab.temp, "floor-delta"));
  log(`figure 9: bootstraps through a full and ${k} deltas, and refreshes`);
  const b = await timeBootstraps(lab, target, previous, patchset);
  const refreshFloor = cheapest(b.refreshFloor);
  log(
    `chain ${Math.round(b.chain.ms)} ms, full ${Math.round(b.full.ms)} ms, refresh ${
      Math.round(b.refresh.ms)
    } ms (its patchset alone: ${refreshFloor.ms} ms)`,
  );
  const parts = await breakdown(lab, chain);
  const deltaBytes = steps.reduce((n, s) => n + s.deltaBytes, 0);
  const ratio = b.chain.ms / b.full.ms;
  const refreshRatio = b.refresh.ms / b.full.ms;
  const refreshFloorRatio = b.refresh.ms / refreshFloor.ms;
  const rollbackMs = b.refreshFloor[REFRESH_JOURNAL];
  const rollbackRatio = b.refresh.ms / rollbackMs;
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
    floor: {
      what: "a bootstrap from one full snapshot of the same state",
      ms: round(b.full.ms),
      ratio: round(ratio, 3),
      target: CHAIN_TARGET,
    },
    refreshMs: round(b.refresh.ms),
    refreshRatio: round(refreshRatio, 3),
    refreshFloor: {
      what:
        "the refresh's patchset applied alone by applyChangeset to a copy of the same local point, in one transaction, from open to close; the cheaper journal (best of each)",
      ms: refreshFloor.ms,
      method: refreshFloor.method,
      variants: b.refreshFloor,
      patchsetBytes: patchset.length,
      ratio: round(refreshFloorRatio, 3),
      ratioToRollback: round(rollbackRatio, 3),
      target: REFRESH_FLOOR_TARGET,
    },
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
    `9. bootstrap via full + ${k} deltas (longest default chain) vs one full (its floor)`,
    `${round(b.chain.ms / 1000)} s vs ${round(b.full.ms / 1000)} s (${
      formatCounts(b.chain.requests)
    } vs ${formatCounts(b.full.requests)})`,
    `${round(ratio, 2)}`,
    `<= ${CHAIN_TARGET}`,
  );
  lab.bench.row(
    "chainRestore",
    "9. refresh by one delta vs applying its patchset alone",
    `${round(b.refresh.ms / 1000, 3)} s vs ${
      round(refreshFloor.ms / 1000, 3)
    } s (${refreshFloor.method}); full bootstrap ${round(b.full.ms / 1000)} s, ${
      round(refreshRatio, 3)
    }x (${formatCounts(b.refresh.requests)}); under the journal a refresh needs to roll back ` +
      `onto the point it holds (memory) ${round(rollbackMs / 1000, 3)} s`,
    `${round(refreshFloorRatio, 2)} (${round(rollbackRatio, 2)} vs journal memory)`,
    `<= ${REFRESH_FLOOR_TARGET}`,
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
