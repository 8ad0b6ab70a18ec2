/**
 * {@linkcode SnapshotDb}, the one owner of a snapshot database's lifecycle: open a file (a
 * downloaded snapshot, or nothing yet) and configure it for how it is kept, bootstrap it or seed
 * it from parent shards, run the generator's `onStart`, apply pages of records each in one
 * transaction with the sequence number they reach, or deltas, mark the shard final, compact,
 * close. Every database streambolt writes goes through it: the snapshotter's working copy, the
 * live replica (following Kinesis or the store) and a restore's target are thin users of it.
 *
 * @module
 */
import { DatabaseSync, type StatementSync } from "node:sqlite";
import {
  applyDelta,
  type BasePublication,
  type Delta,
  schemaFingerprint,
  tablesWithNullableKey,
  tablesWithoutPrimaryKey,
} from "./_delta.ts";
import { InvalidArgumentError, SnapshotGeneratorError, SnapshotIntegrityError } from "./errors.ts";
import type { ParentSnapshot, SnapshotGenerator } from "./generator.ts";
import type { HashKeyRange } from "./kinesis/hash_key.ts";
import {
  type AcceptedGap,
  FORMAT_VERSION,
  initSnapshotMetadata,
  META_TABLE,
  readSnapshotMetadata,
  type SnapshotMetadata,
  upgradeSnapshotMetadata,
} from "./metadata.ts";
import type { ChildShard, RecordBatch, ShardPage, ShardRecord } from "./records.ts";
import { assertSequenceNumber, BOOTSTRAP_SEQUENCE } from "./snapshot_key.ts";

/** Called for each record skipped because the generator failed on it. */
export type SkipHandler = (record: ShardRecord, shardId: string, error: unknown) => void;

/** A parent shard's final snapshot, downloaded to a local file. */
export interface ParentFile {
  /** The parent shard. */
  shardId: string;
  /** The plain SQLite file. */
  file: string;
  /** Its metadata. */
  metadata: SnapshotMetadata;
}

/** How a snapshot database is seeded when it has no metadata yet: from its parents. */
export interface SeedFromParents {
  /** The parents' final snapshots. */
  parents: ParentFile[];
  /** The child's hash key range. */
  hashKeyRange: HashKeyRange;
}

/**
 * How a snapshot database is kept while it is written.
 *
 * - `"work"`: a producer's private working copy, published only after it is closed and copied:
 *   no journal on disk, no fsync (a crash discards the whole working directory).
 * - `"replica"`: a database served to readers while it is written: WAL, `synchronous = NORMAL`.
 * - `"restore"`: a restore's private target, renamed into place only once whole: no journal on
 *   disk, no fsync (a failed restore removes it). The journal is kept in memory so that a delta
 *   that fails is rolled back: a refresh that fails puts its local point back.
 * - `"scratch"`: a restore's private target that the restore wrote whole (from a full snapshot)
 *   and removes on any failure: no rollback journal at all, no fsync. A delta that fails leaves
 *   it half-applied, which is why only a file that is thrown away on failure may be opened so.
 */
export type Durability = "work" | "replica" | "restore" | "scratch";

/** The pragmas each {@linkcode Durability} opens with. */
const PRAGMAS: Record<Durability, string> = {
  work: "PRAGMA journal_mode = MEMORY; PRAGMA synchronous = OFF; PRAGMA temp_store = MEMORY",
  replica: "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA busy_timeout = 5000",
  restore: "PRAGMA journal_mode = MEMORY; PRAGMA synchronous = OFF",
  scratch: "PRAGMA journal_mode = OFF; PRAGMA synchronous = OFF",
};

/** Options of a connection that may set `journal_mode = OFF` (not yet in Deno's types). */
const UNDEFENDED = { defensive: false } as ConstructorParameters<typeof DatabaseSync>[1];
/** A connection whose defensive mode can be set again (not yet in Deno's types). */
type Defensible = DatabaseSync & { enableDefensive?: (active: boolean) => void };

