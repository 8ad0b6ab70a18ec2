/**
 * Named errors thrown by streambolt. Every error carries a one-line message that names the
 * offending value, so the CLI can print it as is.
 *
 * @module
 */

/**
 * A stored snapshot failed verification: its checksum or contents do not match.
 *
 * @example Usage
 * ```ts ignore
 * import { ShardSnapshotFinder, SnapshotIntegrityError } from "../mod.ts";
 * declare const finder: ShardSnapshotFinder;
 * try {
 *   await finder.downloadLatestSnapshot();
 * } catch (error) {
 *   if (error instanceof SnapshotIntegrityError) console.error("refused", error.key);
 *   else throw error;
 * }
 * ```
 */
export class SnapshotIntegrityError extends Error {
  /** The store key of the snapshot that failed verification. */
  readonly key: string;

  /**
   * Creates the error.
   *
   * @param key The store key of the snapshot that failed verification.
   * @param message What did not match.
   * @param options Standard error options, such as `cause`.
   */
  constructor(key: string, message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "SnapshotIntegrityError";
    this.key = key;
  }
}

/**
 * The user's {@linkcode SnapshotGenerator} threw while applying records.
 *
 * @example Usage
 * ```ts
 * import assert from "node:assert/strict";
 * import { SnapshotGeneratorError } from "./errors.ts";
 * const error = new SnapshotGeneratorError("shardId-000000000000", "42", "bad record");
 * assert.equal(error.sequenceNumber, "42");
 * ```
 */
export class SnapshotGeneratorError extends Error {
  /** The shard whose records were being applied. */
  readonly shardId: string;
  /** The sequence number of the record being applied when the generator threw, if known. */
  readonly sequenceNumber: string | undefined;

  /**
   * Creates the error.
   *
   * @param shardId The shard whose records were being applied.
   * @param sequenceNumber The record being applied when the generator threw, if known.
   * @param message What failed.
   * @param options Standard error options, such as `cause`.
   */
  constructor(
    shardId: string,
    sequenceNumber: string | undefined,
    message: string,
    options?: ErrorOptions,
  ) {
    super(message, options);
    this.name = "SnapshotGeneratorError";
    this.shardId = shardId;
    this.sequenceNumber = sequenceNumber;
  }
}

/**
 * A value given by the caller (an option, a key, a URL) is not acceptable.
 *
 * @example Usage
 * ```ts
 * import assert from "node:assert/strict";
 * import { InvalidArgumentError } from "./errors.ts";
 * import { FileSnapshotStore } from "./store/file_store.ts";
 * assert.throws(() => new FileSnapshotStore({ root: "" }), InvalidArgumentError);
 * ```
 */
export class InvalidArgumentError extends Error {
  /**
   * Creates the error.
   *
   * @param message What is wrong, naming the bad value.
   * @param options Standard error options, such as `cause`.
   */
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "InvalidArgumentError";
  }
}

/**
 * Reading a shard failed after every retry.
 *
 * @example Usage
 * ```ts
 * import assert from "node:assert/strict";
 * import { ShardReadError } from "./errors.ts";
 * const error = new ShardReadError("shardId-000000000000", "Cannot read shard");
 * assert.equal(error.name, "ShardReadError");
 * ```
 */
export class ShardReadError extends Error {
  /** The shard being read. */
  readonly shardId: string;

  /**
   * Creates the error.
   *
   * @param shardId The shard being read.
   * @param message What failed.
   * @param options Standard error options, such as `cause`.
   */
  constructor(shardId: string, message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "ShardReadError";
    this.shardId = shardId;
  }
}

/**
 * A shard's snapshot ends at a record older than the stream's retention period: the records
 * after it may already be trimmed, so continuing would silently leave a gap.
 *
 * @example Usage
 * ```ts
 * import assert from "node:assert/strict";
 * import { RetentionGapError } from "./errors.ts";
 * const error = new RetentionGapError("shardId-000000000000", "2026-01-01T00:00:00.000Z", 24);
 * assert.equal(error.retentionHours, 24);
 * ```
 */
export class RetentionGapError extends Error {
  /** The shard. */
  readonly shardId: string;
  /** When the snapshot's last record arrived (ISO 8601). */
  readonly lastArrivalAt: string;
  /** The stream's retention period, in hours. */
  readonly retentionHours: number;

  /**
   * Creates the error.
   *
   * @param shardId The shard.
   * @param lastArrivalAt When the snapshot's last record arrived (ISO 8601).
   * @param retentionHours The stream's retention period, in hours.
   */
  constructor(shardId: string, lastArrivalAt: string, retentionHours: number) {
    super(
      `Cannot continue shard "${shardId}" from its snapshot as its last record arrived at ${lastArrivalAt}, longer ago than the stream's retention of ${retentionHours} h: records after it may have been trimmed (accept the gap with --accept-gap / acceptGap): current value is "${lastArrivalAt}"`,
    );
    this.name = "RetentionGapError";
    this.shardId = shardId;
    this.lastArrivalAt = lastArrivalAt;
    this.retentionHours = retentionHours;
  }
}

/**
 * Something streambolt needs from its environment is missing or wrong: an AWS region,
 * credentials, an endpoint that answers, a bucket that exists. The message names what is
 * missing and how to set it.
 *
 * @example Usage
 * ```ts
 * import assert from "node:assert/strict";
 * import { ConfigurationError } from "./errors.ts";
 * const error = new ConfigurationError(
 *   "bucket",
 *   "Cannot list s3://nope/snaps/ as the bucket does not exist: current value is nope",
 * );
 * assert.equal(error.setting, "bucket");
 * ```
 */
export class ConfigurationError extends Error {
  /** What is missing or wrong: `region`, `credentials`, `endpoint` or `bucket`. */
  readonly setting: "region" | "credentials" | "endpoint" | "bucket";

  /**
   * Creates the error.
   *
   * @param setting What is missing or wrong.
   * @param message One line naming it and how to set it.
   * @param options The underlying error, as `cause`.
   */
  constructor(
    setting: "region" | "credentials" | "endpoint" | "bucket",
    message: string,
    options?: ErrorOptions,
  ) {
    super(message, options);
    this.name = "ConfigurationError";
    this.setting = setting;
  }
}

/**
 * A snapshot listed in the store was gone by the time it was downloaded (a producer's
 * retention or `gc` deleted it meanwhile), and listing the shard again did not get past such
 * deletions within a few tries.
 *
 * @example Usage
 * ```ts
 * import assert from "node:assert/strict";
 * import { SnapshotVanishedError } from "./errors.ts";
 * const error = new SnapshotVanishedError("orders/shardId-000000000000/42.sqlite.zst", 5);
 * assert.equal(error.attempts, 5);
 * ```
 */
export class SnapshotVanishedError extends Error {
  /** The store key of the last snapshot found gone. */
  readonly key: string;
  /** Listings in a row that each planned an object found gone. */
  readonly attempts: number;

  /**
   * Creates the error.
   *
   * @param key The store key of the snapshot found gone.
   * @param attempts Listings in a row that each planned an object found gone.
   * @param options Standard error options, such as `cause`.
   */
  constructor(key: string, attempts: number, options?: ErrorOptions) {
    super(
      `Cannot download snapshot as it was deleted from the store after it was listed (${attempts} listing${
        attempts === 1 ? "" : "s"
      } in a row planned an object found gone): current value is "${key}"`,
      options,
    );
    this.name = "SnapshotVanishedError";
    this.key = key;
    this.attempts = attempts;
  }
}
