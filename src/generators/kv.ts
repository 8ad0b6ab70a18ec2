/**
 * The `kv` generator: keeps the latest record of every partition key.
 *
 * @module
 */
import type { DatabaseSync, StatementSync } from "node:sqlite";
import type { SnapshotGenerator } from "../generator.ts";
import { copyRowsInRange } from "./_lineage.ts";

/** The table the `kv` generator writes. */
export const KV_TABLE_SQL = `CREATE TABLE IF NOT EXISTS kv (
  key TEXT PRIMARY KEY,
  value BLOB NOT NULL,
  sequence_number TEXT NOT NULL,
  arrived_at TEXT,
  explicit_hash_key TEXT,
  shard_id TEXT
) WITHOUT ROWID`;

const COLUMNS = ["key", "value", "sequence_number", "arrived_at", "explicit_hash_key", "shard_id"];

/**
 * A generator that keeps, per partition key, the newest record's data in
 * `kv(key, value, sequence_number, arrived_at, explicit_hash_key, shard_id)`. After a split or
 * merge it seeds a child shard with its parents' keys that now route to the child, so the
 * latest snapshots of the open shards together hold the latest value of every key.
 *
 * @returns The generator.
 *
 * @example Usage
 * ```ts
 * import assert from "node:assert/strict";
 * import { DatabaseSync } from "node:sqlite";
 * import { kvGenerator } from "./kv.ts";
 * const db = new DatabaseSync(":memory:");
 * const kv = kvGenerator();
 * kv.onStart!(db);
 * kv.onRecords(db, {
 *   shardId: "shardId-000000000000",
 *   millisBehindLatest: 0,
 *   records: [{ sequenceNumber: "1", partitionKey: "a", data: new Uint8Array([1]) }],
 * });
 * assert.equal(db.prepare("SELECT count(*) AS n FROM kv").get()?.n, 1);
 * ```
 */
export function kvGenerator(): SnapshotGenerator {
  const upserts = new WeakMap<DatabaseSync, StatementSync>();
  return {
    onParents(db, lineage): void {
      db.exec(KV_TABLE_SQL);
      copyRowsInRange(db, "kv", COLUMNS, lineage, true);
    },
    onStart(db: DatabaseSync): void {
      db.exec(KV_TABLE_SQL);
    },
    onRecords(db, batch): void {
      let upsert = upserts.get(db);
      if (!upsert) {
        upsert = db.prepare(
          `INSERT INTO kv (key, value, sequence_number, arrived_at, explicit_hash_key, shard_id)
           VALUES (?, ?, ?, ?, ?, ?)
           ON CONFLICT (key) DO UPDATE SET value = excluded.value,
             sequence_number = excluded.sequence_number, arrived_at = excluded.arrived_at,
             explicit_hash_key = excluded.explicit_hash_key, shard_id = excluded.shard_id`,
        );
        upserts.set(db, upsert);
      }
      for (const r of batch.records) {
        upsert.run(
          r.partitionKey,
          r.data,
          r.sequenceNumber,
          r.approximateArrivalTimestamp?.toISOString() ?? null,
          r.explicitHashKey ?? null,
          batch.shardId,
        );
      }
    },
  };
}
