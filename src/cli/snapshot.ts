/**
 * `streambolt snapshot`: bring shards' snapshots up to date and publish them.
 *
 * @module
 */
import { resolve } from "node:path";
import { pathToFileURL } from "node:url";
import type { SnapshotGenerator } from "../generator.ts";
import { kvGenerator } from "../generators/kv.ts";
import { logGenerator } from "../generators/log.ts";
import type { ChainPolicy } from "../chain.ts";
import type { RetentionPolicy } from "../retention.ts";
import type { SnapshotProgress } from "../shard_snapshotter.ts";
import {
  type ShardOutcome,
  StreamSnapshotError,
  StreamSnapshotter,
  type WorkerShare,
} from "../stream_snapshotter.ts";
import { assertName } from "../snapshot_key.ts";
import {
  LOG_HELP,
  out,
  outJson,
  outTable,
  parse,
  parseDuration,
  streamArg,
  UsageError,
  wholeNumber,
} from "./_common.ts";
import { type CliLogger, cliLogger } from "./_log.ts";
import { parseRetention, RETENTION_HELP, RETENTION_OPTIONS } from "./_retention.ts";
import {
  openCliStore,
  type SnapshotJson,
  snapshotJson,
  STORE_HELP,
  STORE_OPTIONS,
} from "./_store.ts";

/** Help for the command. */
export const HELP = `Usage: streambolt snapshot --stream NAME --store URL [options]

Brings the latest snapshot of each shard up to date and publishes it. Without --shard, every
shard of the stream (open and closed) is snapshotted.

Options:
  --stream NAME               the Kinesis stream (required)
  --shard ID                  a shard to snapshot; repeat for several (default: all)
${STORE_HELP}
  --generator kv|log|PATH     kv: latest record per partition key; log: every record;
                              PATH: a module whose default export is a SnapshotGenerator
                              (default: kv)
  --done-lag MS               stop once at most MS behind the shard's tip (default: 0)
  --full                      publish full snapshots, even where a delta would do
  --max-deltas N              deltas after a full before the next full (default: 20)
  --max-restore-ratio R       ...or once restoring the chain would cost R times restoring
                              the full alone, by the consumers' estimate (default: 1.4)
  --max-delta-ratio R         ...or once the deltas' stored bytes pass R times the full's
                              (a number like 0.05, or 5%; default: not set)
  After publishing, points past the retention are deleted (as gc does):
${RETENTION_HELP}
  --follow                    keep following the shards, publishing every interval;
                              SIGINT/SIGTERM publish what was applied, then exit 0
  --publish-every DURATION    with --follow: how often to publish (default: 60s)
  --no-compact                skip handing free pages back before upload
  --skip-bad-records          skip (and log, one line each) records the generator fails on,
                              instead of failing the shard
  --accept-gap                continue a shard whose snapshot ends at a record older than the
                              stream's retention (records after it may be trimmed); logged and
                              recorded in the snapshot (default: fail, naming the shard)
  --encoding zstd|none        how snapshots are stored (default: zstd)
  --local-dir DIR             working directory (default: .streambolt-local)
  --concurrency N             shards snapshotted at once (default: 4)
  --worker I/N                take only worker I's stable share of N (0 <= I < N); auto/N
                              reads I from JOB_COMPLETION_INDEX or AWS_BATCH_JOB_ARRAY_INDEX
  --json                      print the snapshots as JSON
  -q, --quiet                 no progress or info logs
  -v, --verbose               debug logs
${LOG_HELP}
  -h, --help                  this help`;

/** Why `--generator PATH` cannot be read, from the error `Deno.stat` threw. */
function unreadableReason(error: unknown): string {
  if (error instanceof Deno.errors.NotCapable) {
    return "read permission was denied (the CLI reads only under the working directory: " +
      "move the module there, or add its path to --allow-read)";
  }
  if (error instanceof Deno.errors.PermissionDenied) {
    return "the file system denied reading it";
  }
  return "it is not kv, log or an existing file";
}

