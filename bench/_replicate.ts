/**
 * Figure 14, `streambolt replicate` in steady state, on synthetic shards in a file store:
 *
 * - cost per followed shard: CPU time and RSS of a replicator following 1 shard and `many`
 *   shards, idle (no new points) for `windowMs` after every shard holds a point; the difference
 *   divided by `many - 1`;
 * - lag after a publish: from the moment a producer's publish returns to the moment the
 *   replicator has applied that point (committed in the file), with a 1 s poll.
 *
 * The replicator runs in a child process (this module, run as main) with the CLI's V8 flag;
 * Deno refuses /proc reads without every permission, so the child measures itself
 * (`process.cpuUsage()`, RSS sampled every 20 ms) and prints JSON lines.
 *
 * @module
 */
import { join } from "node:path";
import process from "node:process";
import { FileSnapshotStore, Replicator, ShardSnapshotter } from "../mod.ts";
import { kvGenerator } from "../mod.ts";
import { DENO } from "../tests/support/emulators.ts";
import { NO_KINESIS, STREAM, SyntheticShard } from "./_feed.ts";
import { log, mb, type Recorder, round } from "./_results.ts";

/** What the child is asked to do. */
interface ReplicateRunConfig {
  storeRoot: string;
  outDir: string;
  shardIds: string[];
  pollMs: number;
  windowMs: number;
}

/** A shard of the synthetic stream and its producer. */
interface Produced {
  shardId: string;
  feed: SyntheticShard;
  localPath: string;
}

const shardIdOf = (i: number) => `shardId-${String(i).padStart(12, "0")}`;

function producer(store: FileSnapshotStore, p: Produced): ShardSnapshotter {
  return new ShardSnapshotter({
    kinesis: NO_KINESIS,
    store,
    stream: STREAM,
    shardId: p.shardId,
    localPath: p.localPath,
    generator: kvGenerator(),
    source: p.feed.source(),
    chain: { maxRestoreRatio: 100 },
  });
}

/** The child: one replicator, measured; JSON lines on stdout. */
async function child(config: ReplicateRunConfig): Promise<void> {
  const say = (value: unknown) => console.log(JSON.stringify(value));
  const stop = new AbortController();
  Deno.addSignalListener("SIGTERM", () => stop.abort());
  let ready: () => void;
  const isReady = new Promise<void>((resolve) => ready = resolve);
  const replicator = new Replicator({
    store: new FileSnapshotStore({ root: config.storeRoot }),
    stream: STREAM,
    outDir: config.outDir,
    shardIds: config.shardIds,
    pollIntervalMs: config.pollMs,
    logger: {
      debug() {},
      warn: (msg, fields) => console.error(msg, fields),
      info(msg, fields) {
        if (msg === "applied point") say({ applied: fields?.sequenceNumber, at: Date.now() });
        if (msg === "every shard holds a point") ready();
      },
    },
  });
  const running = replicator.run(stop.signal);
  await isReady;
  let peak = 0;
  const sampler = setInterval(() => peak = Math.max(peak, Deno.memoryUsage().rss), 20);
  const cpu = process.cpuUsage();
  await new Promise((resolve) => setTimeout(resolve, config.windowMs));
  const used = process.cpuUsage(cpu);
  clearInterval(sampler);
  say({ steady: { cpuMs: (used.user + used.system) / 1000, peakRss: peak } });
  await running;
}

