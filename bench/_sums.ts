/**
 * The generator of figures 12 and 13: a running sum per partition key (the count of records
 * and the sum of each record's JSON `v`), the same work the Go original's reference run did.
 * Its default export is what `snapshot --generator bench/_sums.ts` loads.
 *
 * @module
 */
import type { DatabaseSync, StatementSync } from "node:sqlite";
import type { SnapshotGenerator } from "../mod.ts";

/** The table the generator keeps. */
export const SUMS_TABLE_SQL =
  "CREATE TABLE IF NOT EXISTS sums (key TEXT PRIMARY KEY, n INTEGER NOT NULL, total INTEGER NOT NULL) WITHOUT ROWID";

const decoder = new TextDecoder();

/** The value a record adds to its key's sum: its JSON `v`, or 0. */
export function valueOf(data: Uint8Array): number {
  try {
    const v = JSON.parse(decoder.decode(data))?.v;
    return typeof v === "number" && Number.isFinite(v) ? v : 0;
  } catch {
    return 0;
  }
}

/** A generator keeping a running sum per partition key. */
export function sumsGenerator(): SnapshotGenerator {
  const upserts = new WeakMap<DatabaseSync, StatementSync>();
  return {
    onStart(db): void {
      db.exec(SUMS_TABLE_SQL);
    },
    onRecords(db, batch): void {
      let upsert = upserts.get(db);
      if (!upsert) {
        upsert = db.prepare(
          `INSERT INTO sums (key, n, total) VALUES (?, 1, ?)
           ON CONFLICT (key) DO UPDATE SET n = n + 1, total = total + excluded.total`,
        );
        upserts.set(db, upsert);
      }
      for (const r of batch.records) upsert.run(r.partitionKey, valueOf(r.data));
    },
  };
}

export default sumsGenerator();
