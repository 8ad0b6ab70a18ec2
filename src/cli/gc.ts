/**
 * `streambolt gc`: delete the snapshots the retention no longer keeps, never the newest point
 * of a shard.
 *
 * @module
 */
import { collectGarbage, type GarbageCollectionResult, type SnapshotChain } from "../gc.ts";
import { LOG_HELP, out, outJson, outTable, parse, shardArg, streamArg } from "./_common.ts";
import { cliLogger } from "./_log.ts";
import { parseRetention, RETENTION_HELP, RETENTION_OPTIONS } from "./_retention.ts";
import { openCliStore, snapshotJson, STORE_HELP, STORE_OPTIONS } from "./_store.ts";

/** Help for the command. */
export const HELP =
  `Usage: streambolt gc --stream NAME --store URL [--retain DURATION] [--keep N] [options]

Deletes old snapshots by the retention the producer uses after each publish: keeps every
restorable point younger than --retain and the newest --keep points of every shard, with every
object their restore needs (a full snapshot and the deltas after it); deletes the rest. The
newest point of a shard always stays restorable. A delta whose base the
deletion removes goes too: no chain could reach it again.

Options:
  --stream NAME               the Kinesis stream (required)
  --shard ID                  only this shard
${STORE_HELP}
${RETENTION_HELP}
  --older-than DURATION       deprecated: --retain DURATION
  --dry-run                   show every object, whether it is kept and why; delete nothing
  --json                      print the deleted snapshots as JSON
  -q, --quiet                 no summary line on stderr
${LOG_HELP}
  -h, --help                  this help`;

/** Runs the command. */
export async function run(args: string[]): Promise<number> {
  const { values } = parse("gc", args, {
    ...STORE_OPTIONS,
    ...RETENTION_OPTIONS,
    stream: { type: "string" },
    shard: { type: "string" },
    "older-than": { type: "string" },
    "dry-run": { type: "boolean" },
  });
  if (values.help) {
    out(HELP);
    return 0;
  }
  const stream = streamArg(values, "gc");
  const shardId = shardArg(values, "gc");
  const retention = parseRetention(values, "older-than");
  const store = await openCliStore(values, "gc");
  const dryRun = Boolean(values["dry-run"]);
  const result = await collectGarbage(store, stream, { retention, shardId, dryRun });
  if (values.json) {
    outJson({
      dryRun,
      kept: result.kept,
      deleted: result.deleted.map(snapshotJson),
      chains: dryRun ? result.chains.map((c) => chainJson(c, result)) : undefined,
    });
  } else if (dryRun) {
    printChains(result);
  } else {
    outTable(
      ["ACTION", "SHARD", "KIND", "SEQUENCE", "KEY"],
      result.deleted.map((s) => ["deleted", s.shardId, s.kind, s.sequenceNumber, s.key]),
    );
  }
  const logger = cliLogger({ quiet: values.quiet as boolean });
  if (result.deleted.length === 0 && result.kept === 0) {
    logger.warn("no snapshots found", { stream, store: store.url });
  }
  logger.info(
    dryRun ? "would delete snapshots (dry run)" : "deleted snapshots",
    { deleted: result.deleted.length, kept: result.kept },
  );
  return 0;
}

/** A chain as `--dry-run --json` prints it. */
function chainJson(chain: SnapshotChain, result: GarbageCollectionResult): Record<string, unknown> {
  const doomed = new Set(result.deleted.map((s) => s.key));
  const objects = [...(chain.full ? [chain.full] : []), ...chain.deltas];
  return {
    shardId: chain.shardId,
    full: chain.full?.key ?? null,
    deltas: chain.deltas.map((d) => d.key),
    delete: objects.filter((s) => doomed.has(s.key)).map((s) => s.key),
    why: Object.fromEntries(objects.map((s) => [s.key, result.why.get(s.key) ?? null])),
  };
}

/** `--dry-run`: every chain of every shard, each object marked keep or delete, and why. */
function printChains(result: GarbageCollectionResult): void {
  const doomed = new Set(result.deleted.map((s) => s.key));
  const rows: string[][] = [];
  result.chains.forEach((chain, i) => {
    const objects = [...(chain.full ? [chain.full] : []), ...chain.deltas];
    for (const s of objects) {
      rows.push([
        doomed.has(s.key) ? "would delete" : "keep",
        s.shardId,
        chain.full ? `chain ${i + 1}` : `no base (gap)`,
        s.kind,
        s.sequenceNumber,
        s.key,
        result.why.get(s.key) ?? "",
      ]);
    }
  });
  outTable(["ACTION", "SHARD", "CHAIN", "KIND", "SEQUENCE", "KEY", "WHY"], rows);
}
