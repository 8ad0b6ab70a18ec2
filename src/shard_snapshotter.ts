/**
 * The producer: {@linkcode ShardSnapshotter} brings the latest snapshot of one shard up to
 * date and publishes it.
 *
 * @module
 */
import { resolve } from "node:path";
import { anySignal } from "./_signal.ts";
import { SnapshotRun } from "./_producer_run.ts";
import { withWorkDir } from "./_work_dir.ts";
import type { KinesisClientLike } from "./aws_client.ts";
import { type ChainPolicy, resolveChainPolicy } from "./chain.ts";
import { InvalidArgumentError } from "./errors.ts";
import type { SnapshotGenerator } from "./generator.ts";
import type { HashKeyRange } from "./kinesis/hash_key.ts";
import type { RetryOptions } from "./kinesis/retry_options.ts";
import type { ReadShardOptions } from "./kinesis/shard_reader.ts";
import type { Logger } from "./logger.ts";
import type { ShardPage } from "./records.ts";
import { resolveRetention, type RetentionPolicy } from "./retention.ts";
import { assertName, type Snapshot, type SnapshotEncoding } from "./snapshot_key.ts";
import type { SnapshotStore } from "./store/snapshot_store.ts";

/** A source of pages of records, called like {@linkcode readShard}. */
export type RecordSource = (
  kinesis: KinesisClientLike,
  options: ReadShardOptions,
) => AsyncIterable<ShardPage>;

/** Progress of a snapshot run, reported after each batch and each phase. */
export interface SnapshotProgress {
  /** The shard. */
  shardId: string;
  /** What the run is doing. */
  phase: "download" | "catch-up" | "compact" | "upload" | "done";
  /** Records applied in this run so far. */
  recordsApplied: number;
  /** The last sequence number applied. */
  sequenceNumber: string;
  /** How far behind the shard's tip the last batch ended, in ms. */
  millisBehindLatest?: number;
  /** Bytes uploaded so far (upload phase). */
  bytesUploaded?: number;
}

/** Options for {@linkcode ShardSnapshotter}. */
export interface ShardSnapshotterOptions {
  /** The Kinesis client (a `KinesisClient`; see `retry` for its `maxAttempts`). */
  kinesis: KinesisClientLike;
  /** Where snapshots are found and published. */
  store: SnapshotStore;
  /** The stream name. */
  stream: string;
  /** The shard id. */
  shardId: string;
  /** A local directory for working files and the produced snapshot (created if missing). The
   * producer's copy of its latest point lives in `<localPath>/<stream>/<shard>/producer/`, apart
   * from a finder's downloads, so the two may share a directory. */
  localPath: string;
  /** Turns records into rows. */
  generator: SnapshotGenerator;
  /** Stop once a (not full) page ends at most this many ms behind the shard's tip.
   * Defaults to 0: read until caught up. */
  doneLagMs?: number;
  /** Hand free pages back before upload (`PRAGMA incremental_vacuum`). Defaults to true. */
  compact?: boolean;
  /** How to encode the stored snapshot. Defaults to `"zstd"`. */
  encoding?: SnapshotEncoding;
  /** Records per GetRecords call. Defaults to 10,000. */
  limit?: number;
  /** Fetch the next page while the current one is applied. Defaults to true. */
  prefetch?: boolean;
  /** The retry budget of each Kinesis call (see {@linkcode ReadShardOptions.retry}): the one
   * retry loop around Kinesis calls; give the client `maxAttempts: 1`. S3 calls are retried by
   * the S3 client itself (its `maxAttempts`). */
  retry?: Partial<RetryOptions>;
  /** Where progress and retries are logged. */
  logger?: Logger;
  /** Called after each batch and phase. */
  onProgress?: (progress: SnapshotProgress) => void;
  /** For a child shard's first snapshot: its parents' final snapshots, handed to the
   * generator's `onParents` to seed it. Ignored once the shard has a snapshot. */
  parents?: Snapshot[];
  /** The shard's hash key range (looked up when needed and not given). */
  hashKeyRange?: HashKeyRange;
  /** Skip records the generator throws on instead of failing the run: each is logged (shard,
   * sequence number, partition key, error) as a warning and counted in the snapshot's
   * `recordsSkipped`. Defaults to false. */
  skipBadRecords?: boolean;
  /** Where pages of records come from. Defaults to `readShard` (Kinesis); another
   * source (a file, a test or benchmark feed) gets the same options. `RecordSource` and
   * `scriptedSource` are in `@streambolt/streambolt/testing`. */
  source?: RecordSource;
  /** Aborts every run of this snapshotter; nothing is published. */
  signal?: AbortSignal;
  /** Publish a full snapshot even where a delta would do. Defaults to false: when the shard's
   * latest point can serve as a base, only what changed is published (a delta). */
  full?: boolean;
  /** When a full snapshot is written again, so that restoring stays bounded. */
  chain?: ChainPolicy;
  /** What the producer keeps after each publish: older points, and the objects only they
   * need, are deleted, by the same model as `collectGarbage` (see {@linkcode RetentionPolicy}).
   * Defaults to `DEFAULT_RETENTION`: every point of the last day, and the newest. `{ retainMs:
   * Infinity }` keeps everything (then run `collectGarbage`). */
  retention?: RetentionPolicy;
  /** Record changes for a delta only up to this many records since the last point (recorded
   * changes are held in memory); past it, that point is published whole. Defaults to 200,000. */
  maxDeltaRecords?: number;
  /** Continue from a snapshot whose last record is older than the stream's retention period
   * (records after it may have been trimmed): the gap is logged and recorded in the snapshot's
   * metadata (`acceptedGaps`). Defaults to false: such a run fails with a
   * `RetentionGapError` naming the shard, the record's arrival time and the retention. */
  acceptGap?: boolean;
  /** While following ({@linkcode ShardSnapshotter.follow}): how long to wait after an empty
   * read, in ms (Kinesis allows 5 reads per second per shard). Defaults to 1,000. */
  pollIntervalMs?: number;
}

