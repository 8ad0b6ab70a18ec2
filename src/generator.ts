/**
 * The {@linkcode SnapshotGenerator} contract: how user code turns Kinesis records into rows of
 * a snapshot database.
 *
 * @module
 */
import type { DatabaseSync } from "node:sqlite";
import type { RecordBatch } from "./kinesis/shard_reader.ts";

/**
 * Turns records into a snapshot. Every method gets the open snapshot database; methods may
 * return promises.
 *
 * `onRecords` runs inside a transaction the snapshotter owns, together with the update of the
 * snapshot's sequence number, so a batch is applied whole or not at all. Do not `BEGIN` or
 * `COMMIT` in it. Prepare statements once (in `onStart`, or lazily) and reuse them: that is
 * most of the speed of applying records.
 */
export interface SnapshotGenerator {
  /**
   * Seeds a brand-new snapshot (no earlier one exists).
   *
   * @param db The new, empty snapshot database.
   * @returns The sequence number the seeded rows already cover, or `BOOTSTRAP_SEQUENCE` to
   * read the shard from its beginning (`TRIM_HORIZON`). Without this method: the latter.
   */
  bootstrap?(db: DatabaseSync): string | Promise<string>;
  /**
   * One-time setup on every run, before records arrive (create tables if missing,
   * prepare statements). Runs inside a transaction.
   *
   * @param db The snapshot database.
   */
  onStart?(db: DatabaseSync): void | Promise<void>;
  /**
   * Applies one batch of records, in sequence order.
   *
   * @param db The snapshot database, inside a transaction.
   * @param batch The records and how far behind the shard's tip they end.
   */
  onRecords(db: DatabaseSync, batch: RecordBatch): void | Promise<void>;
}
