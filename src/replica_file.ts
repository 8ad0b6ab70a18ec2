/**
 * One shard's replica file at a fixed path, kept for readers in any language: a plain SQLite
 * file in WAL mode that other processes open read-only while {@linkcode ReplicaFile} brings it
 * forward. Every change of point is one transaction that carries the point's sequence number
 * (the `streambolt_meta` row), so a reader sees whole points only. A new full snapshot (when no
 * delta leads on) replaces the contents in one transaction too: the file keeps its path and
 * inode, so readers that hold it open simply see the next point.
 *
 * @module
 */
import { dirname, join } from "node:path";
import { DatabaseSync } from "node:sqlite";
import { SnapshotDb } from "./database.ts";
import { applyDeltas, restoreInto, type RestorePlan, scratchBeside } from "./_restore.ts";
import { readSnapshotMetadata, type SnapshotMetadata } from "./metadata.ts";
import type { SnapshotStore } from "./store/snapshot_store.ts";

/** A replica file that cannot be used as it is; the file is left untouched. */
export class ReplicaFileError extends Error {
  /** The file. */
  readonly file: string;

  /**
   * Creates the error.
   *
   * @param file The file.
   * @param message What is wrong with it.
   * @param options The underlying error, as `cause`.
   */
  constructor(file: string, message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "ReplicaFileError";
    this.file = file;
  }
}

/** Which shard a replica file must hold. */
export interface ReplicaFileOptions {
  /** The stream name. */
  stream: string;
  /** The shard id. */
  shardId: string;
}

/** How a point was reached: a full snapshot's contents, deltas, or nothing new. */
export type PointChange = "full" | "delta" | "none";

/** The SQLite files that belong to a database file. */
const SIDE_FILES = ["-wal", "-shm", "-journal"];

/**
 * A shard's replica file, open for writing (one writer; readers open it read-only).
 *
 * @example Usage
 * ```ts ignore
 * import { FileSnapshotStore } from "../mod.ts";
 * import { planRestore } from "./_restore.ts";
 * import { listShardSnapshots } from "./_fetch.ts";
 * import { ReplicaFile } from "./replica_file.ts";
 * const store = new FileSnapshotStore({ root: "./snapshots" });
 * const file = await ReplicaFile.open("./replica/orders/shardId-000000000000.sqlite", {
 *   stream: "orders",
 *   shardId: "shardId-000000000000",
 * });
 * const objects = await listShardSnapshots(store, "orders", "shardId-000000000000", "");
 * const plan = planRestore(objects, { from: file.metadata?.sequenceNumber });
 * if (plan) await file.bringForward(store, plan);
 * file.close();
 * ```
 */
export class ReplicaFile {
  /** The file's path. */
  readonly file: string;
  #options: ReplicaFileOptions;
  #db?: SnapshotDb;
  #meta?: SnapshotMetadata;

  private constructor(file: string, options: ReplicaFileOptions) {
    this.file = file;
    this.#options = options;
  }

  /**
   * Opens the replica file of a shard: an existing file is checked (SQLite's `integrity_check`,
   * the stream and shard in its metadata) and resumed from; a missing one is created by the
   * first {@linkcode ReplicaFile.bringForward}.
   *
   * @param file The file's path.
   * @param options The stream and shard it must hold.
   * @returns The replica file.
   * @throws {ReplicaFileError} When an existing file fails a check; it is left as it is.
   */
  static async open(file: string, options: ReplicaFileOptions): Promise<ReplicaFile> {
    const replica = new ReplicaFile(file, options);
    if (await exists(file)) replica.#db = verifiedWriter(file, options);
    replica.#meta = replica.#db?.metadata();
    return replica;
  }

  /** The point the file holds, or `undefined` before the first. */
  get metadata(): SnapshotMetadata | undefined {
    return this.#meta;
  }

  /** The open connection (for reading the generator's rows, e.g. to seed a child shard). */
  get db(): DatabaseSync | undefined {
    return this.#db?.db;
  }