/** Options for {@linkcode ShardSnapshotter.follow}. */
export interface FollowOptions {
  /** Publish a point this often (ms) when records were applied. */
  publishEveryMs: number;
  /** Stops following: what was applied since the last point is published, then `follow`
   * returns. (To abort instead, publishing nothing, use the snapshotter's `signal`.) */
  stop?: AbortSignal;
  /** @deprecated Use `stop`: this signal stops following gracefully, as `stop` does. */
  signal?: AbortSignal;
}

/** Options for {@linkcode ShardSnapshotter.snapshotShard}. */
export interface SnapshotShardOptions {
  /** Aborts this run; nothing is published. */
  signal?: AbortSignal;
}

/**
 * Brings one shard's snapshot up to date: finds the latest snapshot (or bootstraps an empty
 * one), applies the records after it through the generator, one transaction per batch, stops
 * when caught up or when the shard is closed, compacts, and publishes the result under a key
 * that carries its sequence number.
 *
 * @example Usage
 * ```ts ignore
 * import { KinesisClient } from "@aws-sdk/client-kinesis";
 * import { FileSnapshotStore, ShardSnapshotter } from "../mod.ts";
 * const snapshotter = new ShardSnapshotter({
 *   kinesis: new KinesisClient({ maxAttempts: 1 }),
 *   store: new FileSnapshotStore({ root: "./snapshots" }),
 *   stream: "orders",
 *   shardId: "shardId-000000000000",
 *   localPath: "./work",
 *   generator: {
 *     onStart(db) {
 *       db.exec("CREATE TABLE IF NOT EXISTS events (seq TEXT PRIMARY KEY NOT NULL, data BLOB)");
 *     },
 *     onRecords(db, batch) {
 *       const insert = db.prepare("INSERT INTO events VALUES (?, ?)");
 *       for (const r of batch.records) insert.run(r.sequenceNumber, r.data);
 *     },
 *   },
 * });
 * const snapshot = await snapshotter.snapshotShard();
 * console.log(snapshot.key, snapshot.sequenceNumber);
 * ```
 */
export class ShardSnapshotter {
  #options: ShardSnapshotterOptions;

  /**
   * Creates a snapshotter for one shard.
   *
   * @param options The clients, the shard, the generator and the settings.
   */
  constructor(options: ShardSnapshotterOptions) {
    assertName("stream", options.stream);
    assertName("shard", options.shardId);
    if (!options.localPath) {
      throw new InvalidArgumentError(
        `Cannot snapshot as the local path is empty: current value is ${
          JSON.stringify(options.localPath)
        }`,
      );
    }
    const lag = options.doneLagMs ?? 0;
    if (!Number.isFinite(lag) || lag < 0) {
      throw new InvalidArgumentError(
        `Cannot snapshot as the done lag must be a number of ms >= 0: current value is ${lag}`,
      );
    }
    if (typeof options.generator?.onRecords !== "function") {
      throw new InvalidArgumentError(
        "Cannot snapshot as the generator has no onRecords method: current value is " +
          typeof options.generator,
      );
    }
    resolveChainPolicy(options.chain);
    const retainChains = (options as { retainChains?: unknown }).retainChains;
    if (retainChains !== undefined) {
      throw new InvalidArgumentError(
        `Cannot snapshot as retainChains is replaced by retention (e.g. { retainMs: 86_400_000, keepPoints: 1 }): current value is ${retainChains}`,
      );
    }
    this.#options = {
      ...options,
      localPath: resolve(options.localPath),
      retention: resolveRetention(options.retention, "snapshot"),
    };
  }

  /**
   * Runs one snapshot: catch up from the latest snapshot and publish the result.
   *
   * With no new records the existing latest snapshot is returned and nothing is uploaded. A
   * failed run publishes nothing, leaves the previous latest snapshot untouched and removes
   * its working files.
   *
   * @param options Aborts this run.
   * @returns The latest snapshot after the run, with `localFile` holding the produced
   * database when this run published one.
   */
  async snapshotShard(options?: SnapshotShardOptions): Promise<Snapshot> {
    const o = this.#options;
    const signal = anySignal(o.signal, options?.signal);
    return await withWorkDir(
      o.localPath,
      `${o.stream}.${o.shardId}`,
      (dir) => new SnapshotRun(o, dir, signal).run(),
    );
  }

  /**
   * Follows the shard continuously: keeps its database open, applies records as they arrive,
   * and publishes a point every `publishEveryMs` when something changed (a delta, or a full
   * snapshot when the chain policy calls for one). Returns when `stop` aborts (after
   * publishing what was applied since the last point) or when the shard closes (after
   * publishing its final snapshot).
   *
   * @param options The publish interval and the stop signal.
   * @returns The latest point when it stopped, with `localFile` holding its database; none when
   * nothing was ever published.
   */
  async follow(options: FollowOptions): Promise<Snapshot | undefined> {
    const o = this.#options;
    if (!Number.isFinite(options.publishEveryMs) || options.publishEveryMs < 0) {
      throw new InvalidArgumentError(
        `Cannot follow a shard as publishEveryMs must be a number of ms >= 0: current value is ${options.publishEveryMs}`,
      );
    }
    const stop = options.stop ?? options.signal ?? new AbortController().signal;
    return await withWorkDir(
      o.localPath,
      `${o.stream}.${o.shardId}`,
      (dir) => new SnapshotRun(o, dir, o.signal).follow(options.publishEveryMs, stop),
    );
  }
}
