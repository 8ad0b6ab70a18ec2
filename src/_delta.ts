/**
 * Deltas: the changes a run made to a snapshot database, as a SQLite session patchset with a
 * small header that names the point they apply to and the point they reach. Encoding, decoding,
 * verifying and applying them.
 *
 * Stored bytes: `zstd( "streambolt-delta 1\n" + header JSON + "\n" + patchset )` (or without
 * zstd for the `none` encoding), with the SHA-256 of the stored bytes in the object's metadata.
 *
 * @module
 */
import { createHash } from "node:crypto";
import { constants, type DatabaseSync } from "node:sqlite";
import zlib from "node:zlib";
import { SnapshotIntegrityError } from "./errors.ts";
import { recordTransfer } from "./_telemetry.ts";
import { readSnapshotMetadata } from "./metadata.ts";
import type { Snapshot, SnapshotEncoding } from "./snapshot_key.ts";
import type { SnapshotStore } from "./store/snapshot_store.ts";

const MAGIC = "streambolt-delta 1\n";
const ZSTD_LEVEL = 3;

/** What a delta says about itself. */
export interface DeltaHeader {
  /** The stream. */
  stream: string;
  /** The shard. */
  shardId: string;
  /** The point (sequence number) the delta applies to. */
  baseSequenceNumber: string;
  /** The point it reaches. */
  sequenceNumber: string;
  /** The schema fingerprint of the database it applies to (unchanged by the delta). */
  schema: string;
  /**
   * Which publication of the base point it was made on: the `created_at` (the lineage's start)
   * and `updated_at` (when its last records were applied) of the base's metadata. A point can
   * be published again with other contents (the store lost it and the points after it, and a
   * producer rebuilt the shard, perhaps with another release of its generator): a delta applies
   * only to the publication it was made on. Absent in deltas written before it was added.
   */
  base?: BasePublication;
  /** When it was made (ISO 8601). */
  createdAt: string;
}

/** Which publication of a point a delta was made on (see {@linkcode DeltaHeader.base}). */
export interface BasePublication {
  /** The base's `created_at`: when its lineage was started. */
  createdAt: string;
  /** The base's `updated_at`: when its last records were applied. */
  updatedAt: string;
}

/**
 * A delta refused because the database holds another publication of its base point: the same
 * sequence number, published again with other contents after the store lost it. Not a bad
 * object: whoever holds the other publication takes the point again from the store.
 */
export class OtherPublicationError extends SnapshotIntegrityError {}

/** A decoded delta. */
export interface Delta {
  /** What it says about itself. */
  header: DeltaHeader;
  /** The SQLite session patchset. */
  patchset: Uint8Array;
}

/** A delta encoded for storage. */
export interface EncodedDelta {
  /** The stored bytes. */
  bytes: Uint8Array;
  /** Hex SHA-256 of the stored bytes. */
  sha256: string;
  /** Size before encoding. */
  rawSize: number;
}

/**
 * Encodes a delta for storage.
 *
 * @param delta The header and patchset.
 * @param encoding `zstd` or `none`.
 * @returns The stored bytes and their checksum.
 */
export function encodeDelta(delta: Delta, encoding: SnapshotEncoding): EncodedDelta {
  const head = new TextEncoder().encode(`${MAGIC}${JSON.stringify(delta.header)}\n`);
  const raw = new Uint8Array(head.length + delta.patchset.length);
  raw.set(head);
  raw.set(delta.patchset, head.length);
  const bytes = encoding === "zstd"
    ? new Uint8Array(zlib.zstdCompressSync(raw, {
      params: {
        [zlib.constants.ZSTD_c_compressionLevel]: ZSTD_LEVEL,
        [zlib.constants.ZSTD_c_checksumFlag]: 1,
      },
    }))
    : raw;
  return { bytes, sha256: sha256(bytes), rawSize: raw.length };
}

/**
 * Downloads a delta and verifies it: its SHA-256 against the one stored with it (before it is
 * decompressed), then its header against its key.
 *
 * @returns The decoded delta.
 * @throws {SnapshotIntegrityError} When any check fails.
 */
export async function fetchDelta(
  store: SnapshotStore,
  snapshot: Snapshot,
  scratchFile: string,
  signal?: AbortSignal,
): Promise<Delta> {
  const bad = (why: string, cause?: unknown) =>
    new SnapshotIntegrityError(
      snapshot.key,
      `Cannot use delta as ${why}: current value is "${snapshot.key}"`,
      { cause },
    );
  let bytes: Uint8Array;
  let metadata: Record<string, string>;
  try {
    metadata = (await store.download(snapshot.key, scratchFile, { signal })).metadata;
    bytes = await Deno.readFile(scratchFile);
    recordTransfer("downloaded", snapshot, "delta", bytes.length);
  } finally {
    await Deno.remove(scratchFile).catch(() => {});
  }
  if (!metadata.sha256) throw bad("it has no stored checksum");
  const actual = sha256(bytes);
  if (actual !== metadata.sha256) {
    throw bad(`its SHA-256 ${actual} does not match the stored ${metadata.sha256}`);
  }
  let delta: Delta;
  try {
    delta = decodeDelta(snapshot.encoding === "zstd" ? zlib.zstdDecompressSync(bytes) : bytes);
  } catch (error) {
    throw bad(`it does not decode (${(error as Error).message})`, error);
  }
  const h = delta.header;
  if (
    h.stream !== snapshot.stream || h.shardId !== snapshot.shardId ||
    h.sequenceNumber !== snapshot.sequenceNumber ||
    h.baseSequenceNumber !== snapshot.baseSequenceNumber
  ) {
    throw bad(
      `its contents are of ${h.stream}/${h.shardId} from ${h.baseSequenceNumber} to ${h.sequenceNumber}`,
    );
  }
  return delta;
}

