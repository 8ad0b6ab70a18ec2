/**
 * Figure 10, the continuous producer (`ShardSnapshotter.follow`), on a synthetic shard in
 * fauxqs:
 *
 * - memory: peak RSS over `intervals` publish intervals against the peak over the first 5, in
 *   a child process with the CLI's V8 flag (bench/_follow_run.ts);
 * - requests: after following for `publishes` publishes (and, to compare, after 20), the S3
 *   requests, by command, of one producer delta run with its cache, one consumer bootstrap and
 *   one refresh.
 *
 * @module
 */
import { join } from "node:path";
import type { S3Client } from "@aws-sdk/client-s3";
import { listSnapshots, S3SnapshotStore, ShardSnapshotFinder, type Snapshot } from "../mod.ts";
import { DENO } from "../tests/support/emulators.ts";
import { feedProducer, SHARD_ID, STREAM, SyntheticShard } from "./_feed.ts";
import type { FollowRunConfig } from "./_follow_run.ts";
import { formatCounts, type RequestCounter, type RequestCounts } from "./_requests.ts";
import { log, mb, type Recorder, round } from "./_results.ts";

/** What figure 10 works with. */
export interface FollowBench {
  /** This run's results. */
  bench: Recorder;
  /** Scratch directory. */
  temp: string;
  /** S3 (fauxqs). */
  s3: S3Client;
  /** Its endpoint. */
  endpoint: string;
  /** Its bucket, created. */
  bucket: string;
  /** Counts the S3 client's requests. */
  counter: RequestCounter;
  /** Distinct keys. */
  keys: number;
}

/** Publishes the load of a new feed, leaving the producer's cache in `localPath`. */
async function publishBase(
  f: FollowBench,
  prefix: string,
  localPath: string,
): Promise<[S3SnapshotStore, SyntheticShard]> {
  const store = new S3SnapshotStore({ client: f.s3, bucket: f.bucket, prefix });
  const feed = new SyntheticShard(f.keys);
  await feedProducer(store, localPath, feed).snapshotShard();
  return [store, feed];
}

/** Figure 10, memory: the follower in its own process. */
export async function figureFollowMemory(
  f: FollowBench,
  options: { perInterval: number; publishEveryMs: number; intervals: number },
): Promise<void> {
  const dir = await Deno.makeTempDir({ dir: f.temp });
  const localPath = join(dir, "work");
  const prefix = "follow-memory";
  const [, feed] = await publishBase(f, prefix, localPath);
  const config: FollowRunConfig = {
    keys: f.keys,
    epoch: feed.epoch,
    ...options,
    warmup: 5,
    localPath,
    endpoint: f.endpoint,
    bucket: f.bucket,
    prefix,
  };
  log(`figure 10: following for ${options.intervals} publishes of ${options.perInterval} records`);
  const out = await new Deno.Command(DENO, {
    args: [
      "run",
      "--quiet",
      "--v8-flags=--optimize-for-size",
      `--allow-read=${dir},${Deno.env.get("HOME")}/.aws`,
      `--allow-write=${dir}`,
      `--allow-net=${new URL(f.endpoint).host}`,
      "--allow-env",
      "--allow-sys=osRelease",
      new URL("./_follow_run.ts", import.meta.url).pathname,
      JSON.stringify(config),
    ],
    stdout: "piped",
    stderr: "inherit",
  }).output();
  if (!out.success) throw new Error("follow run failed");
  const { localPath: _, endpoint: __, epoch: ___, ...result } = JSON.parse(
    new TextDecoder().decode(out.stdout),
  );
  await Deno.remove(dir, { recursive: true });
  const ratio = result.peakRssBytes / result.warmupPeakRssBytes;
  f.bench.entry("followMemory", { ...result, ratio: round(ratio, 3) });
  f.bench.row(
    "followMemory",
    `10. follow: peak RSS over ${result.publishes} publishes vs first 5 (CLI's V8 flags)`,
    `${round(mb(result.peakRssBytes), 1)} MB vs ${round(mb(result.warmupPeakRssBytes), 1)} MB (${
      options.perInterval.toLocaleString("en")
    } records per ${options.publishEveryMs} ms interval, ${f.keys.toLocaleString("en")} keys)`,
    `${round(ratio, 3)}`,
    "<= 1.10",
  );
}

/** The shard the request counts are taken on: one feed, one producer dir, one store. */
interface Followed {
  store: S3SnapshotStore;
  feed: SyntheticShard;
  localPath: string;
  change: number;
  publishes: number;
}

/**
 * Follows until at least `total` publishes were made in all and (with `endOnFull`) the last one
 * was a full snapshot, so that the counts after it start from the same place in the chain.
 * Records arrive right after each publish: one point per change, as fast as the producer goes.
 *
 * @returns The S3 requests the follower made meanwhile, and the publishes they were for.
 */
