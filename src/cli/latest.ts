/**
 * `streambolt latest`: the newest snapshot of one shard.
 *
 * @module
 */
import { ShardSnapshotFinder } from "../finder.ts";
import { formatBytes, out, outJson, outTable, parse, shardArg, streamArg } from "./_common.ts";
import { openCliStore, snapshotJson, STORE_HELP, STORE_OPTIONS } from "./_store.ts";

/** Help for the command. */
export const HELP = `Usage: streambolt latest --stream NAME --shard ID --store URL [--json]

Prints the newest restorable point of a shard (its newest object: a full snapshot or a
delta); exits with status 1 when there is none.

Options:
  --stream NAME               the Kinesis stream (required)
  --shard ID                  the shard (required)
${STORE_HELP}
  --json                      print an object
  --log-format text|json      stderr as text (default) or one JSON object per line
  -h, --help                  this help`;

/** Runs the command. */
export async function run(args: string[]): Promise<number> {
  const { values } = parse("latest", args, {
    ...STORE_OPTIONS,
    stream: { type: "string" },
    shard: { type: "string" },
  });
  if (values.help) {
    out(HELP);
    return 0;
  }
  const stream = streamArg(values, "latest");
  const shard = shardArg(values, "latest", true);
  const store = await openCliStore(values, "latest");
  const finder = new ShardSnapshotFinder({ store, stream, shardId: shard, localPath: "." });
  const latest = await finder.findLatestSnapshot();
  if (!latest) {
    throw new Error(
      `Cannot find a snapshot as the shard has none in ${store.url}: current value is "${stream}/${shard}"`,
    );
  }
  if (values.json) outJson(snapshotJson(latest));
  else {
    outTable(["SHARD", "SEQUENCE", "KIND", "FINAL", "SIZE", "KEY"], [[
      latest.shardId,
      latest.sequenceNumber,
      latest.kind,
      latest.final ? "yes" : "no",
      formatBytes(latest.size),
      latest.key,
    ]]);
  }
  return 0;
}
