/**
 * Applying a page of records to a snapshot database: the generator's `onRecords` and the
 * update of the last applied sequence number, in one transaction. Shared by the snapshotter
 * and the live replica.
 *
 * @module
 */
import type { DatabaseSync, StatementSync } from "node:sqlite";
import { SnapshotGeneratorError } from "./errors.ts";
import type { SnapshotGenerator } from "./generator.ts";
import type { RecordBatch, ShardRecord } from "./kinesis/shard_reader.ts";
import { META_TABLE } from "./metadata.ts";

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

/** Called for each record skipped in `skip` mode. */
export type SkipHandler = (record: ShardRecord, shardId: string, error: unknown) => void;

/** Applies pages of records to one database. */
export class PageApplier {
  #db: DatabaseSync;
  #generator: SnapshotGenerator;
  #update: StatementSync;
  #finalize: StatementSync;
  #onSkip?: SkipHandler;

  /**
   * @param onSkip When given, a record the generator throws on is skipped (and reported here)
   * instead of failing the batch.
   */
  constructor(db: DatabaseSync, generator: SnapshotGenerator, onSkip?: SkipHandler) {
    this.#db = db;
    this.#generator = generator;
    this.#onSkip = onSkip;
    this.#update = db.prepare(
      `UPDATE ${META_TABLE} SET sequence_number = ?, records_applied = records_applied + ?,
        records_skipped = records_skipped + ?, updated_at = ? WHERE id = 1`,
    );
    this.#finalize = db.prepare(
      `UPDATE ${META_TABLE} SET final = 1, child_shards = ? WHERE id = 1`,
    );
  }

  /**
   * Applies a page whole or not at all. `lastSequenceNumber` is the last Kinesis record of the
   * page (after deaggregation several user records share it).
   *
   * @returns The number of records applied.
   */
  async apply(batch: RecordBatch, lastSequenceNumber: string): Promise<number> {
    try {
      await this.#applyWhole(batch, lastSequenceNumber);
      return batch.records.length;
    } catch (error) {
      if (!this.#onSkip || !(error instanceof SnapshotGeneratorError)) throw error;
      return await this.#applyOneByOne(batch, lastSequenceNumber);
    }
  }

  async #applyWhole(batch: RecordBatch, lastSequenceNumber: string): Promise<void> {
    const tracked = trackRecords(batch.records);
    await inTransaction(this.#db, async () => {
      try {
        await this.#generator.onRecords(this.#db, { ...batch, records: tracked.records });
      } catch (error) {
        const at = tracked.current() ?? batch.records[0];
        throw new SnapshotGeneratorError(
          batch.shardId,
          at?.sequenceNumber,
          `Cannot apply records of shard "${batch.shardId}" as the generator failed at sequence number ${at?.sequenceNumber}: ${
            (error as Error)?.message ?? error
          }`,
          { cause: error },
        );
      }
      this.#update.run(lastSequenceNumber, batch.records.length, 0, new Date().toISOString());
    });
  }

  /** The batch again, one record per savepoint: records that throw are rolled back and skipped. */
  async #applyOneByOne(batch: RecordBatch, lastSequenceNumber: string): Promise<number> {
    const db = this.#db;
    let applied = 0;
    const skipped: Array<[ShardRecord, unknown]> = [];
    await inTransaction(db, async () => {
      for (const record of batch.records) {
        db.exec("SAVEPOINT streambolt_record");
        try {
          await this.#generator.onRecords(db, { ...batch, records: [record] });
          db.exec("RELEASE streambolt_record");
          applied++;
        } catch (error) {
          db.exec("ROLLBACK TO streambolt_record");
          db.exec("RELEASE streambolt_record");
          skipped.push([record, error]);
        }
      }
      this.#update.run(lastSequenceNumber, applied, skipped.length, new Date().toISOString());
    });
    // Reported only once the batch is committed: these records are skipped for good.
    for (const [record, error] of skipped) this.#onSkip!(record, batch.shardId, error);
    return applied;
  }

  /** Records that the shard is closed and names its children. */
  markFinal(childShards: unknown[]): void {
    this.#finalize.run(JSON.stringify(childShards));
  }
}

/**
 * Wraps a batch's records so that the record a generator is working on when it throws can be
 * named: iterating the array (for...of, spread, entries) records the current element.
 */
function trackRecords(records: ShardRecord[]): {
  records: ShardRecord[];
  current(): ShardRecord | undefined;
} {
  let current: ShardRecord | undefined;
  const tracked = records.slice();
  const values = function* (): Generator<ShardRecord> {
    for (const record of records) {
      current = record;
      yield record;
    }
  };
  Object.defineProperty(tracked, Symbol.iterator, { value: values, enumerable: false });
  return { records: tracked, current: () => current };
}
