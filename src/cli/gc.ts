/**
 * `streambolt gc`: delete old snapshots, never the newest of a shard.
 *
 * @module
 */
import { collectGarbage, type SnapshotChain } from "../gc.ts";
import type { Snapshot } from "../snapshot_key.ts";
import {
  LOG_HELP,
  out,
  outJson,
  outTable,
  parse,
  parseDuration,
  required,
  shardArg,
  streamArg,
  UsageError,
  wholeNumber,
} from "./_common.ts";
import { cliLogger } from "./_log.ts";
import { openCliStore, snapshotJson, STORE_HELP, STORE_OPTIONS } from "./_store.ts";

/** Help for the command. */
export const HELP = `Usage: streambolt gc --stream NAME --store URL --keep N [options]

Deletes old snapshots, keeping the newest N restorable points of every shard and every object
their restore needs (a full snapshot and the deltas after it). The newest point of a shard
always stays restorable. A delta whose base the deletion removes (one written beside a full
snapshot of the same point, say) goes too: no chain could reach it again. --dry-run groups
each delta with the chain of its base; "no base (gap)" marks deltas no chain reached before.

Options:
  --stream NAME               the Kinesis stream (required)
  --shard ID                  only this shard
${STORE_HELP}
  --keep N                    restorable points to keep per shard, at least 1 (required)
  --older-than DURATION       only delete snapshots older than this (e.g. 36h, 7d, 2w)
  --dry-run                   show every chain and what would be deleted; delete nothing
  --json                      print the deleted snapshots as JSON
  -q, --quiet                 no summary line on stderr
${LOG_HELP}
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
  const stream = streamArg(values, "gc");
  const shardId = shardArg(values, "gc");
  const keepText = required(values, "keep", "gc");
  const keep = wholeNumber("keep", keepText, 1);
  if (keep === undefined) throw new UsageError("Cannot run gc as --keep is missing");
  const olderThan = values["older-than"] as string | undefined;
  const olderThanMs = olderThan === undefined ? undefined : parseDuration("older-than", olderThan);
  const store = await openCliStore(values, "gc");
  const dryRun = Boolean(values["dry-run"]);
  const result = await collectGarbage(store, stream, { keep, olderThanMs, shardId, dryRun });
  if (values.json) {
    outJson({
      dryRun,
      kept: result.kept,
      deleted: result.deleted.map(snapshotJson),
      chains: dryRun ? result.chains.map((c) => chainJson(c, result.deleted)) : undefined,
    });
  } else if (dryRun) {
    printChains(result.chains, new Set(result.deleted.map((s) => s.key)));
  } else {
    outTable(
      ["ACTION", "SHARD", "KIND", "SEQUENCE", "KEY"],
      result.deleted.map((s) => ["deleted", s.shardId, s.kind, s.sequenceNumber, s.key]),
    );
  }
  cliLogger({ quiet: values.quiet as boolean }).info(
    dryRun ? "would delete snapshots (dry run)" : "deleted snapshots",
    { deleted: result.deleted.length, kept: result.kept },
  );
  return 0;
}

/** A chain as `--dry-run --json` prints it. */
function chainJson(chain: SnapshotChain, deleted: Snapshot[]): Record<string, unknown> {
  const doomed = new Set(deleted.map((s) => s.key));
  return {
    shardId: chain.shardId,
    full: chain.full?.key ?? null,
    deltas: chain.deltas.map((d) => d.key),
    delete: [chain.full, ...chain.deltas].filter((s) => s && doomed.has(s.key)).map((s) => s!.key),
  };
}

/** `--dry-run`: every chain of every shard, each object marked keep or delete. */
function printChains(chains: SnapshotChain[], doomed: Set<string>): void {
  const rows: string[][] = [];
  chains.forEach((chain, i) => {
    const objects = [...(chain.full ? [chain.full] : []), ...chain.deltas];
    for (const s of objects) {
      rows.push([
        doomed.has(s.key) ? "would delete" : "keep",
        s.shardId,
        chain.full ? `chain ${i + 1}` : `no base (gap)`,
        s.kind,
        s.sequenceNumber,
        s.key,
      ]);
    }
  });
  outTable(["ACTION", "SHARD", "CHAIN", "KIND", "SEQUENCE", "KEY"], rows);
}