/** Loads the generator named by `--generator`. */
export async function loadGenerator(spec: string): Promise<SnapshotGenerator> {
  if (spec === "kv") return kvGenerator();
  if (spec === "log") return logGenerator();
  const path = resolve(spec);
  try {
    await Deno.stat(path);
  } catch (error) {
    throw new UsageError(
      `Cannot load generator as ${unreadableReason(error)}: current value is ${
        JSON.stringify(spec)
      }`,
      { cause: error },
    );
  }
  const module = await import(pathToFileURL(path).href).catch((error) => {
    const why = String((error as Error)?.message ?? error).split("\n")[0];
    throw new UsageError(
      `Cannot load generator as it does not load (${why}): current value is ${
        JSON.stringify(spec)
      }`,
      { cause: error },
    );
  });
  let generator = module.default;
  if (typeof generator === "function") generator = await generator();
  if (typeof generator?.onRecords !== "function") {
    throw new UsageError(
      `Cannot use generator as its default export has no onRecords method: current value is ${
        JSON.stringify(spec)
      }`,
    );
  }
  return generator as SnapshotGenerator;
}

/** Parses `--worker I/N` or `auto/N` (the index from JOB_COMPLETION_INDEX or
 * AWS_BATCH_JOB_ARRAY_INDEX, as Kubernetes Indexed Jobs and AWS Batch array jobs set). */
export function parseWorker(spec: string): WorkerShare {
  const match = /^(auto|\d+)\/(\d+)$/.exec(spec);
  const bad = (why: string) =>
    new UsageError(`Cannot use --worker as ${why}: current value is ${JSON.stringify(spec)}`);
  if (!match) throw bad("it must be I/N or auto/N");
  const count = Number(match[2]);
  let indexText = match[1];
  if (indexText === "auto") {
    const fromEnv = Deno.env.get("JOB_COMPLETION_INDEX") ??
      Deno.env.get("AWS_BATCH_JOB_ARRAY_INDEX");
    if (fromEnv === undefined) {
      throw bad("auto needs JOB_COMPLETION_INDEX or AWS_BATCH_JOB_ARRAY_INDEX to be set");
    }
    indexText = fromEnv;
  }
  const index = Number(indexText);
  if (!/^\d+$/.test(indexText) || count < 1 || index >= count) {
    throw bad(`the index must be a whole number below the count (index ${indexText})`);
  }
  return { index, count };
}

/** The command's options, parsed and checked. */
interface SnapshotArgs {
  values: Record<string, unknown>;
  stream: string;
  shardIds?: string[];
  doneLagMs: number;
  encoding: "zstd" | "none";
  concurrency?: number;
  worker?: WorkerShare;
  chain: ChainPolicy;
  /** --retain and --keep; undefined for the default. */
  retention?: RetentionPolicy;
  /** With --follow: the publish interval. */
  publishEveryMs?: number;
}

/** Parses a ratio: `0.05` or `5%`, above 0 (or at least `min`). */
export function parseRatio(name: string, value: string, min?: number): number {
  const percent = value.endsWith("%");
  const n = Number(percent ? value.slice(0, -1) : value) / (percent ? 100 : 1);
  const ok = /^\d*\.?\d+%?$/.test(value) && Number.isFinite(n) &&
    (min === undefined ? n > 0 : n >= min);
  if (!ok) {
    const range = min === undefined ? "above 0 like 0.05 or 5%" : `of at least ${min}`;
    throw new UsageError(
      `Cannot use --${name} as it must be a number ${range}: current value is ${
        JSON.stringify(value)
      }`,
    );
  }
  return n;
}

/** The delta, chain and follow flags. */
function chainArgs(values: Record<string, unknown>): Pick<
  SnapshotArgs,
  "chain" | "retention" | "publishEveryMs"
> {
  const every = values["publish-every"] as string | undefined;
  if (every !== undefined && !values.follow) {
    throw new UsageError(
      `Cannot use --publish-every without --follow: current value is ${JSON.stringify(every)}`,
    );
  }
  const ratio = values["max-delta-ratio"] as string | undefined;
  const restore = values["max-restore-ratio"] as string | undefined;
  return {
    chain: {
      maxDeltas: wholeNumber("max-deltas", values["max-deltas"] as string | undefined, 0),
      maxBytesRatio: ratio === undefined ? undefined : parseRatio("max-delta-ratio", ratio),
      maxRestoreRatio: restore === undefined
        ? undefined
        : parseRatio("max-restore-ratio", restore, 1),
    },
    retention: parseRetention(values),
    publishEveryMs: values.follow ? publishEvery(every ?? "60s") : undefined,
  };
}