/** Runs the child on `shardIds` until stopped; resolves its lines as they come. */
function spawnReplicator(config: ReplicateRunConfig, dir: string) {
  const proc = new Deno.Command(DENO, {
    args: [
      "run",
      "--quiet",
      "--v8-flags=--optimize-for-size",
      `--allow-read`,
      `--allow-write=${dir}`,
      "--allow-env",
      "--allow-sys=osRelease",
      new URL(import.meta.url).pathname,
      JSON.stringify(config),
    ],
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  const lines: Array<Record<string, unknown>> = [];
  let notify = () => {};
  const done = (async () => {
    let text = "";
    for await (const chunk of proc.stdout.pipeThrough(new TextDecoderStream())) {
      text += chunk;
      const parts = text.split("\n");
      text = parts.pop()!;
      for (const p of parts) if (p) lines.push(JSON.parse(p));
      notify();
    }
  })();
  const until = async (check: () => Record<string, unknown> | undefined) => {
    for (;;) {
      const found = check();
      if (found) return found;
      await new Promise<void>((resolve) => notify = resolve);
    }
  };
  return { proc, lines, until, done };
}

/** Steady-state CPU and RSS of one replicator over `shards` shards. */
async function steady(dir: string, store: string, shards: number, windowMs: number) {
  const config: ReplicateRunConfig = {
    storeRoot: store,
    outDir: join(dir, `out-${shards}`),
    shardIds: Array.from({ length: shards }, (_, i) => shardIdOf(i)),
    pollMs: 1_000,
    windowMs,
  };
  const run = spawnReplicator(config, dir);
  const line = await run.until(() => run.lines.find((l) => l.steady));
  run.proc.kill("SIGTERM");
  await run.proc.status;
  await run.done;
  return line.steady as { cpuMs: number; peakRss: number };
}

/** Figure 14: cost per followed shard, and lag after a publish. */
export async function figureReplicate(
  bench: Recorder,
  temp: string,
  options: { many: number; keys: number; windowMs: number; publishes: number },
): Promise<void> {
  const dir = await Deno.makeTempDir({ dir: temp, prefix: "replicate-" });
  const storeRoot = join(dir, "store");
  const store = new FileSnapshotStore({ root: storeRoot });
  const shards: Produced[] = Array.from({ length: options.many }, (_, i) => ({
    shardId: shardIdOf(i),
    feed: new SyntheticShard(options.keys),
    localPath: join(dir, `work-${i}`),
  }));
  log(`figure 14: publishing ${options.many} shards of ${options.keys} keys`);
  for (const p of shards) await producer(store, p).snapshotShard();
  const one = await steady(dir, storeRoot, 1, options.windowMs);
  const many = await steady(dir, storeRoot, options.many, options.windowMs);
  const lags = await lagAfterPublish(dir, storeRoot, store, shards[0], options.publishes);
  await Deno.remove(dir, { recursive: true });
  const perShard = {
    cpuMsPerMinute: (many.cpuMs - one.cpuMs) / (options.many - 1) * 60_000 / options.windowMs,
    rssBytes: (many.peakRss - one.peakRss) / (options.many - 1),
  };
  const median = lags.sort((a, b) => a - b)[Math.floor(lags.length / 2)];
  bench.entry("replicate", { ...options, one, many, perShard, lagsMs: lags, medianLagMs: median });
  bench.row(
    "replicate",
    `14. replicate, idle: CPU and RSS per followed shard (1 vs ${options.many} shards, 1 s poll)`,
    `${round(perShard.cpuMsPerMinute, 1)} CPU-ms/min, ${
      round(mb(perShard.rssBytes), 2)
    } MB per shard (1 shard: ${round(one.cpuMs * 60_000 / options.windowMs, 0)} CPU-ms/min, ${
      round(mb(one.peakRss), 1)
    } MB)`,
    `${round(mb(perShard.rssBytes), 2)}`,
    "-",
  );
  bench.row(
    "replicate",
    `14. replicate: lag from a publish to the point applied in the file (1 s poll)`,
    `median ${median} ms of ${lags.length} (${lags.join(", ")} ms)`,
    `${round(median / 1_000, 2)}`,
    "<= 1 poll",
  );
}

/** Publishes `count` deltas on one shard while a replicator follows it; each one's lag. */
async function lagAfterPublish(
  dir: string,
  storeRoot: string,
  store: FileSnapshotStore,
  shard: Produced,
  count: number,
): Promise<number[]> {
  const run = spawnReplicator({
    storeRoot,
    outDir: join(dir, "out-lag"),
    shardIds: [shard.shardId],
    pollMs: 1_000,
    windowMs: 0,
  }, dir);
  await run.until(() => run.lines.find((l) => l.steady));
  const lags: number[] = [];
  for (let i = 0; i < count; i++) {
    shard.feed.append(Math.max(1, Math.round(shard.feed.keys / 100)));
    const point = await producer(store, shard).snapshotShard();
    const published = Date.now();
    const applied = await run.until(() =>
      run.lines.find((l) => l.applied === point.sequenceNumber)
    );
    lags.push(Number(applied.at) - published);
    // Out of phase with the poll, as publishes are in practice.
    await new Promise((resolve) => setTimeout(resolve, 300 + 137 * i));
  }
  run.proc.kill("SIGTERM");
  await run.proc.status;
  await run.done;
  return lags;
}

if (import.meta.main) await child(JSON.parse(Deno.args[0]));
