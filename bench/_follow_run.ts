/**
 * One continuous producer (`ShardSnapshotter.follow`) in its own process, for figure 10: a
 * synthetic shard receives `perInterval` records per publish interval (in 5 ticks), the producer
 * publishes to S3 (fauxqs) every `publishEveryMs`, and after `intervals` publishes it is
 * stopped. Prints, as JSON, its peak RSS over the first `warmup` publishes and over all of
 * them, and the peak of each interval. Deno refuses /proc reads (VmHWM) without every
 * permission, so RSS is sampled: every 5 ms and at every progress event.
 *
 * Argument: the JSON of a {@linkcode FollowRunConfig}. The base (the load of `keys` keys) was
 * published by the parent with `localPath` as its local dir, so following starts from the cache.
 *
 * @module
 */
import { S3Client } from "@aws-sdk/client-s3";
import { NodeHttpHandler } from "@smithy/node-http-handler";
import { kvGenerator, S3SnapshotStore, ShardSnapshotter } from "../mod.ts";
import { NO_KINESIS, SyntheticShard } from "./_feed.ts";

/** What the parent asks for. */
export interface FollowRunConfig {
  /** Distinct keys (the base holds them all). */
  keys: number;
  /** The epoch of the parent's feed, so that the records are the same. */
  epoch: number;
  /** Records arriving per publish interval. */
  perInterval: number;
  /** The publish interval. */
  publishEveryMs: number;
  /** Publishes to follow for. */
  intervals: number;
  /** Publishes of the first measurement. */
  warmup: number;
  /** The producer's local dir (holds the base's cache). */
  localPath: string;
  /** fauxqs. */
  endpoint: string;
  /** Its bucket. */
  bucket: string;
  /** The store prefix. */
  prefix: string;
}

const config: FollowRunConfig = JSON.parse(Deno.args[0]);
const rss = () => Deno.memoryUsage().rss;
const startRss = rss();
let peak = startRss;
/** Per publish interval: peak RSS, peak external (ArrayBuffer) bytes, and what was published. */
const intervals = { rss: [0], external: [0], kinds: [] as string[] };
const sample = () => {
  const now = Deno.memoryUsage();
  peak = Math.max(peak, now.rss);
  const i = intervals.rss.length - 1;
  intervals.rss[i] = Math.max(intervals.rss[i], now.rss);
  intervals.external[i] = Math.max(intervals.external[i], now.external);
};
const sampler = setInterval(sample, 5);

const feed = new SyntheticShard(config.keys, config.epoch);
const TICKS = 5;
const arrivals = setInterval(
  () => feed.append(Math.round(config.perInterval / TICKS)),
  config.publishEveryMs / TICKS,
);

const stop = new AbortController();
let publishes = 0;
let fulls = 0;
let fullNow = false;
let warmupPeak = 0;
let warmupMemory: Deno.MemoryUsage | undefined;
let allPeak = 0;
const s3 = new S3Client({
  endpoint: config.endpoint,
  region: "us-east-1",
  credentials: { accessKeyId: "test", secretAccessKey: "test" },
  forcePathStyle: true,
  requestHandler: new NodeHttpHandler({ connectionTimeout: 2_000, requestTimeout: 10_000 }),
  maxAttempts: 5,
});
const t0 = performance.now();
await new ShardSnapshotter({
  kinesis: NO_KINESIS,
  store: new S3SnapshotStore({ client: s3, bucket: config.bucket, prefix: config.prefix }),
  stream: "users",
  shardId: "shardId-000000000000",
  localPath: config.localPath,
  generator: kvGenerator(),
  source: feed.source(),
  pollIntervalMs: 50,
  onProgress: (p) => {
    sample();
    if (p.phase === "compact") fullNow = true;
    if (p.phase !== "done" || stop.signal.aborted) return;
    publishes++;
    intervals.kinds.push(fullNow ? "delta+full" : "delta");
    if (fullNow) fulls++;
    fullNow = false;
    if (publishes === config.warmup) {
      warmupPeak = peak;
      warmupMemory = Deno.memoryUsage();
    }
    if (publishes === config.intervals) {
      allPeak = peak;
      clearInterval(arrivals);
      stop.abort();
    } else {
      intervals.rss.push(0);
      intervals.external.push(0);
    }
  },
}).follow({ publishEveryMs: config.publishEveryMs, stop: stop.signal });
const ms = performance.now() - t0;
clearInterval(sampler);
clearInterval(arrivals);
s3.destroy();
console.log(JSON.stringify({
  ...config,
  publishes,
  fullsAmongThem: fulls,
  recordsArrived: feed.tip - config.keys,
  ms: Math.round(ms),
  startRssBytes: startRss,
  warmupPeakRssBytes: warmupPeak,
  peakRssBytes: allPeak,
  warmupMemory,
  endMemory: Deno.memoryUsage(),
  intervalPeakRssBytes: intervals.rss,
  intervalPeakExternalBytes: intervals.external,
  intervalPublished: intervals.kinds,
}));
