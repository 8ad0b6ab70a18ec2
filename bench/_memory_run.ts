/**
 * One snapshot run applying N generated records through the snapshotter, in its own process,
 * printing its peak RSS as JSON. Run by bench.ts for the memory figure. Deno refuses /proc
 * reads (VmHWM) without every permission, so RSS is sampled: every 5 ms and after each batch.
 *
 * @module
 */
import { FileSnapshotStore, kvGenerator, ShardSnapshotter } from "../mod.ts";
import { eventPages } from "./_data.ts";

const count = Number(Deno.args[0]);
const dir = Deno.args[1];
let peak = Deno.memoryUsage().rss;
const sample = () => (peak = Math.max(peak, Deno.memoryUsage().rss));
const timer = setInterval(sample, 5);
const pages = eventPages(count, 100_000);
const snapshot = await new ShardSnapshotter({
  kinesis: {
    send: () => Promise.reject(new Error("no Kinesis in this run")),
    config: { region: "none" },
  },
  store: new FileSnapshotStore({ root: `${dir}/store` }),
  stream: "bench",
  shardId: "shardId-000000000000",
  localPath: `${dir}/work`,
  generator: kvGenerator(),
  source: () => pages,
  onProgress: sample,
}).snapshotShard();
sample();
clearInterval(timer);
console.log(JSON.stringify({ records: count, peakRssBytes: peak, key: snapshot.key }));