/** The follower's publish interval: more than nothing, or it would publish after every page. */
function publishEvery(value: string): number {
  const ms = parseDuration("publish-every", value);
  if (ms === 0) {
    throw new UsageError(
      `Cannot use --publish-every as a follower would publish a point after every page; give an interval such as 60s: current value is ${
        JSON.stringify(value)
      }`,
    );
  }
  return ms;
}

/** Parses and checks the arguments; `undefined` for --help. */
function parseSnapshotArgs(args: string[]): SnapshotArgs | undefined {
  const { values } = parse("snapshot", args, {
    ...STORE_OPTIONS,
    stream: { type: "string" },
    shard: { type: "string", multiple: true },
    generator: { type: "string" },
    "done-lag": { type: "string" },
    "no-compact": { type: "boolean" },
    encoding: { type: "string" },
    "local-dir": { type: "string" },
    concurrency: { type: "string" },
    worker: { type: "string" },
    "skip-bad-records": { type: "boolean" },
    full: { type: "boolean" },
    "accept-gap": { type: "boolean" },
    "max-deltas": { type: "string" },
    "max-delta-ratio": { type: "string" },
    "max-restore-ratio": { type: "string" },
    ...RETENTION_OPTIONS,
    follow: { type: "boolean" },
    "publish-every": { type: "string" },
  });
  if (values.help) return undefined;
  const stream = streamArg(values, "snapshot");
  const doneLagMs = wholeNumber("done-lag", values["done-lag"] as string | undefined, 0) ?? 0;
  const encoding = (values.encoding as string | undefined) ?? "zstd";
  if (encoding !== "zstd" && encoding !== "none") {
    throw new UsageError(
      `Cannot use --encoding as it must be zstd or none: current value is ${
        JSON.stringify(encoding)
      }`,
    );
  }
  const shardIds = ((values.shard as string[] | undefined) ?? []).map((s) =>
    assertName("shard", s)
  );
  return {
    values,
    stream,
    shardIds: shardIds.length > 0 ? shardIds : undefined,
    doneLagMs,
    encoding,
    concurrency: wholeNumber("concurrency", values.concurrency as string | undefined, 1),
    worker: values.worker === undefined ? undefined : parseWorker(values.worker as string),
    ...chainArgs(values),
  };
}

/** One shard's line of output. */
type ShardResult = Partial<SnapshotJson> & {
  shardId: string;
  status: ShardOutcome["status"];
  published: boolean;
  recordsApplied: number;
  error?: string;
};

/** Each shard this worker handled: its snapshot, status and last progress. */
function shardResults(
  outcomes: ShardOutcome[],
  progress: Map<string, SnapshotProgress>,
): ShardResult[] {
  return outcomes
    .filter((o) => o.status !== "other-worker")
    .map((o) => {
      const last = progress.get(o.shardId);
      return {
        ...(o.snapshot ? snapshotJson(o.snapshot) : { shardId: o.shardId }),
        status: o.status,
        published: last?.phase === "done",
        recordsApplied: last?.recordsApplied ?? 0,
        error: o.error === undefined ? undefined : (o.error as Error).message ?? String(o.error),
      };
    });
}

/** Logs each shard's outcome and prints the results as a table or JSON. */
function report(results: ShardResult[], json: boolean, logger: CliLogger): void {
  // A failed shard is reported once, by the error at the end.
  for (const r of results.filter((r) => r.status !== "failed")) {
    logger.info(r.published ? "published snapshot" : `snapshot ${r.status}`, {
      shard: r.shardId,
      records: r.recordsApplied,
    });
  }
  if (json) {
    outJson(results);
    return;
  }
  outTable(
    ["SHARD", "STATUS", "SEQUENCE", "FINAL", "APPLIED", "PUBLISHED", "KEY"],
    results.map((r) => [
      r.shardId,
      r.status,
      r.sequenceNumber ?? "-",
      r.final ? "yes" : "no",
      String(r.recordsApplied),
      r.published ? "yes" : "no",
      r.key ?? "-",
    ]),
  );
}

