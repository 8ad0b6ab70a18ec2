/**
 * The `kv` generator: keeps the latest record of every partition key.
 *
 * @module
 */
import type { DatabaseSync, StatementSync } from "node:sqlite";
import type { SnapshotGenerator } from "../generator.ts";

/** The table the `kv` generator writes. */
export const KV_TABLE_SQL = `CREATE TABLE IF NOT EXISTS kv (
  key TEXT PRIMARY KEY,
  value BLOB NOT NULL,
  sequence_number TEXT NOT NULL,
  arrived_at TEXT
) WITHOUT ROWID`;

/**
 * A generator that keeps, per partition key, the newest record's data in
 * `kv(key, value, sequence_number, arrived_at)`.
 *
 * @returns The generator.
 *
 * @example Usage
 * ```ts
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
 * db.prepare("SELECT count(*) AS n FROM kv").get(); // { n: 1 }
 * ```
 */
export function kvGenerator(): SnapshotGenerator {
  const upserts = new WeakMap<DatabaseSync, StatementSync>();
  return {
    onStart(db: DatabaseSync): void {
      db.exec(KV_TABLE_SQL);
    },
    onRecords(db, batch): void {
      let upsert = upserts.get(db);
      if (!upsert) {
        upsert = db.prepare(
          `INSERT INTO kv (key, value, sequence_number, arrived_at) VALUES (?, ?, ?, ?)
           ON CONFLICT (key) DO UPDATE SET value = excluded.value,
             sequence_number = excluded.sequence_number, arrived_at = excluded.arrived_at`,
        );
        upserts.set(db, upsert);
      }
      for (const r of batch.records) {
        upsert.run(
          r.partitionKey,
          r.data,
          r.sequenceNumber,
          r.approximateArrivalTimestamp?.toISOString() ?? null,
        );
      }
    },
  };
}