function decodeDelta(raw: Uint8Array): Delta {
  const magic = new TextEncoder().encode(MAGIC);
  if (raw.length < magic.length || magic.some((b, i) => raw[i] !== b)) {
    throw new Error("it is not a streambolt delta");
  }
  const end = raw.indexOf(0x0a, magic.length);
  if (end < 0) throw new Error("its header is not terminated");
  const header = JSON.parse(new TextDecoder().decode(raw.subarray(magic.length, end)));
  return { header, patchset: raw.subarray(end + 1) };
}

/**
 * Applies a verified delta to a database that holds exactly its base point, in one
 * transaction: the base is checked first (stream, shard, sequence number, schema), any conflict
 * aborts, and afterwards the database must have reached the delta's point. On any failure
 * nothing is changed.
 *
 * @throws {SnapshotIntegrityError} When the delta does not fit the database.
 */
export function applyDelta(db: DatabaseSync, delta: Delta, key: string): void {
  const h = delta.header;
  const bad = (why: string) =>
    new SnapshotIntegrityError(key, `Cannot apply delta as ${why}: current value is "${key}"`);
  const before = readSnapshotMetadata(db);
  if (!before || before.stream !== h.stream || before.shardId !== h.shardId) {
    throw bad(`the database is not of ${h.stream}/${h.shardId}`);
  }
  if (before.sequenceNumber !== h.baseSequenceNumber) {
    throw bad(
      `it applies to ${h.baseSequenceNumber} but the database is at ${before.sequenceNumber}`,
    );
  }
  if (h.base && (before.createdAt !== h.base.createdAt || before.updatedAt !== h.base.updatedAt)) {
    throw new OtherPublicationError(
      key,
      `Cannot apply delta as it was made on another publication of point ${h.baseSequenceNumber} (applied at ${h.base.updatedAt}, in a lineage started at ${h.base.createdAt}; the database's was applied at ${before.updatedAt}, started at ${before.createdAt}): current value is "${key}"`,
    );
  }
  if (schemaFingerprint(db) !== h.schema) throw bad("the database's schema is not its base's");
  db.exec("BEGIN IMMEDIATE");
  try {
    const applied = db.applyChangeset(delta.patchset, {
      onConflict: () => constants.SQLITE_CHANGESET_ABORT,
    });
    if (!applied) throw bad("a change conflicts with the database");
    const after = readSnapshotMetadata(db);
    if (after?.sequenceNumber !== h.sequenceNumber) {
      throw bad(`the database reached ${after?.sequenceNumber}, not ${h.sequenceNumber}`);
    }
    db.exec("COMMIT");
  } catch (error) {
    if (db.isTransaction) db.exec("ROLLBACK");
    throw error;
  }
}

/**
 * A fingerprint of a database's schema (tables, indexes, views, triggers; not SQLite's own
 * `sqlite_%` tables, which `ANALYZE` may add): a delta applies only where it matches.
 */
export function schemaFingerprint(db: DatabaseSync): string {
  const rows = db.prepare(
    `SELECT type, name, tbl_name, sql FROM sqlite_master
     WHERE name NOT LIKE 'sqlite\\_%' ESCAPE '\\' ORDER BY type, name`,
  ).all();
  return createHash("sha256").update(JSON.stringify(rows)).digest("hex");
}

/**
 * The tables whose changes a session cannot record: those without a primary key (SQLite's own
 * `sqlite_%` tables aside).
 */
export function tablesWithoutPrimaryKey(db: DatabaseSync): string[] {
  return userTables(db).filter((name) => {
    const columns = db.prepare("SELECT pk FROM pragma_table_info(?)").all(name) as Array<
      { pk: number }
    >;
    return !columns.some((c) => c.pk > 0);
  });
}

/**
 * The tables that can hold a row whose primary key is NULL, which a session does not record:
 * rowid tables whose primary key is not the rowid (`INTEGER PRIMARY KEY`) and has a column
 * not declared `NOT NULL` (`WITHOUT ROWID` tables refuse NULL keys).
 */
export function tablesWithNullableKey(db: DatabaseSync): string[] {
  return userTables(db).filter((name) => {
    const keyIndex = db.prepare(
      "SELECT 1 FROM pragma_index_list(?) WHERE origin = 'pk'",
    ).get(name);
    const nullable = db.prepare(
      'SELECT 1 FROM pragma_table_info(?) WHERE pk > 0 AND "notnull" = 0',
    ).get(name);
    return keyIndex !== undefined && nullable !== undefined;
  });
}

/** The database's tables, SQLite's own `sqlite_%` tables aside. */
function userTables(db: DatabaseSync): string[] {
  const tables = db.prepare(
    `SELECT name FROM sqlite_master
     WHERE type = 'table' AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' ORDER BY name`,
  ).all() as Array<{ name: string }>;
  return tables.map((t) => t.name);
}

function sha256(bytes: Uint8Array): string {
  return createHash("sha256").update(bytes).digest("hex");
}