/** Options for {@linkcode SnapshotDb.open}. */
export interface SnapshotDbOptions {
  /** The stream name. */
  stream: string;
  /** The shard id. */
  shardId: string;
  /** Turns records into rows. */
  generator: SnapshotGenerator;
  /** How the file is kept while it is written ({@linkcode Durability}): `"work"` (default)
   * or `"replica"`. */
  durability?: "work" | "replica";
  /** The store key the file was downloaded from: it must then carry streambolt metadata. */
  baseKey?: string;
  /** A new database is seeded from these parents through the generator's `onParents`. */
  seed?: SeedFromParents;
  /** When given, a record the generator throws on is skipped (and reported here) instead of
   * failing its page. */
  onSkip?: SkipHandler;
  /** Record the changes made from the opened point on (before `onStart`), so they can be
   * published as a delta. A new database starts recording once {@linkcode
   * SnapshotDb.restartTracking} is called. */
  trackChanges?: boolean;
  /** Stop recording changes (the next point is then published whole) once more records than
   * this were applied since the last point: the recorded changes are held in memory. Defaults
   * to 200,000. */
  maxDeltaRecords?: number;
}

/** The changes since the last point, as a SQLite session patchset. */
export interface Changes {
  /** The patchset. */
  patchset: Uint8Array;
  /** The schema fingerprint of the database (unchanged since the last point). */
  schema: string;
  /** Which publication of the last point the changes were made on. */
  base: BasePublication;
}

type Session = ReturnType<DatabaseSync["createSession"]>;

const DEFAULT_MAX_DELTA_RECORDS = 200_000;

/** A snapshot database open for writing. */
export class SnapshotDb {
  /** The database file. */
  readonly file: string;
  /** The open connection (for reading inside the owner's work, never for transactions). */
  readonly db: DatabaseSync;
  /** The shard and its generator; none for a point opened to apply deltas to. */
  #options?: SnapshotDbOptions;
  #sequenceNumber = BOOTSTRAP_SEQUENCE;
  #final = false;
  #update?: StatementSync;
  #closed = false;
  #session?: Session;
  #trackedSchema?: string;
  #trackedBase?: BasePublication;
  #trackedRecords = 0;
  #untracked?: string;

  private constructor(file: string, db: DatabaseSync, options?: SnapshotDbOptions) {
    this.file = file;
    this.db = db;
    this.#options = options;
  }

