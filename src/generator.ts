/**
 * The {@linkcode SnapshotGenerator} contract: how user code turns Kinesis records into rows of
 * a snapshot database.
 *
 * @module
 */
import type { DatabaseSync } from "node:sqlite";
import type { HashKeyRange } from "./kinesis/hash_key.ts";
import type { RecordBatch } from "./records.ts";
import type { SnapshotMetadata } from "./metadata.ts";

/** A parent shard's final snapshot, open read-only, handed to {@linkcode SnapshotGenerator.onParents}. */
export interface ParentSnapshot {
  /** The parent shard. */
  shardId: string;
  /** The parent's final snapshot database, read-only. */
  db: DatabaseSync;
  /** The parent snapshot's metadata. */
  metadata: SnapshotMetadata;
}

/** The child shard being seeded by {@linkcode SnapshotGenerator.onParents}. */
export interface ShardLineage {
  /** The child shard. */
  shardId: string;
  /** The child's hash key range: the rows to take from the parents are those routed into it. */
  hashKeyRange: HashKeyRange;
  /** The parents' final snapshots (one after a split, two after a merge). */
  parents: ParentSnapshot[];
}

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
   * Seeds the first snapshot of a child shard (after a split or merge) from its parents' final
   * snapshots: copy the rows whose hash key falls in the child's range. Runs inside a
   * transaction, before `onStart`; reading then starts at the child's beginning. Without this
   * method a child starts empty (through `bootstrap`), at its `TRIM_HORIZON`.
   *
   * The parents are separate read-only connections, not `ATTACH`ed: Deno allows `ATTACH` only
   * with every permission granted.
   *
   * @param db The new, empty snapshot database of the child.
   * @param lineage The child's shard id, hash key range and parents.
   */
  onParents?(db: DatabaseSync, lineage: ShardLineage): void | Promise<void>;
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