/** Runs the command. */
export async function run(args: string[]): Promise<number> {
  const parsed = parseSnapshotArgs(args);
  if (!parsed) {
    out(HELP);
    return 0;
  }
  const { values } = parsed;
  const logger = cliLogger({ quiet: values.quiet as boolean, verbose: values.verbose as boolean });
  // Following: stop signals are handled from here on, also while starting up (exit 0).
  using stop = parsed.publishEveryMs === undefined ? undefined : stopOnSignal(logger);
  const store = await openCliStore(values, "snapshot");
  const generator = await loadGenerator((values.generator as string | undefined) ?? "kv");
  // The Kinesis SDK is loaded here, not at the top: --help and bad arguments never need it.
  const kinesis = (await import("./_aws.ts")).makeKinesisClient();
  const progress = new Map<string, SnapshotProgress>();
  try {
    const snapshotter = new StreamSnapshotter({
      kinesis,
      store,
      stream: parsed.stream,
      shardIds: parsed.shardIds,
      localPath: (values["local-dir"] as string | undefined) ?? ".streambolt-local",
      generator,
      doneLagMs: parsed.doneLagMs,
      compact: !values["no-compact"],
      encoding: parsed.encoding,
      logger,
      concurrency: parsed.concurrency,
      worker: parsed.worker,
      skipBadRecords: Boolean(values["skip-bad-records"]),
      full: Boolean(values.full),
      acceptGap: Boolean(values["accept-gap"]),
      chain: parsed.chain,
      retention: parsed.retention,
      onProgress: (p) => {
        progress.set(p.shardId, p);
        logger.progress(p);
      },
    });
    if (stop) return await follow(snapshotter, parsed, stop.signal, logger);
    let failure: StreamSnapshotError | undefined;
    try {
      await snapshotter.snapshotStream();
    } catch (error) {
      if (!(error instanceof StreamSnapshotError)) throw error;
      failure = error;
    }
    logger.endProgress();
    report(shardResults(snapshotter.outcomes, progress), Boolean(values.json), logger);
    if (failure) throw failure;
    return 0;
  } finally {
    logger.endProgress();
    kinesis.destroy();
  }
}

/** SIGINT and SIGTERM (SIGINT alone on Windows) abort `signal` until disposed. */
function stopOnSignal(logger: CliLogger): { signal: AbortSignal } & Disposable {
  const stop = new AbortController();
  const signals: Deno.Signal[] = Deno.build.os === "windows" ? ["SIGINT"] : ["SIGINT", "SIGTERM"];
  const onSignal = () => {
    if (stop.signal.aborted) return;
    logger.info("stopping: publishing what was applied");
    stop.abort();
  };
  for (const signal of signals) Deno.addSignalListener(signal, onSignal);
  return {
    signal: stop.signal,
    [Symbol.dispose]: () => {
      for (const signal of signals) Deno.removeSignalListener(signal, onSignal);
    },
  };
}

/** `--follow`: until `stop` (SIGINT or SIGTERM), then each shard publishes what it applied. */
async function follow(
  snapshotter: StreamSnapshotter,
  parsed: SnapshotArgs,
  stop: AbortSignal,
  logger: CliLogger,
): Promise<number> {
  const publishEveryMs = parsed.publishEveryMs!;
  logger.info("following the stream", { publishEveryMs });
  const latest = await snapshotter.follow({ publishEveryMs, stop });
  logger.endProgress();
  if (parsed.values.json) outJson(latest.map(snapshotJson));
  else {
    outTable(
      ["SHARD", "SEQUENCE", "KIND", "FINAL", "KEY"],
      latest.map((s) => [s.shardId, s.sequenceNumber, s.kind, s.final ? "yes" : "no", s.key]),
    );
  }
  return 0;
}
