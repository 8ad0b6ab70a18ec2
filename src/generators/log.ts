/**
 * The `log` generator: appends every record.
 *
 * @module
 */
import type { DatabaseSync, StatementSync } from "node:sqlite";
import type { SnapshotGenerator } from "../generator.ts";
import { copyRowsInRange } from "./_lineage.ts";

/** The table the `log` generator writes. */
export const LOG_TABLE_SQL = `CREATE TABLE IF NOT EXISTS log (
  shard_id TEXT NOT NULL,
  sequence_number TEXT NOT NULL,
  sub_sequence_number INTEGER NOT NULL DEFAULT 0,
  partition_key TEXT NOT NULL,
  explicit_hash_key TEXT,
  data BLOB NOT NULL,
  arrived_at TEXT,
  PRIMARY KEY (shard_id, sequence_number, sub_sequence_number)
) WITHOUT ROWID`;

const COLUMNS = [
  "shard_id",
  "sequence_number",
  "sub_sequence_number",
  "partition_key",
  "explicit_hash_key",
  "data",
  "arrived_at",
];

/**
 * A generator that appends every record to `log(shard_id, sequence_number,
 * sub_sequence_number, partition_key, explicit_hash_key, data, arrived_at)`. After a split or
 * merge it seeds a child shard with its parents' records that now route to the child.
 *
 * @returns The generator.
 *
 * @example Usage
 * ```ts
 * import assert from "node:assert/strict";
 * import { DatabaseSync } from "node:sqlite";
 * import { logGenerator } from "./log.ts";
 * const db = new DatabaseSync(":memory:");
 * const log = logGenerator();
 * log.onStart!(db);
 * log.onRecords(db, {
 *   shardId: "shardId-000000000000",
 *   millisBehindLatest: 0,
 *   records: [{ sequenceNumber: "1", partitionKey: "a", data: new Uint8Array([1]) }],
 * });
 * assert.equal(db.prepare("SELECT count(*) AS n FROM log").get()?.n, 1);
 * ```
 */
export function logGenerator(): SnapshotGenerator {
  const inserts = new WeakMap<DatabaseSync, StatementSync>();
  return {
    onParents(db, lineage): void {
      db.exec(LOG_TABLE_SQL);
      copyRowsInRange(db, "log", COLUMNS, lineage, false);
    },
    onStart(db: DatabaseSync): void {
      db.exec(LOG_TABLE_SQL);
    },
    onRecords(db, batch): void {
      let insert = inserts.get(db);
      if (!insert) {
        insert = db.prepare(
          `INSERT INTO log (shard_id, sequence_number, sub_sequence_number, partition_key,
             explicit_hash_key, data, arrived_at) VALUES (?, ?, ?, ?, ?, ?, ?)`,
        );
        inserts.set(db, insert);
      }
      for (const r of batch.records) {
        insert.run(
          batch.shardId,
          r.sequenceNumber,
          r.subSequenceNumber ?? 0,
          r.partitionKey,
          r.explicitHashKey ?? null,
          r.data,
          r.approximateArrivalTimestamp?.toISOString() ?? null,
        );
      }
    },
  };
}