  /** A connection to `file`, configured for how it is kept. */
  static #connect(file: string, durability: Durability): DatabaseSync {
    const scratch = durability === "scratch";
    // node:sqlite opens connections in SQLite's defensive mode, which ignores
    // `journal_mode = OFF` without an error: a scratch file's connection leaves it only to set
    // its pragmas. Where that is not possible, the file is kept as a restore's.
    const db = new DatabaseSync(file, scratch ? UNDEFENDED : undefined);
    try {
      db.exec(PRAGMAS[durability]);
      if (scratch) {
        (db as Defensible).enableDefensive?.(true);
        const { journal_mode } = db.prepare("PRAGMA journal_mode").get() as {
          journal_mode: string;
        };
        if (journal_mode !== "off") db.exec(PRAGMAS.restore);
      }
      return db;
    } catch (error) {
      db.close();
      throw error;
    }
  }

  /**
   * Opens (or creates) a snapshot database, gives it metadata if it has none (seeded from its
   * parents, or through the generator's `bootstrap`), and runs the generator's `onStart`.
   *
   * @param file The database file: a downloaded snapshot, or a path to create.
   * @param options The shard, the generator and how the file is kept.
   * @returns The open database.
   */
  static async open(file: string, options: SnapshotDbOptions): Promise<SnapshotDb> {
    const db = SnapshotDb.#connect(file, options.durability ?? "work");
    const snapshotDb = new SnapshotDb(file, db, options);
    try {
      await snapshotDb.#initialise();
      return snapshotDb;
    } catch (error) {
      snapshotDb.close();
      throw error;
    }
  }

  /**
   * Opens a database that holds a point (a verified download) as it is, to bring it forward
   * with {@linkcode SnapshotDb.applyDelta}: no generator runs, and no records can be applied.
   *
   * @param file The database file, with streambolt metadata.
   * @param durability `"replica"` (served to readers while deltas apply), `"restore"` (a
   * restore's private target) or `"scratch"` (one thrown away if any delta fails).
   * @returns The open database.
   * @throws {SnapshotIntegrityError} Naming the file, when it has no streambolt metadata.
   */
  static openPoint(file: string, durability: "replica" | "restore" | "scratch"): SnapshotDb {
    const snapshotDb = new SnapshotDb(file, SnapshotDb.#connect(file, durability));
    try {
      snapshotDb.#readPoint();
      return snapshotDb;
    } catch (error) {
      snapshotDb.close();
      throw error;
    }
  }

  /** The last sequence number applied. */
  get sequenceNumber(): string {
    return this.#sequenceNumber;
  }

  /** Whether the shard is closed and every record of it applied. */
  get final(): boolean {
    return this.#final;
  }

  /**
   * Reads the metadata as it stands.
   *
   * @returns The metadata.
   */
  metadata(): SnapshotMetadata {
    return readSnapshotMetadata(this.db)!;
  }

  /**
   * Applies a verified delta whole, in one transaction, to the point it applies to, and moves
   * to the point it reaches.
   *
   * @param delta The downloaded delta.
   * @param key Its store key, for errors.
   * @throws {SnapshotIntegrityError} When the delta does not fit the database (nothing changes).
   */
  applyDelta(delta: Delta, key: string): void {
    applyDelta(this.db, delta, key);
    this.#readPoint();
  }

  /** The point the metadata holds. */
  #readPoint(): void {
    const meta = readSnapshotMetadata(this.db);
    if (!meta) {
      throw new SnapshotIntegrityError(
        this.file,
        `Cannot use snapshot as it has no streambolt metadata: current value is "${this.file}"`,
      );
    }
    this.#sequenceNumber = meta.sequenceNumber;
    this.#final = meta.final;
  }

  /** The shard and its generator, which applying records needs. */
  get #withGenerator(): SnapshotDbOptions {
    if (this.#options) return this.#options;
    throw new InvalidArgumentError(
      `Cannot apply records as the database was opened without a generator: current value is "${this.file}"`,
    );
  }

  /**
   * Applies a page: its records, in one transaction with the sequence number of its last
   * record, and on the last page of a closed shard the child shards (the database is final).
   * A generator failure rolls the page back and is reported as a
   * {@linkcode SnapshotGeneratorError} naming the record it failed on.
   *
   * @param page The page.
   * @returns The number of records applied.
   */
  async applyPage(page: ShardPage): Promise<number> {
    const o = this.#withGenerator;
    const children = page.closed ? page.childShards : undefined;
    if (page.records.length === 0) {
      if (children) {
        await this.#commit(undefined, children, () => Promise.resolve({ applied: 0, skipped: 0 }));
      }
      return 0;
    }
    let applied: number;
    try {
      applied = await this.#applyWhole(page, children);
    } catch (error) {
      if (!(error instanceof GeneratorFailure)) throw error;
      applied = await this.#applyOneByOne(page, children, error.cause);
    }
    this.#sequenceNumber = page.records[page.records.length - 1].sequenceNumber;
    const limit = o.maxDeltaRecords ?? DEFAULT_MAX_DELTA_RECORDS;
    if (this.#session && (this.#trackedRecords += page.records.length) > limit) {
      this.#stopTracking(`more than ${limit} records were applied since the last point`);
    }
    return applied;
  }

  /**
   * Starts recording changes afresh from the current point (after a point was published).
   */
  restartTracking(): void {
    this.#session?.close();
    this.#session = this.db.createSession();
    this.#trackedSchema = schemaFingerprint(this.db);
    const meta = this.metadata();
    this.#trackedBase = { createdAt: meta.createdAt, updatedAt: meta.updatedAt };
    this.#trackedRecords = 0;
    this.#untracked = undefined;
  }

  /**
   * Why the changes since the last point cannot be published as a delta, if they cannot:
   * changes not recorded (a new database, too many records), tables a session cannot record
   * (no primary key, or one that may be NULL), or a schema change (sessions record rows, not schema).
   *
   * @returns The reason, or `undefined` when a delta can be taken.
   */
  deltaBlocker(): string | undefined {
    if (!this.#session) return this.#untracked ?? "changes are not recorded";
    const noKey = tablesWithoutPrimaryKey(this.db);
    if (noKey.length > 0) return `tables without a primary key: ${noKey.join(", ")}`;
    const nullable = tablesWithNullableKey(this.db);
    if (nullable.length > 0) {
      return `tables whose primary key may be NULL (declare it NOT NULL): ${nullable.join(", ")}`;
    }
    if (schemaFingerprint(this.db) !== this.#trackedSchema) return "the schema changed";
    return undefined;
  }

  /**
   * The changes recorded since the last point, as a patchset; recording restarts from here.
   *
   * @returns The changes, or `undefined` when {@linkcode SnapshotDb.deltaBlocker} names a
   * reason they cannot be taken.
   */
  takeChanges(): Changes | undefined {
    if (this.deltaBlocker() !== undefined) return undefined;
    const changes = {
      patchset: this.#session!.patchset(),
      schema: this.#trackedSchema!,
      base: this.#trackedBase!,
    };
    this.restartTracking();
    return changes;
  }

  #stopTracking(reason: string): void {
    this.#session?.close();
    this.#session = undefined;
    this.#untracked = reason;
  }

  /**
   * Records a gap the producer was told to accept, in the metadata (and so in the next point).
   *
   * @param gap The gap.
   */
  async recordGap(gap: AcceptedGap): Promise<void> {
    const gaps = [...this.metadata().acceptedGaps, gap];
    await inTransaction(this.db, () => {
      this.db.prepare(`UPDATE ${META_TABLE} SET accepted_gaps = ? WHERE id = 1`)
        .run(JSON.stringify(gaps));
      return Promise.resolve();
    });
  }

  /** Hands free pages back to the file system (`PRAGMA incremental_vacuum`). */
  compact(): void {
    // Deno allows ATTACH, and so VACUUM and VACUUM INTO, only with every permission granted.
    // Snapshots are created with auto_vacuum = INCREMENTAL instead, so free pages can be handed
    // back without ATTACH; zstd then absorbs the slack in partly-used pages.
    this.db.exec("PRAGMA incremental_vacuum");
  }

  /** Refreshes the query planner's statistics, for the consumers of a full snapshot. */
  optimize(): void {
    this.db.exec("PRAGMA optimize");
  }

  /** Closes the database; closing twice does nothing. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#session?.close();
    this.#session = undefined;
    if (this.db.isOpen) this.db.close();
  }

  async #initialise(): Promise<void> {
    const o = this.#withGenerator;
    let meta = readSnapshotMetadata(this.db);
    const isBase = meta !== undefined;
    if (!meta && o.baseKey !== undefined) {
      throw new SnapshotIntegrityError(
        o.baseKey,
        `Cannot build on snapshot as it has no metadata: current value is "${o.baseKey}"`,
      );
    }
    if (!meta) {
      // Must precede the first table: lets `compact` free pages without VACUUM.
      this.db.exec("PRAGMA auto_vacuum = INCREMENTAL");
      if (o.seed && o.seed.parents.length > 0 && o.generator.onParents) {
        await this.#seed(o.seed);
      } else await this.#bootstrap();
      meta = readSnapshotMetadata(this.db)!;
    }
    if (meta.formatVersion > FORMAT_VERSION) {
      throw new SnapshotIntegrityError(
        o.baseKey ?? "",
        `Cannot build on snapshot as it was written by a newer format: current value is ${meta.formatVersion}`,
      );
    }
    this.#sequenceNumber = meta.sequenceNumber;
    this.#final = meta.final;
    const upgraded = upgradeSnapshotMetadata(this.db);
    if (o.trackChanges && isBase) this.restartTracking();
    if (upgraded) this.#stopTracking("the snapshot format was upgraded");
    await inTransaction(this.db, async () => await o.generator.onStart?.(this.db));
  }

  async #bootstrap(): Promise<void> {
    const o = this.#withGenerator;
    const start = assertSequenceNumber(
      String(await o.generator.bootstrap?.(this.db) ?? BOOTSTRAP_SEQUENCE),
    );
    initSnapshotMetadata(this.db, { stream: o.stream, shardId: o.shardId, sequenceNumber: start });
  }

  async #seed(seed: SeedFromParents): Promise<void> {
    const o = this.#withGenerator;
    const parents: ParentSnapshot[] = [];
    try {
      for (const p of seed.parents) {
        const db = new DatabaseSync(p.file, { readOnly: true });
        parents.push({ shardId: p.shardId, db, metadata: p.metadata });
      }
      await inTransaction(this.db, async () => {
        initSnapshotMetadata(this.db, {
          stream: o.stream,
          shardId: o.shardId,
          sequenceNumber: BOOTSTRAP_SEQUENCE,
          parentShards: parents.map((p) => p.shardId),
        });
        await o.generator.onParents!(this.db, {
          shardId: o.shardId,
          hashKeyRange: seed.hashKeyRange,
          parents,
        });
      });
    } finally {
      for (const p of parents) p.db.close();
    }
  }

  /** The whole page in one call to `onRecords`. */
  async #applyWhole(batch: RecordBatch, children?: ChildShard[]): Promise<number> {
    return await this.#commit(batch, children, async () => {
      try {
        await this.#withGenerator.generator.onRecords(this.db, batch);
      } catch (error) {
        throw new GeneratorFailure(error);
      }
      return { applied: batch.records.length, skipped: 0 };
    });
  }

  /**
   * The page again, one record per savepoint, after `onRecords` failed on it whole: finds the
   * record it fails on (and fails naming it), or, when skipping, skips every such record.
   */
  async #applyOneByOne(
    batch: RecordBatch,
    children: ChildShard[] | undefined,
    batchError: unknown,
  ): Promise<number> {
    const db = this.db;
    const { generator, onSkip } = this.#withGenerator;
    const skipped: Array<[ShardRecord, unknown]> = [];
    const applied = await this.#commit(batch, children, async () => {
      for (const record of batch.records) {
        db.exec("SAVEPOINT streambolt_record");
        try {
          await generator.onRecords(db, { ...batch, records: [record] });
          db.exec("RELEASE streambolt_record");
        } catch (error) {
          db.exec("ROLLBACK TO streambolt_record");
          db.exec("RELEASE streambolt_record");
          if (!onSkip) throw generatorError(batch.shardId, record, error);
          skipped.push([record, error]);
        }
      }
      // Every record passed alone, yet the page failed whole: name the page's first record.
      if (!onSkip) throw generatorError(batch.shardId, batch.records[0], batchError);
      return { applied: batch.records.length - skipped.length, skipped: skipped.length };
    });
    // Reported only once the page is committed: these records are skipped for good.
    for (const [record, error] of skipped) onSkip!(record, batch.shardId, error);
    return applied;
  }

  /**
   * Runs `work` and the metadata update (the sequence number of the batch's last record, the
   * counts, finality) in one transaction.
   *
   * @returns The records applied.
   */
  async #commit(
    batch: RecordBatch | undefined,
    children: ChildShard[] | undefined,
    work: () => Promise<{ applied: number; skipped: number }>,
  ): Promise<number> {
    let applied = 0;
    await inTransaction(this.db, async () => {
      const counts = await work();
      applied = counts.applied;
      if (batch) {
        this.#update ??= this.db.prepare(
          `UPDATE ${META_TABLE} SET sequence_number = ?, records_applied = records_applied + ?,
            records_skipped = records_skipped + ?, updated_at = ?,
            last_arrival_at = coalesce(?, last_arrival_at) WHERE id = 1`,
        );
        const last = batch.records[batch.records.length - 1];
        this.#update.run(
          last.sequenceNumber,
          counts.applied,
          counts.skipped,
          new Date().toISOString(),
          last.approximateArrivalTimestamp?.toISOString() ?? null,
        );
      }
      if (children) {
        this.db.prepare(`UPDATE ${META_TABLE} SET final = 1, child_shards = ? WHERE id = 1`)
          .run(JSON.stringify(children));
      }
    });
    if (children) this.#final = true;
    return applied;
  }
}

/** Runs `work` in an immediate transaction; rolls back if it throws. */
export async function inTransaction(db: DatabaseSync, work: () => Promise<void>): Promise<void> {
  db.exec("BEGIN IMMEDIATE");
  try {
    await work();
    db.exec("COMMIT");
  } catch (error) {
    if (db.isTransaction) db.exec("ROLLBACK");
    throw error;
  }
}

/** `onRecords` threw on a whole page: the page is then retried record by record. */
class GeneratorFailure extends Error {
  constructor(cause: unknown) {
    super("the generator failed on a page", { cause });
  }
}

function generatorError(shardId: string, record: ShardRecord, error: unknown): Error {
  return new SnapshotGeneratorError(
    shardId,
    record.sequenceNumber,
    `Cannot apply records of shard "${shardId}" as the generator failed at sequence number ${record.sequenceNumber}: ${
      (error as Error)?.message ?? error
    }`,
    { cause: error },
  );
}
