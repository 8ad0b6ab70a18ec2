/**
 * The simulated application: generator releases 1 to 4 and the model they are checked against.
 *
 * Release 1 keeps `kv(k TEXT PRIMARY KEY, v TEXT)`: a record upserts its key (a NULL key, which
 * SQLite allows in a TEXT primary key, inserts a new row each time) or deletes it. Each later
 * release's `onStart` adds one thing and keeps the earlier ones: 2 an index, 3 a config row,
 * 4 a table. `onStart` is idempotent and touches nothing records touch, so the state at a
 * sequence number under release `v` is a pure function: release `v`'s `onStart` on a fresh
 * database, then every record up to it ({@linkcode modelDump}).
 *
 * @module
 */
import { DatabaseSync } from "node:sqlite";
import type { RecordBatch, SnapshotGenerator } from "../../mod.ts";
import { META_TABLE } from "../../format.ts";

/** The newest release. */
export const LAST_RELEASE = 4;

/** One scripted record. */
export interface SimRecord {
  /** Decimal sequence number. */
  seq: string;
  /** The key; `null` stores a NULL primary key. */
  key: string | null;
  /** The value; `null` deletes the key. */
  value: string | null;
}

const decoder = new TextDecoder();

function onStart(db: DatabaseSync, release: number): void {
  db.exec("CREATE TABLE IF NOT EXISTS kv (k TEXT PRIMARY KEY, v TEXT)");
  if (release >= 2) db.exec("CREATE INDEX IF NOT EXISTS kv_by_value ON kv(v)");
  if (release >= 3) {
    db.exec("CREATE TABLE IF NOT EXISTS config (name TEXT PRIMARY KEY, value TEXT)");
    db.exec("INSERT OR IGNORE INTO config VALUES ('release', '3')");
  }
  if (release >= 4) {
    db.exec("CREATE TABLE IF NOT EXISTS tags (tag TEXT PRIMARY KEY NOT NULL, note TEXT)");
  }
}

function apply(db: DatabaseSync, records: { key: string | null; value: string | null }[]): void {
  const upsert = db.prepare(
    "INSERT INTO kv (k, v) VALUES (?, ?) ON CONFLICT(k) DO UPDATE SET v = excluded.v",
  );
  const remove = db.prepare("DELETE FROM kv WHERE k = ?");
  for (const r of records) {
    if (r.value === null) remove.run(r.key);
    else upsert.run(r.key, r.value);
  }
}

/** Release `release` of the generator. */
export function simGenerator(release: number): SnapshotGenerator {
  return {
    onStart: (db) => onStart(db, release),
    onRecords(db: DatabaseSync, batch: RecordBatch) {
      apply(db, batch.records.map((r) => JSON.parse(decoder.decode(r.data))));
    },
  };
}

/** A database's user tables as text: schema and rows, streambolt's own table left out. */
export function dumpDb(db: DatabaseSync): string {
  const objects = db.prepare(
    `SELECT type, name, tbl_name, sql FROM sqlite_master
     WHERE name NOT LIKE 'sqlite_%' AND tbl_name <> ? ORDER BY type, name`,
  ).all(META_TABLE) as { type: string; name: string; sql: string | null }[];
  const lines = objects.map((o) => `${o.type} ${o.name}: ${o.sql}`);
  for (const o of objects.filter((o) => o.type === "table")) {
    const rows = db.prepare(`SELECT * FROM "${o.name}"`).all();
    const text = rows.map((r) => JSON.stringify(Object.values(r))).sort();
    lines.push(`${o.name} (${rows.length} rows): ${text.join(" ")}`);
  }
  return lines.join("\n");
}

/** {@linkcode dumpDb} of a file, opened read-only. */
export function dumpFile(file: string): string {
  const db = new DatabaseSync(file, { readOnly: true });
  try {
    return dumpDb(db);
  } finally {
    db.close();
  }
}

/** The sequence number a database says it is at. */
export function sequenceOf(file: string): string {
  const db = new DatabaseSync(file, { readOnly: true });
  try {
    const row = db.prepare(`SELECT sequence_number FROM ${META_TABLE} WHERE id = 1`).get();
    return String((row as { sequence_number: string }).sequence_number);
  } finally {
    db.close();
  }
}

/** The model: release `release` on a fresh database, then every record up to `seq`. */
export function modelDump(records: SimRecord[], seq: string, release: number): string {
  const db = new DatabaseSync(":memory:");
  try {
    onStart(db, release);
    apply(db, records.filter((r) => BigInt(r.seq) <= BigInt(seq)));
    return dumpDb(db);
  } finally {
    db.close();
  }
}
