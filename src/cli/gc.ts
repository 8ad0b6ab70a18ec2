/**
 * `streambolt gc`: delete old snapshots, never the newest of a shard.
 *
 * @module
 */
import { collectGarbage } from "../gc.ts";
import { assertName } from "../snapshot.ts";
import {
  out,
  outJson,
  outTable,
  parse,
  parseDuration,
  required,
  UsageError,
  wholeNumber,
} from "./_common.ts";
import { openCliStore, snapshotJson, STORE_HELP, STORE_OPTIONS } from "./_store.ts";

/** Help for the command. */
export const HELP = `Usage: streambolt gc --stream NAME --store URL --keep N [options]

Deletes old snapshots, keeping the newest N of every shard. The newest snapshot of a shard is
never deleted.

Options:
  --stream NAME               the Kinesis stream (required)
  --shard ID                  only this shard
${STORE_HELP}
  --keep N                    snapshots to keep per shard, at least 1 (required)
  --older-than DURATION       only delete snapshots older than this (e.g. 36h, 7d, 2w)
  --dry-run                   list what would be deleted; delete nothing
  --json                      print the deleted snapshots as JSON
  -h, --help                  this help`;

/** Runs the command. */
export async function run(args: string[]): Promise<number> {
  const { values } = parse("gc", args, {
    ...STORE_OPTIONS,
    stream: { type: "string" },
    shard: { type: "string" },
    keep: { type: "string" },
    "older-than": { type: "string" },
    "dry-run": { type: "boolean" },
  });
  if (values.help) {
    out(HELP);
    return 0;
  }
  const stream = assertName("stream", required(values, "stream", "gc"));
  const shardId = values.shard === undefined
    ? undefined
    : assertName("shard", values.shard as string);
  const keepText = required(values, "keep", "gc");
  const keep = wholeNumber("keep", keepText, 1);
  if (keep === undefined) throw new UsageError("Cannot run gc as --keep is missing");
  const olderThan = values["older-than"] as string | undefined;
  const olderThanMs = olderThan === undefined ? undefined : parseDuration("older-than", olderThan);
  const store = await openCliStore(values, "gc");
  const dryRun = Boolean(values["dry-run"]);
  const { deleted, kept } = await collectGarbage(store, stream, {
    keep,
    olderThanMs,
    shardId,
    dryRun,
  });
  if (values.json) {
    outJson({ dryRun, kept, deleted: deleted.map(snapshotJson) });
  } else {
    outTable(
      ["ACTION", "SHARD", "SEQUENCE", "KEY"],
      deleted.map((s) => [dryRun ? "would delete" : "deleted", s.shardId, s.sequenceNumber, s.key]),
    );
    Deno.stderr.writeSync(
      new TextEncoder().encode(
        `streambolt: ${dryRun ? "would delete" : "deleted"} ${deleted.length}, kept ${kept}\n`,
      ),
    );
  }
  return 0;
}