async function followUntil(
  f: FollowBench,
  s: Followed,
  total: number,
  endOnFull = true,
): Promise<{ publishes: number; requests: RequestCounts }> {
  const stop = new AbortController();
  const before = s.publishes;
  let full = false;
  const follower = feedProducer(s.store, s.localPath, s.feed, {
    pollIntervalMs: 1_000,
    onProgress: (p) => {
      if (p.phase === "compact") full = true;
      if (p.phase !== "done") return;
      s.publishes++;
      if (s.publishes >= total && (full || !endOnFull)) stop.abort();
      else s.feed.append(s.change);
      full = false;
    },
  });
  s.feed.append(s.change);
  const [, requests] = await f.counter.count(() =>
    follower.follow({ publishEveryMs: 0, stop: stop.signal })
  );
  return { publishes: s.publishes - before, requests };
}

/** The counts after following: a consumer bootstrap, a refresh, a producer run. */
interface Counts {
  publishes: number;
  objectsListed: number;
  bootstrap: RequestCounts;
  refresh: RequestCounts;
  producerRun: RequestCounts;
  producerPublished: string;
  objectsAfterRun: number;
}

/**
 * With the store as the follower left it: (b) a consumer bootstrap from an empty dir, then,
 * after the follower published one more point, (c) a refresh of that copy by one delta; then
 * (a) one producer run with its cache, which publishes a delta (and collects what the follower
 * left).
 */
async function countRequests(f: FollowBench, s: Followed): Promise<Counts> {
  const objects = async () => (await listSnapshots(s.store, STREAM, { shardId: SHARD_ID })).length;
  const objectsListed = await objects();
  const publishes = s.publishes;
  const finder = new ShardSnapshotFinder({
    store: s.store,
    stream: STREAM,
    shardId: SHARD_ID,
    localPath: await Deno.makeTempDir({ dir: f.temp }),
  });
  const [latest, bootstrap] = await f.counter.count(() => finder.downloadLatestSnapshot());
  await followUntil(f, s, s.publishes + 1, false);
  const [refreshed, refresh] = await f.counter.count(() =>
    finder.downloadLatestSnapshot({ refresh: true })
  );
  if (!latest || refreshed?.kind !== "delta") throw new Error("the refresh did not take a delta");
  await Deno.remove(finder.localPath, { recursive: true });
  s.feed.append(s.change);
  const [run, producerRun] = await f.counter.count(() =>
    feedProducer(s.store, s.localPath, s.feed).snapshotShard()
  );
  return {
    publishes,
    objectsListed,
    bootstrap,
    refresh,
    producerRun,
    producerPublished: (run as Snapshot).kind,
    objectsAfterRun: await objects(),
  };
}

const total = (counts: RequestCounts) => Object.values(counts).reduce((a, b) => a + b, 0);

/**
 * Follows a new shard (its own prefix and producer dir) for `publishes` publishes, then counts
 * the requests of a bootstrap, a refresh and a producer run.
 */
async function countAfter(f: FollowBench, publishes: number) {
  const localPath = join(f.temp, `requests-${publishes}`);
  const [store, feed] = await publishBase(f, `requests-${publishes}`, localPath);
  const s: Followed = { store, feed, localPath, change: Math.round(f.keys / 100), publishes: 0 };
  const following = await followUntil(f, s, publishes);
  const counts = await countRequests(f, s);
  await Deno.remove(localPath, { recursive: true });
  return { following, ...counts };
}

/** Figure 10, requests: counts after 20 publishes and after `publishes`, each on its own shard. */
export async function figureRequests(f: FollowBench, publishes: number): Promise<void> {
  const early = Math.min(20, publishes);
  log(`figure 10: S3 requests after ${early} and ${publishes} publishes`);
  const atEarly = await countAfter(f, early);
  const atLate = await countAfter(f, publishes);
  f.bench.entry("requests", {
    keys: f.keys,
    changePerPublish: Math.round(f.keys / 100),
    early: atEarly,
    late: atLate,
  });
  const row = (what: string, key: "producerRun" | "bootstrap" | "refresh", note = "") =>
    f.bench.row(
      "requests",
      `10. S3 requests of ${what}, after ${atEarly.publishes} vs ${atLate.publishes} publishes`,
      `${formatCounts(atEarly[key])} vs ${formatCounts(atLate[key])}${note}`,
      (total(atLate[key]) / total(atEarly[key])).toFixed(2),
      "same",
    );
  row(
    "one consumer bootstrap",
    "bootstrap",
    ` (objects listed: ${atEarly.objectsListed} vs ${atLate.objectsListed})`,
  );
  row("one refresh", "refresh");
  row("one producer delta run (cache)", "producerRun");
}
