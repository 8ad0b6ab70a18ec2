/**
 * `streambolt replicate`: a sidecar that keeps one plain SQLite file per shard current, for
 * readers in any language.
 *
 * @module
 */
import { Replicator } from "../replicate.ts";
import { assertName } from "../snapshot_key.ts";
import { LOG_HELP, out, parse, parseDuration, streamArg, UsageError } from "./_common.ts";
import { cliLogger } from "./_log.ts";
import { openCliStore, STORE_HELP, STORE_OPTIONS } from "./_store.ts";
import { loadGenerator, parseWorker } from "./snapshot.ts";

/** Help for the command. */
export const HELP = `Usage: streambolt replicate --stream NAME --store URL --out DIR [options]

Keeps one plain SQLite file per shard current at DIR/<stream>/<shardId>.sqlite (WAL mode),
for readers in any language to open read-only. Each new point is applied in one transaction
with its sequence number (table streambolt_meta), so a reader sees whole points only.
By default it follows the store: each new delta is applied as it appears, a full snapshot
only when no delta leads on, and no Kinesis read permission is needed (the whole stream needs
kinesis:ListShards to find the open shards and their hash key ranges; --shard needs nothing).
DIR/<stream>/shards.json lists the open shards' files and hash key ranges (route a key with
the MD5 of its partition key; the ranges come from ListShards, so --shard with the store
leaves them out); DIR/<stream>/status.json each shard's point, age and state.
SIGINT/SIGTERM stop it with every file at a whole point; a restart resumes from the files.

Options:
  --stream NAME               the Kinesis stream (required)
  --shard ID                  a shard to follow; repeat for several (default: every open
                              shard; children of a reshard are picked up)
${STORE_HELP}
  --out DIR                   where the files go (required)
  --from store|kinesis        store: apply the published points (default); kinesis: read
                              the shards and apply their records through --generator
  --generator kv|log|PATH     with --from kinesis (default: kv)
  --poll DURATION             how often to look for new points (default: 5s for the store,
                              1s for Kinesis; at least 200ms)
  --worker I/N                follow only worker I's stable share of N shards (auto/N as for
                              snapshot); give each worker its own --out
  --ready-file PATH           create PATH once every shard holds a point (a readiness probe)
  -q, --quiet                 no info logs
  -v, --verbose               debug logs
${LOG_HELP}
  -h, --help                  this help`;

/** The command's options, parsed and checked; `undefined` for --help. */
function parseReplicateArgs(args: string[]) {
  const { values } = parse("replicate", args, {
    ...STORE_OPTIONS,
    stream: { type: "string" },
    shard: { type: "string", multiple: true },
    out: { type: "string" },
    from: { type: "string" },
    generator: { type: "string" },
    poll: { type: "string" },
    worker: { type: "string" },
    "ready-file": { type: "string" },
  });
  if (values.help) return undefined;
  const stream = streamArg(values, "replicate");
  const outDir = values.out as string | undefined;
  if (!outDir) {
    throw new UsageError(`Cannot run "replicate" as --out is required: current value is null`);
  }
  const from = (values.from as string | undefined) ?? "store";
  if (from !== "store" && from !== "kinesis") {
    throw new UsageError(
      `Cannot use --from as it must be store or kinesis: current value is ${JSON.stringify(from)}`,
    );
  }
  if (values.generator !== undefined && from !== "kinesis") {
    throw new UsageError(
      `Cannot use --generator without --from kinesis: current value is ${
        JSON.stringify(values.generator)
      }`,
    );
  }
  const shardIds = ((values.shard as string[] | undefined) ?? []).map((s) =>
    assertName("shard", s)
  );
  return {
    values,
    stream,
    outDir,
    from: from as "store" | "kinesis",
    shardIds: shardIds.length > 0 ? shardIds : undefined,
    pollIntervalMs: values.poll === undefined
      ? undefined
      : parseDuration("poll", values.poll as string),
    worker: values.worker === undefined ? undefined : parseWorker(values.worker as string),
  };
}

/** Runs the command. */
export async function run(args: string[]): Promise<number> {
  const parsed = parseReplicateArgs(args);
  if (!parsed) {
    out(HELP);
    return 0;
  }
  const { values, from } = parsed;
  const store = await openCliStore(values, "replicate");
  const logger = cliLogger({ quiet: values.quiet as boolean, verbose: values.verbose as boolean });
  const needsKinesis = from === "kinesis" || !parsed.shardIds;
  const kinesis = needsKinesis ? (await import("./_aws.ts")).makeKinesisClient() : undefined;
  try {
    const replicator = new Replicator({
      store,
      stream: parsed.stream,
      outDir: parsed.outDir,
      shardIds: parsed.shardIds,
      follow: from,
      kinesis,
      generator: from === "kinesis"
        ? await loadGenerator((values.generator as string | undefined) ?? "kv")
        : undefined,
      pollIntervalMs: parsed.pollIntervalMs,
      worker: parsed.worker,
      readyFile: values["ready-file"] as string | undefined,
      logger,
    });
    await untilSignal(async (signal) => await replicator.run(signal), () => {
      logger.info("stopping: finishing the point being applied");
    });
    logger.info("stopped", { dir: replicator.dir });
    return 0;
  } finally {
    kinesis?.destroy();
  }
}

/** Runs `work` until SIGINT or SIGTERM aborts its signal. */
async function untilSignal(
  work: (signal: AbortSignal) => Promise<void>,
  onStop: () => void,
): Promise<void> {
  const stop = new AbortController();
  const signals: Deno.Signal[] = Deno.build.os === "windows" ? ["SIGINT"] : ["SIGINT", "SIGTERM"];
  const onSignal = () => {
    if (!stop.signal.aborted) onStop();
    stop.abort();
  };
  for (const signal of signals) Deno.addSignalListener(signal, onSignal);
  try {
    await work(stop.signal);
  } finally {
    for (const signal of signals) Deno.removeSignalListener(signal, onSignal);
  }
}
