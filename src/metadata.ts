/**
 * The metadata every snapshot database carries in its `streambolt_meta` table: which stream
 * and shard it holds, up to which sequence number, and whether the shard was closed. The
 * sequence number is updated in the same transaction as the records it covers.
 *
 * @module
 */
import type { DatabaseSync } from "node:sqlite";
import type { ChildShard } from "./records.ts";

/** The name of the metadata table inside every snapshot. */
export const META_TABLE = "streambolt_meta";

/**
 * The snapshot format version this module writes. Version 2 added deltas (a new kind of object,
 * which version-1 readers pass over) and the metadata columns `last_arrival_at` and
 * `accepted_gaps`; a version-1 snapshot is upgraded when a producer builds on it.
 */
export const FORMAT_VERSION = 2;

/** A gap a producer was told to accept: records after `after` may have been trimmed by the
 * stream's retention before they were read. */
export interface AcceptedGap {
  /** The sequence number the snapshot had reached when the gap was accepted. */
  after: string;
  /** When the last record before the gap arrived in the stream (ISO 8601), if known. */
  lastArrivalAt?: string;
  /** The stream's retention period then, in hours. */
  retentionHours: number;
  /** When the gap was accepted (ISO 8601). */
  acceptedAt: string;
}

/** What a snapshot database records about itself. */
export interface SnapshotMetadata {
  /** The format version that wrote it. */
  formatVersion: number;
  /** The stream name. */
  stream: string;
  /** The shard id. */
  shardId: string;
  /** The last sequence number applied (`BOOTSTRAP_SEQUENCE` if none). */
  sequenceNumber: string;
  /** Records applied across the snapshot's whole lineage. */
  recordsApplied: number;
  /** Records skipped as bad (only with skipping turned on), across the lineage. */
  recordsSkipped: number;
  /** When the lineage was started (ISO 8601). */
  createdAt: string;
  /** When records were last applied (ISO 8601). */
  updatedAt: string;
  /** True when the shard is closed and every record of it is applied. */
  final: boolean;
  /** For a final snapshot, the shards that continue this one. */
  childShards: ChildShard[];
  /** The shards this one continues (after a split or merge), when it was seeded from them. */
  parentShards: string[];
  /** When the last record applied arrived in the stream (ISO 8601), if known. */
  lastArrivalAt?: string;
  /** Gaps the producer was told to accept (records possibly trimmed before they were read). */
  acceptedGaps: AcceptedGap[];
}

/**
 * Reads the metadata of a snapshot database.
 *
 * @param db An open snapshot database.
 * @returns The metadata, or `undefined` when the database has no metadata table.
 *
 * @example Usage
 * ```ts
 * import assert from "node:assert/strict";
 * import { DatabaseSync } from "node:sqlite";
 * import { readSnapshotMetadata } from "./metadata.ts";
 * const db = new DatabaseSync(":memory:");
 * assert.equal(readSnapshotMetadata(db), undefined); // not a snapshot
 * ```
 */
export function readSnapshotMetadata(
  db: DatabaseSync,
): SnapshotMetadata | undefined {
  const table = db.prepare(
    "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?",
  )
    .get(META_TABLE);
  if (!table) return undefined;
  const row = db.prepare(`SELECT * FROM ${META_TABLE} WHERE id = 1`).get() as
    | Record<string, string | number>
    | undefined;
  if (!row) return undefined;
  return {
    formatVersion: Number(row.format_version),
    stream: String(row.stream),
    shardId: String(row.shard_id),
    sequenceNumber: String(row.sequence_number),
    recordsApplied: Number(row.records_applied),
    recordsSkipped: Number(row.records_skipped ?? 0),
    createdAt: String(row.created_at),
    updatedAt: String(row.updated_at),
    final: Number(row.final) === 1,
    childShards: JSON.parse(String(row.child_shards ?? "[]")),
    parentShards: JSON.parse(String(row.parent_shards ?? "[]")),
    lastArrivalAt: row.last_arrival_at ? String(row.last_arrival_at) : undefined,
    acceptedGaps: JSON.parse(String(row.accepted_gaps ?? "[]")),
  };
}

/** Creates the metadata table and its one row in a new snapshot database. */
export function initSnapshotMetadata(
  db: DatabaseSync,
  init: { stream: string; shardId: string; sequenceNumber: string; parentShards?: string[] },
): void {
  const now = new Date().toISOString();
  db.exec(`CREATE TABLE ${META_TABLE} (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    format_version INTEGER NOT NULL,
    stream TEXT NOT NULL,
    shard_id TEXT NOT NULL,
    sequence_number TEXT NOT NULL,
    records_applied INTEGER NOT NULL,
    records_skipped INTEGER NOT NULL DEFAULT 0,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    final INTEGER NOT NULL DEFAULT 0,
    child_shards TEXT NOT NULL DEFAULT '[]',
    parent_shards TEXT NOT NULL DEFAULT '[]',
    last_arrival_at TEXT,
    accepted_gaps TEXT NOT NULL DEFAULT '[]'
  )`);
  db.prepare(
    `INSERT INTO ${META_TABLE} (id, format_version, stream, shard_id, sequence_number,
      records_applied, created_at, updated_at, parent_shards) VALUES (1, ?, ?, ?, ?, 0, ?, ?, ?)`,
  ).run(
    FORMAT_VERSION,
    init.stream,
    init.shardId,
    init.sequenceNumber,
    now,
    now,
    JSON.stringify(init.parentShards ?? []),
  );
}

/**
 * Upgrades the metadata of a version-1 snapshot to the version this module writes (new columns,
 * same rows). A schema change: the run that does it publishes a full snapshot.
 *
 * @returns True when the metadata was upgraded.
 */
export function upgradeSnapshotMetadata(db: DatabaseSync): boolean {
  const meta = readSnapshotMetadata(db);
  if (!meta || meta.formatVersion >= FORMAT_VERSION) return false;
  db.exec(`ALTER TABLE ${META_TABLE} ADD COLUMN last_arrival_at TEXT;
    ALTER TABLE ${META_TABLE} ADD COLUMN accepted_gaps TEXT NOT NULL DEFAULT '[]'`);
  db.prepare(`UPDATE ${META_TABLE} SET format_version = ? WHERE id = 1`).run(FORMAT_VERSION);
  return true;
}
