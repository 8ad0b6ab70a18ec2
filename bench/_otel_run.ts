/**
 * One snapshot run applying N generated records through the snapshotter, in its own process,
 * for figure 1's telemetry cost: the parent runs it with and without `OTEL_DENO=true` (exporting
 * to a receiver on loopback) and compares. Prints `{ "applyMs": ... }`.
 *
 * @module
 */
import { FileSnapshotStore, kvGenerator, ShardSnapshotter } from "../mod.ts";
import { materialize } from "./_data.ts";
import { NO_KINESIS } from "./_feed.ts";

const [count, keys, dir] = [Number(Deno.args[0]), Number(Deno.args[1]), Deno.args[2]];
const pages = await materialize(count, keys);
let caughtUp = 0;
const t0 = performance.now();
await new ShardSnapshotter({
  kinesis: NO_KINESIS,
  store: new FileSnapshotStore({ root: `${dir}/store` }),
  stream: "bench",
  shardId: "shardId-000000000000",
  localPath: `${dir}/work`,
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
console.log(JSON.stringify({ applyMs: caughtUp - t0 }));