  /**
   * Brings the file to a plan's point: deltas applied one transaction each; a plan that starts
   * with a full snapshot restores it aside and then installs it (a new file is renamed into
   * place; an existing one has its contents replaced in one transaction).
   *
   * @param store The store the plan's objects are in.
   * @param plan The plan, from {@linkcode planRestore} with `from` the file's point.
   * @param signal Aborts the downloads (a point being applied is finished or rolled back).
   * @returns How the point was reached.
   */
  async bringForward(
    store: SnapshotStore,
    plan: RestorePlan,
    signal?: AbortSignal,
  ): Promise<PointChange> {
    if (plan.path.length === 0) return "none";
    if (plan.path[0].kind === "full") {
      const aside = join(dirname(this.file), `.full-${crypto.randomUUID()}.sqlite`);
      try {
        await restoreInto(store, plan, aside, { signal });
        await this.install(aside);
      } finally {
        for (const suffix of ["", ...SIDE_FILES]) await Deno.remove(aside + suffix).catch(() => {});
      }
      return "full";
    }
    await applyDeltas(store, this.#db!, plan.path, scratchBeside(this.file), signal);
    this.#pointApplied();
    return "delta";
  }

  /**
   * Installs a database file (closed, at a later point of this shard) as the replica's next
   * point. The replica's own file is never removed: a reader holding it open keeps it.
   *
   * @param source The database file; it is consumed when the replica had no file yet.
   */
  async install(source: string): Promise<void> {
    if (this.#db) {
      replaceContents(this.#db.db, source);
      this.#pointApplied();
      return;
    }
    const db = new DatabaseSync(source);
    try {
      db.exec("PRAGMA journal_mode = WAL");
    } finally {
      db.close();
    }
    // A -wal left beside a missing file would be replayed into the new one.
    for (const suffix of SIDE_FILES) await Deno.remove(this.file + suffix).catch(() => {});
    await Deno.rename(source, this.file);
    this.#db = SnapshotDb.openPoint(this.file, "replica");
    this.#meta = this.#db.metadata();
  }

  /** Reads the point again after a transaction applied a new one, and checkpoints the WAL
   * (passive: readers are never waited for; the next point's checkpoint catches up). */
  #pointApplied(): void {
    this.#meta = this.#db!.metadata();
    this.#db!.db.exec("PRAGMA wal_checkpoint(PASSIVE)");
  }

  /**
   * Re-reads the point (after another connection wrote it).
   *
   * @returns The metadata.
   */
  refresh(): SnapshotMetadata | undefined {
    this.#meta = this.#db?.metadata();
    return this.#meta;
  }

  /** Checkpoints the WAL into the file (so it is whole on its own) and closes the writer. */
  close(): void {
    if (!this.#db) return;
    try {
      this.#db.db.exec("PRAGMA wal_checkpoint(TRUNCATE)");
    } catch {
      // A reader in the way: SQLite checkpoints on the next open.
    }
    this.#db.close();
    this.#db = undefined;
  }

  /**
   * Closes the writer and removes the file (a closed shard's, once its children hold points).
   */
  async remove(): Promise<void> {
    this.close();
    for (const suffix of ["", ...SIDE_FILES]) await Deno.remove(this.file + suffix).catch(() => {});
    this.#meta = undefined;
  }

  /** The shard's identity, for error messages. */
  get shard(): string {
    return `${this.#options.stream}/${this.#options.shardId}`;
  }
}

async function exists(file: string): Promise<boolean> {
  try {
    await Deno.stat(file);
    return true;
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return false;
    throw error;
  }
}

/** Opens an existing replica file, checked before anything is written to it. */
function verifiedWriter(file: string, options: ReplicaFileOptions): SnapshotDb {
  const bad = (why: string, cause?: unknown) =>
    new ReplicaFileError(file, `Cannot resume replica file as ${why}: current value is "${file}"`, {
      cause,
    });
  let db: DatabaseSync;
  try {
    db = new DatabaseSync(file);
  } catch (error) {
    throw bad(`it does not open as SQLite (${(error as Error).message})`, error);
  }
  try {
    let check: string[];
    try {
      check = db.prepare("PRAGMA integrity_check").all().map((row) =>
        String(Object.values(row)[0])
      );
    } catch (error) {
      check = [(error as Error).message];
    }
    if (check.join() !== "ok") throw bad(`it fails integrity_check (${check[0]})`);
    const meta = readSnapshotMetadata(db);
    if (!meta) throw bad("it has no streambolt metadata");
    if (meta.stream !== options.stream || meta.shardId !== options.shardId) {
      throw bad(
        `it holds ${meta.stream}/${meta.shardId}, not ${options.stream}/${options.shardId}`,
      );
    }
    db.close();
  } catch (error) {
    db.close();
    if (error instanceof ReplicaFileError) throw error;
    throw bad(`it cannot be read (${(error as Error).message})`, error);
  }
  return SnapshotDb.openPoint(file, "replica");
}

interface SchemaRow {
  type: string;
  name: string;
  sql: string;
}

/**
 * Replaces every table, index, view and trigger of `db` with those of `source`, rows and all,
 * in one transaction: readers see the old point or the new one, never a mix.
 */
export function replaceContents(db: DatabaseSync, source: string): void {
  const src = new DatabaseSync(source, { readOnly: true });
  try {
    const schema = src.prepare(
      `SELECT type, name, sql FROM sqlite_master
       WHERE name NOT LIKE 'sqlite\\_%' ESCAPE '\\' AND sql IS NOT NULL
       ORDER BY CASE type WHEN 'table' THEN 0 WHEN 'index' THEN 1 ELSE 2 END, rowid`,
    ).all() as unknown as SchemaRow[];
    db.exec("BEGIN IMMEDIATE");
    try {
      dropEverything(db);
      for (const object of schema) {
        db.exec(object.sql);
        if (object.type === "table") copyRows(src, db, object.name);
      }
      if (schema.some((o) => o.type === "table" && /AUTOINCREMENT/i.test(o.sql))) {
        copyRows(src, db, "sqlite_sequence", true);
      }
      db.exec("COMMIT");
    } catch (error) {
      if (db.isTransaction) db.exec("ROLLBACK");
      throw error;
    }
  } finally {
    src.close();
  }
}

function dropEverything(db: DatabaseSync): void {
  const objects = db.prepare(
    `SELECT type, name FROM sqlite_master WHERE name NOT LIKE 'sqlite\\_%' ESCAPE '\\'
     AND type IN ('view', 'trigger', 'table') ORDER BY type = 'table'`,
  ).all() as unknown as SchemaRow[];
  for (const o of objects) db.exec(`DROP ${o.type.toUpperCase()} IF EXISTS ${quote(o.name)}`);
}

/** Copies every row of a table; counted afterwards, as a failed step ends iteration quietly. */
function copyRows(src: DatabaseSync, db: DatabaseSync, table: string, replace = false): void {
  const select = src.prepare(`SELECT * FROM ${quote(table)}`);
  select.setReadBigInts(true);
  const columns = select.columns().map((c) => c.name);
  if (replace) db.exec(`DELETE FROM ${quote(table)}`);
  const insert = db.prepare(
    `INSERT INTO ${quote(table)} (${columns.map(quote).join(", ")}) VALUES (${
      columns.map(() => "?").join(", ")
    })`,
  );
  let copied = 0;
  for (const row of select.iterate()) {
    insert.run(...(Object.values(row) as Array<null | number | bigint | string | Uint8Array>));
    copied++;
  }
  const count = (d: DatabaseSync) =>
    Number((d.prepare(`SELECT count(*) AS n FROM ${quote(table)}`).get() as { n: number }).n);
  if (count(src) !== copied || count(db) !== copied) {
    throw new Error(`Cannot copy table as not every row was read: current value is "${table}"`);
  }
}

function quote(name: string): string {
  return `"${name.replaceAll('"', '""')}"`;
}
