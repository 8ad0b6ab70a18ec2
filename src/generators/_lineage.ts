/**
 * Seeding a child shard's table from its parents' snapshots: the rows whose hash key (explicit,
 * or the MD5 of the partition key) falls in the child's range.
 *
 * @module
 */
import type { DatabaseSync } from "node:sqlite";
import type { ShardLineage } from "../generator.ts";
import { hashKeyOf, inHashKeyRange } from "../kinesis/hash_key.ts";

/**
 * Copies `table`'s rows from every parent into `db` where the row's hash key is in the child's
 * range. The partition key is the column `key` or `partition_key`.
 */
export function copyRowsInRange(
  db: DatabaseSync,
  table: string,
  columns: string[],
  lineage: ShardLineage,
  replace: boolean,
): number {
  const keyColumn = columns.includes("key") ? "key" : "partition_key";
  const insert = db.prepare(
    `INSERT ${replace ? "OR REPLACE " : ""}INTO ${table} (${columns.join(", ")})
     VALUES (${columns.map(() => "?").join(", ")})`,
  );
  let copied = 0;
  for (const parent of lineage.parents) {
    const exists = parent.db.prepare(
      "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?",
    ).get(table);
    if (!exists) continue;
    const rows = parent.db.prepare(`SELECT ${columns.join(", ")} FROM ${table}`).iterate();
    let read = 0;
    for (const row of rows as Iterable<Record<string, unknown>>) {
      read++;
      const hash = hashKeyOf(String(row[keyColumn]), row.explicit_hash_key as string | null);
      if (!inHashKeyRange(hash, lineage.hashKeyRange)) continue;
      insert.run(...columns.map((c) => row[c] as string | number | Uint8Array | null));
      copied++;
    }
    // iterate() ends silently when a step fails: make sure every row was seen.
    const { n } = parent.db.prepare(`SELECT count(*) AS n FROM ${table}`).get() as { n: number };
    if (read !== n) {
      throw new Error(
        `Cannot seed shard ${lineage.shardId} as reading ${table} of parent ${parent.shardId} stopped early: current value is ${read} of ${n} rows`,
      );
    }
  }
  return copied;
}
