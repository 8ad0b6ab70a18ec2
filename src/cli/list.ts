/**
 * `streambolt list`: the snapshots of a stream or one shard.
 *
 * @module
 */
import { listSnapshots } from "../finder.ts";
import { formatBytes, out, outJson, outTable, parse, shardArg, streamArg } from "./_common.ts";
import { cliLogger } from "./_log.ts";
import { openCliStore, snapshotJson, STORE_HELP, STORE_OPTIONS } from "./_store.ts";

/** Help for the command. */
export const HELP = `Usage: streambolt list --stream NAME --store URL [--shard ID] [--json]

Lists snapshots, oldest first per shard: full snapshots, and deltas with the point (BASE)
they apply to.

Options:
  --stream NAME               the Kinesis stream (required)
  --shard ID                  only this shard
${STORE_HELP}
  --json                      print an array of objects
  --log-format text|json      stderr as text (default) or one JSON object per line
  -h, --help                  this help`;

/** Runs the command. */
export async function run(args: string[]): Promise<number> {
  const { values } = parse("list", args, {
    ...STORE_OPTIONS,
    stream: { type: "string" },
    shard: { type: "string" },
  });
  if (values.help) {
    out(HELP);
    return 0;
  }
  const stream = streamArg(values, "list");
  const shard = shardArg(values, "list");
  const store = await openCliStore(values, "list");
  const snapshots = await listSnapshots(store, stream, { shardId: shard });
  if (snapshots.length === 0) {
    // An empty table alone reads the same as a misspelt stream or store: say what was looked at.
    cliLogger({ quiet: values.quiet as boolean }).warn("no snapshots found", {
      stream,
      ...(shard ? { shard } : {}),
      store: store.url,
    });
  }
  if (values.json) outJson(snapshots.map(snapshotJson));
  else {
    outTable(
      ["SHARD", "SEQUENCE", "KIND", "BASE", "FINAL", "SIZE", "MODIFIED", "KEY"],
      snapshots.map((s) => [
        s.shardId,
        s.sequenceNumber,
        s.kind,
        s.baseSequenceNumber ?? "-",
        s.final ? "yes" : "no",
        formatBytes(s.size),
        s.lastModified?.toISOString() ?? "-",
        s.key,
      ]),
    );
  }
  return 0;
}
