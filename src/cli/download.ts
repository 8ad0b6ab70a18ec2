/**
 * `streambolt download`: fetch and verify a snapshot of one shard.
 *
 * @module
 */
import { basename, dirname, join } from "node:path";
import { ShardSnapshotFinder } from "../finder.ts";
import { assertSequenceNumber, type Snapshot } from "../snapshot_key.ts";
import { type Logger, silentLogger } from "../logger.ts";
import { LOG_HELP, out, outJson, parse, shardArg, streamArg, UsageError } from "./_common.ts";
import { cliLogger } from "./_log.ts";
import { openCliStore, snapshotJson, STORE_HELP, STORE_OPTIONS } from "./_store.ts";

/** Help for the command. */
export const HELP = `Usage: streambolt download --stream NAME --shard ID --store URL [options]

Restores a point of a shard (the latest, or --sequence) as a plain SQLite file at
DIR/<stream>/<shard>/<sequence>.sqlite and prints its path: a full snapshot, then the deltas
after it, each verified (SHA-256, contents against its key, each delta against the point it
applies to). When DIR already holds an earlier point of the shard (an earlier download) and
deltas lead on from it, only those deltas are fetched and that file is brought forward.

DIR keeps one file per shard: the point downloaded last. The new file is written beside the
old ones and renamed into place whole; only then are the shard's other point files there
(<sequence>.sqlite, <sequence>.final.sqlite, with their -wal, -shm and -journal files)
removed. Other files in DIR are left alone.

Options:
  --stream NAME               the Kinesis stream (required)
  --shard ID                  the shard (required)
${STORE_HELP}
  --out DIR                   where to write (created if missing; default: .)
  --sequence SEQ              this point rather than the latest
  --fallback                  if an object of the latest point's chain fails verification,
                              restore the newest point that verifies
  --no-refresh                download a full snapshot even when DIR holds an earlier point
  --json                      print an object with localFile
${LOG_HELP}
  -h, --help                  this help`;

/** Runs the command. */
export async function run(args: string[]): Promise<number> {
  const { values } = parse("download", args, {
    ...STORE_OPTIONS,
    stream: { type: "string" },
    shard: { type: "string" },
    out: { type: "string" },
    sequence: { type: "string" },
    fallback: { type: "boolean" },
    "no-refresh": { type: "boolean" },
  });
  if (values.help) {
    out(HELP);
    return 0;
  }
  const stream = streamArg(values, "download");
  const shardId = shardArg(values, "download", true);
  const sequence = values.sequence === undefined
    ? undefined
    : assertSequenceNumber(values.sequence as string);
  const outDir = await outDirArg(values.out as string | undefined);
  const store = await openCliStore(values, "download");
  const logger: Logger = values.quiet ? silentLogger : cliLogger({
    verbose: values.verbose as boolean,
  });
  const finder = new ShardSnapshotFinder({
    store,
    stream,
    shardId,
    localPath: outDir,
    logger,
  });
  const refresh = !values["no-refresh"];
  let snapshot: Snapshot | undefined;
  if (sequence !== undefined) {
    snapshot = (await finder.findSnapshots()).filter((s) => s.sequenceNumber === sequence).at(-1);
    if (!snapshot) {
      throw new Error(
        `Cannot download snapshot as the shard has none at that sequence number: current value is "${sequence}"`,
      );
    }
    await finder.downloadSnapshot(snapshot, { refresh });
  } else {
    snapshot = await finder.downloadLatestSnapshot({
      fallback: Boolean(values.fallback),
      refresh,
    });
    if (!snapshot) {
      throw new Error(
        `Cannot download a snapshot as the shard has none in ${store.url}: current value is "${stream}/${shardId}"`,
      );
    }
  }
  await removeOtherPoints(snapshot.localFile);
  if (values.json) outJson({ ...snapshotJson(snapshot), localFile: snapshot.localFile });
  else out(snapshot.localFile);
  return 0;
}

/** `--out` (default: the working directory), refused when it names something that is not a
 * directory, before anything is downloaded. */
async function outDirArg(value: string | undefined): Promise<string> {
  const outDir = value ?? ".";
  if (await Deno.stat(outDir).then((i) => !i.isDirectory, () => false)) {
    throw new UsageError(
      `Cannot use --out as it is not a directory: current value is ${JSON.stringify(outDir)}`,
    );
  }
  return outDir;
}

/** A point's file as downloads name it, and the files SQLite keeps beside one. */
const POINT_FILE = /^(0|[1-9][0-9]*)(\.final)?\.sqlite(-wal|-shm|-journal)?$/;

/**
 * Removes the shard's other point files from the folder `file` was just renamed into, so that
 * `--out` holds one point per shard and earlier downloads do not pile up.
 */
async function removeOtherPoints(file: string): Promise<void> {
  const dir = dirname(file);
  const kept = basename(file);
  const others: string[] = [];
  for await (const entry of Deno.readDir(dir)) {
    const match = POINT_FILE.exec(entry.name);
    if (!entry.isFile || !match) continue;
    if (entry.name.slice(0, entry.name.length - (match[3]?.length ?? 0)) === kept) continue;
    others.push(join(dir, entry.name));
  }
  // Already gone (another download removed it first) is as good as removed.
  await Promise.all(others.map((f) => Deno.remove(f).catch(ignoreNotFound)));
}

function ignoreNotFound(error: unknown): void {
  if (!(error instanceof Deno.errors.NotFound)) throw error;
}
